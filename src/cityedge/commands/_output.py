"""Shared output for commands: a Rich table or one JSON object per line. (Not a command
group: the leading underscore keeps `cli.py` from registering it.)"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import typer

__all__ = ["print_rows", "stop_on_signals"]


def print_rows(
    title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, as_json: bool
) -> None:
    """Rows as JSON lines (every field) or as a table (the named columns, as text)."""
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row).decode())
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*columns, title=escape(title))
    for row in rows:
        table.add_row(*(escape(_text(row.get(c))) for c in columns))
    Console().print(table)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C)."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    return done
