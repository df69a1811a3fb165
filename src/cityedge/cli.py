"""The `cityedge` command: one Typer app, command groups registered from `cityedge.commands`.

Only the CLI reads the environment; every command builds one typed config and passes it on.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

from cityedge import __version__
from cityedge.protocol.errors import CityEdgeError

app = typer.Typer(
    name="cityedge",
    help="Smart-city edge stack: run nodes, the control plane, pilots and benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks: each prints one JSON object (see docs/benchmarks.md).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cityedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register_command_groups() -> None:
    """Every module in `cityedge.commands` registers its commands on `app` or `bench_app`."""
    import importlib
    import pkgutil

    from cityedge import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(app, bench_app)


_register_command_groups()


def main() -> None:
    try:
        app()
    except CityEdgeError as exc:
        # Escaped: messages quote patterns such as ^[a-z0-9][a-z0-9-]{0,62}$ that Rich would eat.
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
