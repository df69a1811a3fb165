"""Decision policy: which incident or congestion change yields which local action."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cityedge.edge.camera.decisions import ActionSpec, DecisionConfig, DecisionPolicy
from cityedge.protocol.vision import CongestionChange as Change
from cityedge.protocol.vision import Incident


def incident(kind: str, lane: str = "north") -> Incident:
    return Incident(
        type=kind,  # type: ignore[arg-type]
        camera="cam-1",
        lane=lane,
        started_at=90.0,
        detected_at=100.0,
        position=(10.0, 20.0),
        track_id=7,
    )


@pytest.mark.parametrize(
    ("kind", "actions"),
    [
        ("stopped_vehicle", ["alert", "raise_lighting"]),
        ("wrong_way", ["alert"]),
        ("congestion", ["alert"]),
    ],
)
def test_each_incident_type_yields_its_default_actions(kind: str, actions: list[str]) -> None:
    out = DecisionPolicy().decide([incident(kind)], [], captured_at=99.95, now=100.0)
    assert [d.action for d in out] == actions
    for d in out:
        assert (d.camera, d.lane, d.captured_at, d.decided_at) == ("cam-1", "north", 99.95, 100.0)
        assert d.params["track_id"] == 7
        assert kind in d.reason


def test_congestion_on_extends_green_and_off_restores_timing() -> None:
    policy = DecisionPolicy()
    on = policy.decide([], [Change("cam-1", "south", True, 50.0, 0.8, 2.0)], captured_at=49.9, now=50.0)
    off = policy.decide([], [Change("cam-1", "south", False, 80.0, 0.1, 60.0)], captured_at=79.9, now=80.0)
    assert [(d.action, d.lane) for d in on] == [("extend_green", "south")]
    assert on[0].params == {"extra_s": 10, "occupancy": 0.8, "mean_speed_px_s": 2.0}
    assert [d.action for d in off] == ["restore_timing"]


def test_configured_actions_replace_the_defaults_and_unlisted_types_yield_nothing() -> None:
    cfg = DecisionConfig.model_validate(
        {
            "on_incident": {"wrong_way": [{"action": "close_ramp", "params": {"ramp": "r2"}}]},
            "on_congestion": [],
        }
    )
    policy = DecisionPolicy(cfg)
    assert policy.decide([incident("stopped_vehicle")], [], captured_at=1.0, now=1.0) == []
    [d] = policy.decide([incident("wrong_way")], [], captured_at=1.0, now=1.0)
    assert (d.action, d.params["ramp"]) == ("close_ramp", "r2")
    assert policy.decide([], [Change("c", "l", True, 1.0, 0.9, 0.5)], captured_at=1.0, now=1.0) == []


def test_several_events_in_one_frame_keep_their_order() -> None:
    out = DecisionPolicy().decide(
        [incident("wrong_way", "a"), incident("stopped_vehicle", "b")],
        [Change("cam-1", "c", True, 1.0, 0.9, 1.0)],
        captured_at=1.0,
        now=1.0,
    )
    assert [(d.action, d.lane) for d in out] == [
        ("alert", "a"),
        ("alert", "b"),
        ("raise_lighting", "b"),
        ("extend_green", "c"),
    ]


def test_bad_decision_config_names_the_field() -> None:
    with pytest.raises(ValidationError, match="on_incident"):
        DecisionConfig.model_validate({"on_incident": {"wrong_way": [{"action": "x", "colour": 1}]}})
    with pytest.raises(ValidationError, match="action"):
        ActionSpec.model_validate({"action": "Not An Action"})
