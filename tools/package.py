"""Build the zip Azure's run-from-package deployment takes: `python -m tools.package` (`make package`).

The zip holds the app as `func pack` would select it (every file of the project tree that Core Tools'
own rules and `.funcignore` let through) and the runtime dependencies installed for Linux / CPython
3.11 under `.python_packages/lib/site-packages`, where the Python worker looks for them. The wheels
are chosen for the target (`--platform manylinux2014_x86_64 --python-version 3.11 --implementation cp
--only-binary=:all:`), not for the machine that builds, so the zip is the same from any build
machine; a requirement without such a wheel fails the build instead of being compiled here.
Entries are sorted and carry a fixed timestamp and mode, so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "dist" / "resolvemeq-functions.zip"
SITE_PACKAGES = ".python_packages/lib/site-packages"
TARGET = [
    "--platform",
    "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
]

# What Core Tools leaves out before reading .funcignore (FileSystemHelpers.GetLocalFiles).
CORE_TOOLS_DIRS = {".git", ".vscode"}
CORE_TOOLS_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}
# Build and cache output that is never part of the app, whatever .funcignore says: bytecode of this
# machine's Python, tool caches, earlier builds and a local `.python_packages` (the zip gets its own).
ARTEFACT_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".python_packages", "dist"}
ARTEFACT_SUFFIXES = (".pyc", ".pyo")
# A linked git worktree has a `.git` file, not a directory; it is repository metadata all the same.
ARTEFACT_FILES = {".git"}
# Zip's epoch: entries carry no build time, so two builds of the same inputs are byte-identical.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class FuncIgnore:
    """`.funcignore` as Core Tools applies it (GitIgnoreParser.cs, a port of codemix/gitignore-parser).

    Not full gitignore: a pattern matches from the start of the path relative to the project root
    and up to a word boundary (`tests` leaves out `tests/...`; `*` stays within one path segment,
    `**` crosses them; a leading `/` is dropped), and a `!pattern` re-includes what it matches.
    """

    def __init__(self, text: str) -> None:
        positive: list[str] = []
        negative: list[str] = []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            target = positive
            if line.startswith("!"):
                line, target = line[1:], negative
            if line.startswith("/"):
                line = line[1:]
            target.append(line)
        self._positive = self._compile(sorted(positive))
        self._negative = self._compile(sorted(negative))

    @staticmethod
    def _pattern(pattern: str) -> str:
        escaped = re.sub(r"[\-\[\]/{}()+?.\\^$|]", lambda m: "\\" + m.group(0), pattern)
        return escaped.replace("**", "(.+)").replace("*", "([^\\/]+)")

    @classmethod
    def _compile(cls, patterns: list[str]) -> re.Pattern[str] | None:
        if not patterns:
            return None
        return re.compile("^((" + ")|(".join(cls._pattern(p) for p in patterns) + r"))\b", re.ASCII)

    def accepts(self, relpath: str) -> bool:
        if self._negative is not None and self._negative.match(relpath):
            return True
        return self._positive is None or not self._positive.match(relpath)


def app_files(root: Path = ROOT) -> list[str]:
    """The project files the package carries, as sorted POSIX paths relative to `root`."""
    funcignore = root / ".funcignore"
    rules = FuncIgnore(funcignore.read_text(encoding="utf-8") if funcignore.exists() else "")
    selected = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in CORE_TOOLS_DIRS | ARTEFACT_DIRS]
        for name in filenames:
            if name in CORE_TOOLS_FILES | ARTEFACT_FILES or name.endswith(ARTEFACT_SUFFIXES):
                continue
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rules.accepts(rel):
                selected.append(rel)
    return sorted(selected)


def install_dependencies(requirements: Path, target: Path, extra: Iterable[str] = ()) -> None:
    """pip-install `requirements` for Linux / CPython 3.11 into `target` (a site-packages dir)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-conflicts",
        "--no-compile",  # no bytecode of this machine's Python; the worker compiles on first import
        "--target",
        str(target),
        *TARGET,
        "-r",
        str(requirements),
        *extra,
    ]
    subprocess.run(command, check=True)
    # Console scripts carry this machine's interpreter path in their shebang; the app runs none.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _walk(base: Path) -> Iterator[tuple[str, Path]]:
    for path in base.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(base).as_posix(), path


def write_zip(entries: dict[str, Path], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(output.suffix + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(entries):
            source = entries[name]
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(source, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3  # Unix, so the modes above are read as such
            zf.writestr(info, source.read_bytes())
    partial.replace(output)  # never leave a half-written zip where the deployment would take it


def build(output: Path = DEFAULT_OUTPUT, root: Path = ROOT, pip_args: Iterable[str] = ()) -> Path:
    """Build the package at `output` and return its path."""
    entries = {rel: root / rel for rel in app_files(root)}
    with tempfile.TemporaryDirectory(prefix="resolvemeq-package-") as tmp:
        site = Path(tmp) / "site-packages"
        install_dependencies(root / "requirements.txt", site, pip_args)
        for rel, path in _walk(site):
            entries[f"{SITE_PACKAGES}/{rel}"] = path
        write_zip(entries, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument("--list", action="store_true", help="print the app files it would take, and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(app_files()))
        return 0
    output = build(args.output)
    with zipfile.ZipFile(output) as zf:
        count = len(zf.namelist())
    print(f"{output} ({count} files, {output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
