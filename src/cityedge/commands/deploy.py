"""`cityedge deploy size|render|pin`: the K3s manifests in deploy/k8s (docs/deploy.md).

The logic lives in `cityedge.deploy.sizing` and `cityedge.deploy.manifests`; these commands
parse options, call one function, print.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]

deploy_app = typer.Typer(
    help="Container image and K3s manifests: sizing, rendering, pinning.", no_args_is_help=True
)


@deploy_app.command("size")
def deploy_size(
    bench: Path = typer.Option(
        ..., "--bench", help="Node profile JSON: {camera: <bench camera>, memory_bytes: N}."
    ),
    headroom: float = typer.Option(0.4, "--headroom", help="Added to the measured usage: 0.3 to 0.5."),
    cpu_burst: float = typer.Option(2.0, "--cpu-burst", help="CPU limit = request x this."),
    memory_burst: float = typer.Option(1.25, "--memory-burst", help="Memory limit = request x this."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the kustomize patch here (e.g. the edge overlay's sizing.yaml)."
    ),
) -> None:
    """Requests and limits for the agent from a node profile's benchmarks; prints them as JSON."""
    from cityedge.deploy.sizing import load_usage, patch, size

    sizing = size(load_usage(bench), headroom, cpu_burst, memory_burst)
    if out is not None:
        out.write_text(patch(sizing))
    typer.echo(json.dumps({**sizing.as_dict(), "patch": str(out) if out else None}))


@deploy_app.command("render")
def deploy_render(
    overlay: str = typer.Option(..., "--overlay", help="edge, cloud or dev."),
    check: bool = typer.Option(
        True,
        "--check/--no-check",
        help="Refuse a pod without limits, root, a writable root fs or an unpinned image.",
    ),
) -> None:
    """Print the overlay's manifests (kubectl kustomize), checked."""
    from cityedge.deploy.manifests import check_stream, render

    stream = render(overlay)
    if check:
        check_stream(stream, overlay)
    typer.echo(stream, nl=False)


@deploy_app.command("pin")
def deploy_pin(
    image: str = typer.Argument(..., help="The image by digest: REGISTRY/NAME@sha256:<64 hex>."),
) -> None:
    """Point every overlay at this image digest (what GitOps then deploys)."""
    from cityedge.deploy.manifests import pin_image

    typer.echo(json.dumps({"pinned": image, "overlays": [str(p) for p in pin_image(image)]}))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
