"""`cityedge config ...`: every configuration key, as JSON Schema or as the reference page."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]

config_app = typer.Typer(
    help="Configuration: JSON Schema, the reference page, checking a file.", no_args_is_help=True
)
SECTION = typer.Argument(..., help="node | identity | camera | retention | ingest | control-plane")


@config_app.command("schema")
def schema(section: str = SECTION) -> None:
    """Print a section's JSON Schema (for editors and CI); descriptions say what each key means."""
    from cityedge.configdoc import json_schema

    typer.echo(json.dumps(json_schema(section), indent=2))


@config_app.command("docs")
def docs() -> None:
    """Print docs/configuration.md, generated from the configuration models."""
    from cityedge.configdoc import render_markdown

    typer.echo(render_markdown(), nl=False)


@config_app.command("check")
def check(
    section: str = SECTION, file: Path = typer.Argument(..., help="The YAML file to validate.")
) -> None:
    """Validate a config file as the process that reads it would, without starting anything."""
    from cityedge.configdoc import section as find
    from cityedge.configfile import load_config

    load_config(find(section).load(), file)
    typer.echo(f"{file}: a valid {section} config")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
