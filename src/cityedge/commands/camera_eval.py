"""`cityedge eval camera`: accuracy of the camera pipeline on the synthetic scenario suite.

Prints one JSON object: per incident type precision, recall (with 95 % Wilson intervals),
false alarms per camera-hour and mean detection delay next to the rule's own threshold,
pooled over every seed offset run (`--seeds`), with each offset's own counts in `per_seed`.
"""

from __future__ import annotations

import json

import typer

__all__ = ["eval_app", "register"]

eval_app = typer.Typer(help="Accuracy evaluations: each prints one JSON object.", no_args_is_help=True)

_SCENARIOS = typer.Option(
    [], "--scenario", help="Run only these presets (clear_day, dusk_noise, heavy_traffic, ghosts, far_320)."
)
_SEED_OFFSET = typer.Option(
    0, "--seed-offset", help="Shift every preset's seed: 0 is what the rules were tuned on."
)
_SEEDS = typer.Option(
    1, "--seeds", min=1, help="Run on K offsets: --seed-offset, +1000, ...; figures pooled."
)
_JOBS = typer.Option(
    None, "--jobs", min=1, help="Worker processes (default: CPUs, at most one per run; 1: in-process)."
)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("camera")
def eval_camera(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (the only output format)."),
    slots: int = typer.Option(7, "--slots", min=1, help="Incident slots per scenario (3 incidents each)."),
    width: int = typer.Option(640, "--width", min=160, help="Frame width (far_320 keeps 320); height 16:9."),
    scenario: list[str] = _SCENARIOS,
    seed_offset: int = _SEED_OFFSET,
    seeds: int = _SEEDS,
    jobs: int | None = _JOBS,
) -> None:
    """Run the synthetic suite through motion perception and the incident rules."""
    from cityedge.sim.evaluate import evaluate_seeds
    from cityedge.sim.scenarios import PRESETS

    size = (width, round(width * 9 / 16))
    names = scenario or list(PRESETS)
    report = evaluate_seeds(names, slots, size, seed_offset, seeds, jobs)
    header = {"suite": names, "slots": slots, "size": list(size), "seed_offset": seed_offset, "fps": 10.0}
    typer.echo(json.dumps({**header, **report}, indent=None if json_out else 2))
