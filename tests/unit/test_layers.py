"""The architecture holds: the domain and the services import only what their layer allows.

An allowlist, not a list of what is forbidden: a new dependency of an inner layer (a storage
module, an SDK, a third-party library) fails here until it is put behind a port.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Besides the standard library, what each inner layer may import (a module and its submodules).
ALLOWED = {
    "shared/domain": ("pydantic", "shared.domain"),
    "shared/services": (
        "pydantic",
        "shared.domain",
        "shared.errors",
        "shared.ports",
        "shared.services",
    ),
}
STANDARD = sys.stdlib_module_names | {"__future__"}


def imports(source: str) -> Iterator[tuple[str, str]]:
    """Each (imported name, statement) of a module, `from a import b` as `a.b`, so that
    `from shared import storage` is seen as shared.storage."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            for alias in node.names:
                yield (
                    f"{base}.{alias.name}" if node.module else f"{base}{alias.name}",
                    (f"from {base} import {alias.name}"),
                )


def forbidden(source: str, allowed: tuple[str, ...]) -> list[str]:
    """The import statements of `source` that import neither the standard library nor `allowed`."""
    bad = []
    for name, statement in imports(source):
        if name.startswith("."):
            bad.append(f"{statement} (relative)")
        elif name.split(".")[0] in STANDARD or any(name == a or name.startswith(a + ".") for a in allowed):
            continue
        else:
            bad.append(statement)
    return sorted(set(bad))


INNER = [(layer, path) for layer in ALLOWED for path in sorted((ROOT / layer).rglob("*.py"))]


def test_every_inner_layer_has_modules_to_check() -> None:
    assert {layer for layer, _ in INNER} == set(ALLOWED)


@pytest.mark.parametrize(
    ("layer", "path"), INNER, ids=[str(p.relative_to(ROOT / "shared")) for _, p in INNER]
)
def test_inner_layers_import_only_what_their_layer_allows(layer: str, path: Path) -> None:
    bad = forbidden(path.read_text(), ALLOWED[layer])
    assert not bad, (
        f"{path.relative_to(ROOT)} has forbidden imports: {'; '.join(bad)}. "
        f"{layer} may import only the standard library and {', '.join(ALLOWED[layer])}; "
        "move the logic out of the layer, or put what it needs behind a port in shared/ports.py."
    )


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("from limits import parse", "from limits import parse"),
        ("import azure.data.tables", "import azure.data.tables"),
        ("from shared.storage.keys import owner_key", "from shared.storage.keys import owner_key"),
        ("from shared import storage", "from shared import storage"),
        ("from shared.ports import Clock", "from shared.ports import Clock"),
        ("from . import models", "from . import models (relative)"),
        ("if TYPE_CHECKING:\n    import sentry_sdk", "import sentry_sdk"),
    ],
)
def test_the_domain_allowlist_names_each_import_it_refuses(source: str, named: str) -> None:
    assert forbidden(source, ALLOWED["shared/domain"]) == [named]


def test_the_allowlists_let_through_the_standard_library_pydantic_and_their_own_layers() -> None:
    source = "import re\nfrom datetime import datetime\nfrom pydantic import BaseModel\n"
    assert forbidden(source + "from shared.domain.models import Ticket", ALLOWED["shared/domain"]) == []
    services = source + "from shared.errors import NotFound\nfrom shared.services.ledger import Once\n"
    assert forbidden(services, ALLOWED["shared/services"]) == []


def test_importing_function_app_does_no_io() -> None:
    import subprocess

    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network at import')\n"
        "socket.socket.connect = refuse\n"
        "import os; os.environ.pop('AUTH_JWT_SECRET', None); os.environ['ENVIRONMENT'] = 'production'\n"
        "import function_app\n"
        "assert len(function_app.app.get_functions()) >= 10\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
