"""local.settings.json: one loader for devhost and `manage`, as Core Tools reads the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.local_settings import load_local_settings

SETTINGS = {"Values": {"LOCALSET_T_A": "from-file", "LOCALSET_T_NONE": None}, "Host": {"LocalHttpPort": 7072}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOCALSET_T_A", "LOCALSET_T_NONE", "WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)


def test_values_are_exported_a_null_as_empty_and_the_host_section_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps(SETTINGS))
    assert load_local_settings(tmp_path) == {"LocalHttpPort": 7072}
    assert os.environ["LOCALSET_T_A"] == "from-file" and os.environ["LOCALSET_T_NONE"] == ""
    monkeypatch.delenv("LOCALSET_T_A")
    monkeypatch.delenv("LOCALSET_T_NONE")


def test_without_the_file_nothing_is_created_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "local.settings.sample.json").write_text(json.dumps(SETTINGS))
    assert load_local_settings(tmp_path) == {}
    assert not (tmp_path / "local.settings.json").exists() and "LOCALSET_T_A" not in os.environ


@pytest.mark.parametrize("marker", ["WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID"])
def test_an_azure_host_reads_no_local_settings_not_even_to_create_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    monkeypatch.setenv(marker, "resolvemeq-prod")
    (tmp_path / "local.settings.json").write_text(json.dumps(SETTINGS))
    (tmp_path / "local.settings.sample.json").write_text(json.dumps(SETTINGS))
    assert load_local_settings(tmp_path, create_from_sample=True) == {}
    assert "LOCALSET_T_A" not in os.environ
