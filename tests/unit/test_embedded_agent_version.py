"""The embedded agent's version is derived from its data: the knowledge base and the lexicon.

An edit to either (one synonym is enough) is a new agent version in the provenance; the same data, however
it is laid out, is the same version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.agent.embedded import DEFAULT_KB_PATH, DEFAULT_LEXICON_PATH, EmbeddedAgent

ROOT = Path(__file__).resolve().parents[2]
TICKET = {
    "issue_type": "Paper jam",
    "description": "Paper is jammed in tray 2 of the printer",
    "category": "printer",
}


def shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8")),
        json.loads(DEFAULT_LEXICON_PATH.read_text(encoding="utf-8")),
    )


def agent_on(
    tmp_path: Path, kb: dict[str, Any], lexicon: dict[str, Any], indent: int | None = 2
) -> EmbeddedAgent:
    folder = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "kb.json").write_text(json.dumps(kb, indent=indent), encoding="utf-8")
    (folder / "lexicon.json").write_text(json.dumps(lexicon, indent=indent), encoding="utf-8")
    return EmbeddedAgent(folder / "kb.json", folder / "lexicon.json")


def test_the_same_data_gives_the_same_version_however_it_is_laid_out(tmp_path: Path) -> None:
    kb, lexicon = shipped()
    reordered = {key: kb[key] for key in reversed(list(kb))}

    first = agent_on(tmp_path, kb, lexicon)
    again = agent_on(tmp_path, reordered, lexicon, indent=None)

    assert first.version == again.version == EmbeddedAgent().version
    assert first.analyse(TICKET).as_dict()["agent"] == {"kind": "embedded", "version": first.version}


def test_changing_one_synonym_changes_the_version(tmp_path: Path) -> None:
    kb, lexicon = shipped()
    before = agent_on(tmp_path, kb, lexicon)
    lexicon["synonyms"]["webcam"] = "webcamera"

    after = agent_on(tmp_path, kb, lexicon)

    assert after.version != before.version
    assert after.version.split("+")[0] == before.version.split("+")[0]  # the declared name stays
    assert after.analyse(TICKET).as_dict()["agent"]["version"] == after.version


@pytest.mark.parametrize(
    "edit",
    [
        lambda kb, lex: lex["stopwords"].remove("the"),
        lambda kb, lex: lex["generic"].append("printer"),
        lambda kb, lex: lex["phrases"].pop(),
        lambda kb, lex: kb["entries"][0]["steps"].append("Then restart."),
        lambda kb, lex: next(e for e in kb["entries"] if e.get("triggers"))["triggers"].pop(),
    ],
    ids=["stopword", "generic word", "phrase", "step", "trigger"],
)
def test_any_edit_to_the_data_changes_the_version(tmp_path: Path, edit: Any) -> None:
    kb, lexicon = shipped()
    before = agent_on(tmp_path, kb, lexicon).version
    edit(kb, lexicon)

    assert agent_on(tmp_path, kb, lexicon).version != before


def test_a_stale_hash_in_the_declared_version_is_replaced_by_the_contents(tmp_path: Path) -> None:
    kb, lexicon = shipped()
    expected = agent_on(tmp_path, kb, lexicon).version
    kb["version"] = kb["version"].split("+")[0] + "+00000000"

    assert agent_on(tmp_path, kb, lexicon).version == expected


def test_the_shipped_data_declares_the_hash_of_its_content() -> None:
    declared = json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8"))["version"]
    name, plus, digest = declared.partition("+")

    assert name and plus and len(digest) == 8
    assert EmbeddedAgent().version == declared


def test_an_invalid_lexicon_is_refused(tmp_path: Path) -> None:
    kb, lexicon = shipped()
    lexicon["phrases"].append(["(unclosed", "x"])

    with pytest.raises(ValueError, match="phrases"):
        agent_on(tmp_path, kb, lexicon)


def test_importing_the_agent_reads_no_data() -> None:
    code = (
        "import pathlib\n"
        "def refuse(*a, **k): raise AssertionError('file read at import')\n"
        "pathlib.Path.read_text = refuse; pathlib.Path.read_bytes = refuse; pathlib.Path.open = refuse\n"
        "import shared.agent.embedded\n"
        "from shared.agent.embedded import EmbeddedAgent, tokenize, Rule\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
