"""`cityedge ota ...`: the node's updater and supervisor (A/B slots, TUF, health gates)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

ota_app = typer.Typer(
    help="Over-the-air updates on a node: supervise, provision, check, status.", no_args_is_help=True
)
CONFIG = typer.Option(..., "--config", "-c", help="The node's OTA config (YAML); see docs/ota.md.")
FAULT_ENV = "CITYEDGE_FAULT"


def _load(config: Path) -> Any:
    from cityedge.configfile import load_config
    from cityedge.edge.ota.config import OtaConfig

    return load_config(OtaConfig, config)


def _fault_hook() -> Any:
    """CITYEDGE_FAULT=ota_kill_at:STATE (tests only): SIGKILL this process right after it
    persisted STATE, as a power loss would."""
    fault = os.environ.get(FAULT_ENV, "")
    if not fault.startswith("ota_kill_at:"):
        return None
    target = fault.split(":", 1)[1]

    def hook(event: str, state: Any) -> None:
        if event != "boot" and state.value == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@ota_app.command("supervise")
def supervise(config: Path = CONFIG) -> None:
    """Run the workload from the committed slot and update it: on a schedule and on `down/ota`
    notices; install into the other slot, restart, soak under the health gates, commit or
    roll back. Runs until SIGTERM. Env CITYEDGE_FAULT=ota_kill_at:STATE (tests only)."""
    from cityedge.edge.ota.supervisor import Supervisor, build_updater

    cfg = _load(config)
    sup = Supervisor(cfg, build_updater(cfg, on_persist=_fault_hook()))
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        sup.wake()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    sup.run(stop)


@ota_app.command("provision")
def provision(
    config: Path = CONFIG, bundle: Path = typer.Option(..., "--bundle", help="The factory release.")
) -> None:
    """Install the factory release into slot a and commit it (before the first `supervise`)."""
    from cityedge.edge.ota.slots import SlotStore
    from cityedge.edge.ota.updater import provision as do_provision

    cfg = _load(config)
    state = do_provision(SlotStore(cfg.ota_dir), bundle, cfg.accept_channels[-1])
    typer.echo(f"provisioned {state.committed_version} in slot {state.committed_slot}")


@ota_app.command("status")
def status(config: Path = CONFIG) -> None:
    """The node's OTA state: committed slot and version, floor, any attempt in progress."""
    import msgspec

    from cityedge.edge.ota.slots import NodeState, SlotStore

    cfg = _load(config)
    state = SlotStore(cfg.ota_dir).load(NodeState())
    typer.echo(json.dumps(msgspec.to_builtins(state), indent=2))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(ota_app, name="ota")
