"""Inventory import: validation with line numbers, all-or-nothing, idempotent re-import."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityedge.cloud.registry import InventoryError, Registry, parse_inventory, plan_import
from tests.support.registry import GUIDE_CSV, NOW

HEADER = "device_id,serial,model,ip,mac,sim"


def test_the_guides_example_imports_with_extra_columns_kept_as_attributes(registry: Registry) -> None:
    csv_text = GUIDE_CSV.replace(HEADER, HEADER + ",pole").replace("SIM-001\n", "SIM-001,P-17\n")
    plan = registry.import_inventory(csv_text, "devices.csv", NOW)
    assert [d.device_id for d in plan.added] == ["edge-node-001"]
    (device,) = registry.store.devices()
    assert (device.serial, device.model, device.ip, device.mac, device.sim) == (
        "SN12345", "NX-500", "10.0.10.21", "aa:bb:cc:dd:ee:ff", "SIM-001",
    )  # fmt: skip
    assert device.attributes == {"pole": "P-17"}


def test_reimporting_is_idempotent_and_reports_what_changed(registry: Registry) -> None:
    registry.import_inventory(GUIDE_CSV, "devices.csv", NOW)
    again = registry.import_inventory(GUIDE_CSV, "devices.csv", NOW)
    assert (again.added, again.changed, again.unchanged) == ([], [], ["edge-node-001"])
    moved = registry.import_inventory(GUIDE_CSV.replace("10.0.10.21", "10.0.10.99"), "devices.csv", NOW)
    assert moved.changes == {"edge-node-001": ["ip"]}
    assert registry.store.devices()[0].ip == "10.0.10.99"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "edge-a,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X\nedge-a,S2,M,10.0.0.2,aa:bb:cc:dd:ee:02,X",
            "devices.csv:3: duplicate device_id 'edge-a' (first on line 2)",
        ),
        (
            "edge-a,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X\nedge-b,S1,M,10.0.0.2,aa:bb:cc:dd:ee:02,X",
            "devices.csv:3: duplicate serial 'S1' (first on line 2)",
        ),
        (
            "edge-a,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X\nedge-b,S2,M,10.0.0.2,AA:BB:CC:DD:EE:01,X",
            "devices.csv:3: duplicate mac 'aa:bb:cc:dd:ee:01' (first on line 2)",
        ),
        ("edge-a,S1,M,10.0.0.1,aa:bb:cc:dd:ee,X", "devices.csv:2: mac 'aa:bb:cc:dd:ee' is not a MAC address"),
        ("edge-a,S1,M,10.0.0.300,aa:bb:cc:dd:ee:01,X", "devices.csv:2: ip '10.0.0.300' is not an IP address"),
        ("Edge_A,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X", "devices.csv:2: device_id 'Edge_A' is outside"),
        ("edge/a,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X", "devices.csv:2: device_id 'edge/a' is outside"),
        ("edge-a,,M,10.0.0.1,aa:bb:cc:dd:ee:01,X", "devices.csv:2: column 'serial' is empty"),
        ("edge-a,S1,M,10.0.0.1", "devices.csv:2: expected 6 fields"),
    ],
)
def test_a_malformed_row_is_named_by_line_and_nothing_is_imported(
    registry: Registry, rows: str, message: str
) -> None:
    good = "edge-z,S9,M,10.0.0.9,aa:bb:cc:dd:ee:09,X"
    with pytest.raises(InventoryError) as err:
        registry.import_inventory(f"{HEADER}\n{rows}\n{good}\n", "devices.csv", NOW)
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems
    assert registry.store.devices() == []


def test_missing_columns_are_named() -> None:
    with pytest.raises(InventoryError, match=r"devices.csv:1: missing column\(s\) mac, sim"):
        parse_inventory("device_id,serial,model,ip\nedge-a,S1,M,10.0.0.1\n", "devices.csv")


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = f"{HEADER}\nedge-a,S1,M,bad-ip,zz,X\nedge-a,S2,M,10.0.0.2,aa:bb:cc:dd:ee:02,X\n"
    with pytest.raises(InventoryError) as err:
        parse_inventory(text, "devices.csv")
    assert len(err.value.problems) == 3


def test_a_serial_already_owned_by_another_device_refuses_the_whole_import(registry: Registry) -> None:
    registry.import_inventory(GUIDE_CSV, "devices.csv", NOW)
    rows = [
        "edge-new,S77,M,10.0.0.7,aa:bb:cc:dd:ee:07,X",
        "edge-node-002,SN12345,M,10.0.0.8,aa:bb:cc:dd:ee:08,X",
    ]
    clash = "\n".join([HEADER, *rows]) + "\n"
    with pytest.raises(InventoryError, match="serial 'SN12345' belongs to edge-node-001"):
        registry.import_inventory(clash, "devices.csv", NOW)
    assert [d.device_id for d in registry.store.devices()] == ["edge-node-001"]


_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
_macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@given(st.lists(st.tuples(_ids, _macs), min_size=1, max_size=20, unique_by=(lambda t: t[0], lambda t: t[1])))
def test_any_clean_inventory_round_trips_and_reimports_as_unchanged(rows: list[tuple[str, str]]) -> None:
    lines = [HEADER] + [
        f"{dev},SN-{i},M,10.0.{i // 250}.{i % 250 + 1},{mac},SIM-{i}" for i, (dev, mac) in enumerate(rows)
    ]
    parsed = parse_inventory("\n".join(lines) + "\n", "gen.csv")
    assert [d.device_id for d in parsed] == [dev for dev, _ in rows]
    first = plan_import([], parsed, "gen.csv")
    assert len(first.added) == len(rows)
    again = plan_import(first.added, parse_inventory("\n".join(lines) + "\n", "gen.csv"), "gen.csv")
    assert (again.added, again.changed, len(again.unchanged)) == ([], [], len(rows))


def test_a_conflict_with_the_registry_names_the_line_of_the_row(registry: Registry) -> None:
    registry.import_inventory(GUIDE_CSV, "devices.csv", NOW)
    rows = [
        "edge-new,S77,M,10.0.0.7,aa:bb:cc:dd:ee:07,X",
        "edge-other,S78,M,10.0.0.8,aa:bb:cc:dd:ee:ff,X",
        "edge-node-002,SN12345,M,10.0.0.9,aa:bb:cc:dd:ee:09,X",
    ]
    with pytest.raises(InventoryError) as err:
        registry.import_inventory("\n".join([HEADER, *rows]) + "\n", "devices.csv", NOW)
    assert err.value.problems == [
        "devices.csv:3: mac 'aa:bb:cc:dd:ee:ff' belongs to edge-node-001 in the registry, not to edge-other"
        " (change that device first, or correct this row)",
        "devices.csv:4: serial 'SN12345' belongs to edge-node-001 in the registry, not to edge-node-002"
        " (change that device first, or correct this row)",
    ]


def test_a_file_that_is_not_utf8_is_refused_with_line_and_column(registry: Registry) -> None:
    rows = "edge-a,S1,M,10.0.0.1,aa:bb:cc:dd:ee:01,X\nedge-b,S2,Café,10.0.0.2,aa:bb:cc:dd:ee:02,X\n"
    text = f"{HEADER}\n{rows}"
    with pytest.raises(InventoryError) as err:
        registry.import_inventory(text.encode("latin-1"), "devices.csv", NOW)
    (problem,) = err.value.problems
    assert problem.startswith("devices.csv:3: byte 0xe9 at column 14 is not UTF-8; save the file as UTF-8")
    assert registry.store.devices() == []


def test_a_utf8_file_with_a_byte_order_mark_imports(registry: Registry) -> None:
    plan = registry.import_inventory(("\ufeff" + GUIDE_CSV).encode(), "devices.csv", NOW)
    assert [d.device_id for d in plan.added] == ["edge-node-001"]
