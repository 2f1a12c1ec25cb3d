"""`make package`: the run-from-package zip holds the app and its Linux / CPython 3.11 dependencies, and
nothing .funcignore keeps out. Builds the real zip (pip's cache makes a rebuild take seconds; a cold
cache downloads ~12 MB of wheels), unpacks it into an empty directory and imports the app from there
alone, in a fresh interpreter that sees neither the project tree nor its .venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools.package import ROOT, SITE_PACKAGES, FuncIgnore, app_files, build

# Runs in `python -I -S`: no site-packages, no PYTHONPATH, no current directory. Only the unpacked
# package and its site-packages go on sys.path, where the Python worker puts them on Azure.
LIST_FUNCTIONS = """
import json, sys
sys.path[:0] = sys.argv[1:]
import azure.functions, function_app
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
print(json.dumps({"functions": names, "azure_functions": azure.functions.__file__,
                  "function_app": function_app.__file__}))
"""


def list_functions(*path: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LIST_FUNCTIONS, *map(str, path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=path[0],
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist") / "resolvemeq-functions.zip")


@pytest.fixture(scope="module")
def unpacked(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("wwwroot")
    with zipfile.ZipFile(package) as zf:
        zf.extractall(target)
    return target


def test_the_unpacked_package_alone_registers_every_function_of_the_app(unpacked: Path) -> None:
    packaged = list_functions(unpacked, unpacked / SITE_PACKAGES)
    # azure.functions comes from the package's own dependencies, not from this machine.
    assert Path(packaged["azure_functions"]).is_relative_to(unpacked / SITE_PACKAGES)
    assert Path(packaged["function_app"]).is_relative_to(unpacked)
    project = list_functions(ROOT, *(Path(p) for p in sys.path if p.endswith("site-packages")))
    assert packaged["functions"] == project["functions"]
    assert len(packaged["functions"]) >= 20


def test_the_package_holds_the_app_and_its_data_at_the_root(package: Path) -> None:
    names = set(zipfile.ZipFile(package).namelist())
    for required in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "functions/tickets.py",
        "shared/agent/knowledge_base.json",
        "shared/agent/lexicon.json",
    ):
        assert required in names
    assert set(app_files()) <= names


def test_every_requirement_is_installed_as_a_linux_cpython_311_build(package: Path) -> None:
    names = zipfile.ZipFile(package).namelist()
    wheels = [n for n in names if n.startswith(SITE_PACKAGES) and n.endswith("/WHEEL")]
    tags = "\n".join(zipfile.ZipFile(package).read(n).decode() for n in wheels)
    # Compiled dependencies (pydantic-core, cryptography, cffi...) are built for Linux x86_64.
    assert "manylinux" in tags and "x86_64" in tags
    assert all("win" not in line and "macosx" not in line for line in tags.splitlines() if "Tag:" in line)
    extensions = [n for n in names if n.endswith(".so")]
    assert extensions and all(("cpython-311-x86_64-linux-gnu" in n or "abi3" in n) for n in extensions)
    dist_infos = {n.split("/")[3].split("-")[0].lower() for n in names if ".dist-info/" in n}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            project = line.split("==")[0].split("[")[0].lower().replace("-", "_")
            assert project in dist_infos, project


def test_nothing_funcignore_keeps_out_is_in_the_package(package: Path) -> None:
    names = zipfile.ZipFile(package).namelist()
    app = [n for n in names if not n.startswith(".python_packages/")]
    rules = FuncIgnore((ROOT / ".funcignore").read_text())
    assert all(rules.accepts(n) for n in app)
    tops = {n.split("/")[0] for n in app}
    local_only = {"tests", "devhost", "bench", "tools", ".venv", "node_modules", ".ci", ".azurite", "dist"}
    assert not tops & local_only
    assert not [n for n in app if "local.settings" in n or n.startswith(".git") or "__pycache__" in n]
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "/bin/" in n]


def test_settings_and_local_trees_planted_in_a_project_stay_out(tmp_path: Path) -> None:
    # A copy of the project's .funcignore over a tree with what an operator's checkout may hold.
    (tmp_path / ".funcignore").write_text((ROOT / ".funcignore").read_text())
    planted = [
        "local.settings.json",
        "local.settings.prod.json",
        "local.settings.sample.json",
        "tests/unit/test_x.py",
        "devhost/__main__.py",
        "bench/results.json",
        "tools/package.py",
        ".venv/lib/python3.11/site-packages/x.py",
        "node_modules/azurite/package.json",
        ".azurite/__azurite_db_table__.json",
        ".vscode/settings.json",
        ".github/workflows/ci.yml",
        ".git/config",
        "dist/resolvemeq-functions.zip",
        ".python_packages/lib/site-packages/stale.py",
        "shared/__pycache__/config.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
    ]
    kept = ["function_app.py", "host.json", "requirements.txt", "shared/agent/lexicon.json"]
    for rel in planted + kept:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("AUTH_JWT_SECRET=canary")
    assert app_files(tmp_path) == sorted(kept)


def test_the_same_inputs_give_the_same_bytes(package: Path, tmp_path: Path) -> None:
    again = build(tmp_path / "again.zip")
    assert again.read_bytes() == package.read_bytes()
    infos = zipfile.ZipFile(again).infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        # The semantics of Core Tools' GitIgnoreParser (a port of codemix/gitignore-parser), not git's.
        ("tests", "tests/unit/test_x.py", True),
        ("tests", "shared/tests/x.py", False),  # anchored at the root
        ("tests", "testsuite/x.py", False),  # up to a word boundary
        (".git*", ".github/workflows/ci.yml", True),
        (".git*", ".gitattributes", True),
        ("local.settings*.json", "local.settings.sample.json", True),
        ("local.settings*.json", "shared/local_settings.py", False),
        ("/bench", "bench/inprocess.py", True),
        ("*.md", "README.md", True),
        ("*.md", "docs/ops.md", False),  # `*` stays within one segment
        ("**/*.md", "docs/ops.md", True),
        ("docs\n!docs/keep.md", "docs/keep.md", False),
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("# tests", "tests/x.py", False),
    ],
)
def test_funcignore_patterns_match_as_core_tools_applies_them(pattern: str, path: str, ignored: bool) -> None:
    assert FuncIgnore(pattern).accepts(path) is not ignored


def test_the_project_funcignore_keeps_out_the_local_only_trees() -> None:
    files = app_files()
    assert "function_app.py" in files and "host.json" in files
    for prefix in ("tests/", "devhost/", "bench/", "tools/", "node_modules/", ".venv/", "local.settings"):
        assert not [f for f in files if f.startswith(prefix)], prefix
