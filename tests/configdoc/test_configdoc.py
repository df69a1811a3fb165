"""docs/configuration.md is generated from the configuration models and stays in sync with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.configdoc import (
    SECTIONS,
    Section,
    json_schema,
    meanings,
    missing_meanings,
    render_markdown,
    rows,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_reference_page_is_what_the_models_say() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/configuration.md is out of date: run `cityedge config docs > docs/configuration.md`"
    )


def test_every_key_of_every_section_says_what_it_means() -> None:
    assert missing_meanings() == [], (
        "describe these keys (Field(description=...) or cityedge/configdoc/meanings.py), then regenerate"
    )


class Grown(BaseModel):
    documented: int = 1
    added_without_a_word: int = 2


def test_a_key_added_without_documentation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    grown = Section("grown", "Grown", f"{__name__}:Grown", "a model that gained a key")
    monkeypatch.setattr("cityedge.configdoc.SECTIONS", (*SECTIONS, grown))
    monkeypatch.setitem(meanings.MEANINGS, "Grown.documented", "a key with its meaning")
    assert missing_meanings() == ["grown: added_without_a_word (Grown.added_without_a_word)"]
    assert "| `added_without_a_word` | integer | `2` | **undocumented** |" in render_markdown()


def test_nested_keys_types_and_defaults_come_from_the_models() -> None:
    node = {r.key: r for r in rows("node")}
    assert (
        node["uplink.backoff_cap_s"].type == "number, > 0"
        and node["uplink.backoff_cap_s"].default == "`60.0`"
    )
    assert node["outbox.streams.*.when_full"].type == "one of `drop_oldest`, `reject_new`"
    assert node["node_id"].default == "required"
    camera = {r.key for r in rows("camera")}
    assert "zones.lanes[].polygon" in camera
    assert {r.key for r in rows("control-plane")} >= {"device_cert_days", "api.operator_tokens_file"}


def test_the_schema_command_prints_json_schema_with_meanings() -> None:
    result = CliRunner().invoke(app, ["config", "schema", "ingest"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["properties"]["share_group"]["description"].startswith("null: one replica")
    assert json_schema("node")["$defs"]["TlsFiles"]["properties"]["keyfile"]["description"]


def test_an_unknown_section_is_named() -> None:
    result = CliRunner().invoke(app, ["config", "schema", "nodes"])
    assert result.exit_code != 0
    assert "unknown config section 'nodes'; one of node, identity, camera" in str(result.exception)
