"""The architecture holds: the domain and services import no Azure, Sentry or trigger code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("azure", "sentry_sdk", "functions", "devhost", "shared.storage.tables", "shared.storage.clients")
INNER = sorted((ROOT / "shared" / "domain").rglob("*.py")) + sorted(
    (ROOT / "shared" / "services").rglob("*.py")
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", INNER, ids=lambda p: str(p.relative_to(ROOT / "shared")))
def test_inner_layers_do_not_import_infrastructure(path: Path) -> None:
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_domain_imports_only_the_standard_library_pydantic_and_itself() -> None:
    for path in sorted((ROOT / "shared" / "domain").glob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top in {
                "__future__",
                "pydantic",
                "shared",
                "datetime",
                "enum",
                "typing",
                "dataclasses",
                "hashlib",
                "json",
                "re",
                "collections",
            }, (path.name, module)
            if top == "shared":
                assert module.startswith("shared.domain"), (path.name, module)


def test_importing_function_app_does_no_io() -> None:
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network at import')\n"
        "socket.socket.connect = refuse\n"
        "import os; os.environ.pop('AUTH_JWT_SECRET', None); os.environ['ENVIRONMENT'] = 'production'\n"
        "import function_app\n"
        "assert len(function_app.app.get_functions()) >= 10\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
