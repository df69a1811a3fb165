"""The district pilot: run the use case from its spec on one machine and judge every SLO from measured data.

`load_spec` reads a spec file (or the default that ships here), `run_pilot` brings the
district up, plays it and judges it, and `write_json` / `write_html` write the reports.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cityedge.protocol.errors import ConfigError
from cityedge.protocol.spec import UseCaseSpec, parse_spec

__all__ = ["DEFAULT_SPEC", "load_spec"]

DEFAULT_SPEC = "district.yaml"


def load_spec(path: Path | None) -> UseCaseSpec:
    """The spec at `path`, or the default district spec shipped with cityedge; a rollout's
    bundle given by path is checked here too, before anything starts."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_SPEC).read_text()
        return parse_spec(text, f"(default) {DEFAULT_SPEC}")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the spec: {exc.strerror}") from None
    spec = parse_spec(text, str(path))
    if spec.rollout is not None:
        from cityedge.sim.pilot.releases import given_bundle

        given_bundle(spec.rollout, spec.source)
    return spec
