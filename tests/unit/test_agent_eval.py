"""`python -m manage agent eval FILE.jsonl`: its figures and its exit status (0 clean, 1 on any harmful
auto-resolve, 2 on a file it cannot use), on small labelled files under tests/unit/data/eval/."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import manage
from shared.agent.embedded import EmbeddedAgent
from shared.agent.evaluation import (
    EXIT_BAD_FILE,
    EXIT_HARMFUL,
    EXIT_OK,
    UNAVAILABLE,
    evaluate,
    read_labelled,
    run,
)
from shared.domain.analysis import Analysis, Details, Solution
from shared.domain.decision import Thresholds
from shared.errors import AgentUnavailable

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).parent / "data" / "eval"
SHARED = ROOT.parent / "shared" / "data"


def evaluate_file(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = manage.main(["agent", "eval", str(path), "--analyser", "embedded"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_clean_file_exits_0_and_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = evaluate_file(FILES / "clean.jsonl", capsys)

    assert code == EXIT_OK
    assert "5 tickets" in out and "embedded agent kb-" in out
    assert "harmful auto-resolves: 0" in out
    assert "critical recall (escalate tickets escalated): 2/2 (100.0%)" in out
    assert "coverage (known problems given a solution): 1/1 (100.0%)" in out
    assert "clarification rate (vague tickets asked back): 1/1 (100.0%)" in out
    table = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.startswith(("resolve", "escalate"))
    }
    # columns: AUTO_RESOLVE SCHEDULE_FOLLOWUP ASSIGN_TO_TEAM ESCALATE REQUEST_CLARIFICATION UNAVAILABLE
    assert table["escalate"][:6] == ["0", "0", "0", "2", "0", "0"]
    languages = {line.split()[0] for line in out.splitlines()[-3:]}
    assert {"en", "es", "fr"} <= languages  # labelled (es) or detected (en, fr)


def test_a_harmful_auto_resolve_exits_1_and_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = evaluate_file(FILES / "harmful.jsonl", capsys)

    assert code == EXIT_HARMFUL
    assert "harmful auto-resolves: 2" in out
    assert "line 2 [escalate, en] 'Mislabelled on purpose'" in out
    assert "line 3 [human, de] 'Papierstau'" in out
    assert "line 1 " not in out.split("harmful auto-resolves")[1].split("critical recall")[0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_json.jsonl", "not_json.jsonl:2: not JSON"),
        ("unknown_label.jsonl", "unknown_label.jsonl:2: expect must be one of"),
        ("no_text.jsonl", "no_text.jsonl:1: needs a description or an issue_type"),
        ("not_objects.jsonl", "not_objects.jsonl:1: a line must be a JSON object"),
        ("empty.jsonl", "empty.jsonl: no labelled tickets"),
        ("missing.jsonl", "missing.jsonl: cannot be read"),
    ],
)
def test_a_file_it_cannot_use_exits_2_and_says_where(
    capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    code, out, err = evaluate_file(FILES / name, capsys)

    assert code == EXIT_BAD_FILE
    assert message in err
    assert out == ""


def test_a_file_that_is_not_utf8_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"expect": "clarify", "description": "aidez-moi, ça bloque"}'.encode("latin-1"))

    assert evaluate_file(path, capsys)[0] == EXIT_BAD_FILE


def test_the_command_line_exits_with_the_status(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ENVIRONMENT": "local",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    statuses = {}
    for name in ("clean.jsonl", "harmful.jsonl", "not_json.jsonl"):
        result = subprocess.run(
            [sys.executable, "-m", "manage", "agent", "eval", str(FILES / name)],  # the configured analyser
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        statuses[name] = result.returncode
        if name == "clean.jsonl":
            assert "configured analyser EmbeddedAgent kb-" in result.stdout
    assert statuses == {"clean.jsonl": 0, "harmful.jsonl": 1, "not_json.jsonl": 2}


def test_the_configured_analyser_needs_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AzureWebJobsStorage", "AzureWebJobsStorage__accountName"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setattr(manage, "load_local_settings", lambda root: None)

    assert manage.main(["agent", "eval", str(FILES / "clean.jsonl")]) == EXIT_BAD_FILE


class Failing:
    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        raise AgentUnavailable("down")


class Overconfident:
    """An analyser that auto-resolves everything: the decision table lets a confident fix through."""

    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        return Analysis(
            confidence=0.99,
            recommended_action="auto_resolve",
            analysis=Details(severity="low", category="other"),
            solution=Solution(steps=["Restart."], success_probability=0.99),
            knowledge_base_entries=["made-up"],
        )


def test_an_analyser_failure_is_a_deferral_not_an_action() -> None:
    rows = read_labelled(FILES / "clean.jsonl")

    report = evaluate(rows, Failing(), Thresholds())

    assert {o.decided for o in report.outcomes} == {UNAVAILABLE}
    assert report.harmful == [] and report.exit_code == EXIT_OK
    assert str(report.critical_recall()) == "0/2 (0.0%)"


def test_every_auto_resolve_of_a_ticket_that_is_not_resolve_is_harmful() -> None:
    out, err = io.StringIO(), io.StringIO()

    code = run(FILES / "clean.jsonl", Overconfident(), Thresholds(), out, err)

    assert code == EXIT_HARMFUL
    assert "harmful auto-resolves: 4" in out.getvalue()
    assert "coverage (known problems given a solution): 1/1 (100.0%)" in out.getvalue()


@pytest.mark.parametrize("name", ["agent_dev_set.jsonl", "agent_dev_set_intl.jsonl"])
def test_both_dev_sets_evaluate_clean(name: str) -> None:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not part of this checkout")
    out, err = io.StringIO(), io.StringIO()

    code = run(path, EmbeddedAgent(), Thresholds(), out, err)

    print(out.getvalue())
    assert code == EXIT_OK, out.getvalue()
    assert "harmful auto-resolves: 0" in out.getvalue()
    assert "critical recall (escalate tickets escalated): " in out.getvalue()
    assert "(100.0%)" in out.getvalue().split("critical recall")[1].splitlines()[0]
