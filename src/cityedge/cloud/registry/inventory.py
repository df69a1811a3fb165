"""Inventory CSV: parse and validate every row (line-numbered errors), then plan an import.

Pure: bytes or text in, rows or an InventoryError listing every problem (each with its line)
out; `plan_import` compares rows with what the registry holds and says what an import would
add and change, or why it cannot.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cityedge.cloud.store.registry import DeviceRecord
from cityedge.pki.profile import DEVICE_ID_PATTERN
from cityedge.protocol.errors import InventoryError

__all__ = [
    "COLUMNS",
    "ImportPlan",
    "InventoryError",
    "InventoryRow",
    "decode_inventory",
    "parse_inventory",
    "plan_import",
]

COLUMNS = ("device_id", "serial", "model", "ip", "mac", "sim")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_UNIQUE = ("device_id", "serial", "mac")


@dataclass(frozen=True)
class InventoryRow(DeviceRecord):
    """A device as read from the file, with the line it came from (for later errors)."""

    line: int = field(default=0, compare=False)


def decode_inventory(data: bytes, source: str) -> str:
    """The file's text (UTF-8, with or without a BOM); a bad byte is named by line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        problem = (
            f"{source}:{line}: byte 0x{data[exc.start]:02x} at column {exc.start - start + 1} is not "
            "UTF-8; save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)"
        )
        raise InventoryError(source, [problem]) from None


@dataclass(frozen=True)
class ImportPlan:
    added: list[DeviceRecord] = field(default_factory=list)
    changed: list[DeviceRecord] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)  # device id -> changed fields

    def summary(self) -> dict[str, object]:
        return {
            "added": [d.device_id for d in self.added],
            "changed": self.changes,
            "unchanged": len(self.unchanged),
        }


def _row_problems(row: Mapping[str, str], where: str) -> list[str]:
    problems = [f"{where}: column {col!r} is empty" for col in COLUMNS if not row[col]]
    if row["device_id"] and not DEVICE_ID_PATTERN.match(row["device_id"]):
        problems.append(f"{where}: device_id {row['device_id']!r} is outside {DEVICE_ID_PATTERN.pattern}")
    if row["mac"] and not _MAC.match(row["mac"]):
        problems.append(f"{where}: mac {row['mac']!r} is not a MAC address like aa:bb:cc:dd:ee:ff")
    if row["ip"]:
        try:
            ipaddress.ip_address(row["ip"])
        except ValueError:
            problems.append(f"{where}: ip {row['ip']!r} is not an IP address")
    return problems


def _record(row: Mapping[str, str], extras: Sequence[str], line: int) -> InventoryRow:
    attrs = {name: row[name] for name in extras}
    return InventoryRow(
        row["device_id"], row["serial"], row["model"], row["ip"], row["mac"], row["sim"], attrs, line
    )


def _header_problems(header: Sequence[str] | None, source: str) -> list[str]:
    if not header:
        return [f"{source}:1: empty file (expected a header {','.join(COLUMNS)})"]
    missing = [c for c in COLUMNS if c not in header]
    dupes = sorted({c for c in header if header.count(c) > 1})
    return [f"{source}:1: missing column(s) {', '.join(missing)}"] * bool(missing) + [
        f"{source}:1: repeated column(s) {', '.join(dupes)}"
    ] * bool(dupes)


def _duplicates(row: Mapping[str, str], seen: dict[str, dict[str, int]], where: str, line: int) -> list[str]:
    """Values of the unique columns seen on an earlier line (and remember this line's)."""
    problems = []
    for col in _UNIQUE:
        if row[col] and (first := seen[col].get(row[col])) is not None:
            problems.append(f"{where}: duplicate {col} {row[col]!r} (first on line {first})")
        seen[col].setdefault(row[col], line)
    return problems


def parse_inventory(text: str | bytes, source: str = "inventory") -> list[InventoryRow]:
    """Every row as a device, or InventoryError naming each bad line."""
    if isinstance(text, bytes):
        text = decode_inventory(text, source)
    reader = csv.DictReader(io.StringIO(text), restkey="\0extra", restval=None)
    header = [h.strip() for h in reader.fieldnames or []]
    if problems := _header_problems(header, source):
        raise InventoryError(source, problems)
    reader.fieldnames = header
    extras = [h for h in header if h not in COLUMNS]
    rows: list[InventoryRow] = []
    problems = []
    seen: dict[str, dict[str, int]] = {col: {} for col in _UNIQUE}
    for raw in reader:
        where = f"{source}:{reader.line_num}"
        if raw.get("\0extra") or any(v is None for v in raw.values()):
            problems.append(f"{where}: expected {len(header)} fields")
            continue
        row = {k: (v or "").strip() for k, v in raw.items()}
        row["mac"] = row["mac"].lower()
        problems += _row_problems(row, where) + _duplicates(row, seen, where, reader.line_num)
        rows.append(_record(row, extras, reader.line_num))
    if problems:
        raise InventoryError(source, problems)
    return rows


def _diff(old: DeviceRecord, new: DeviceRecord) -> list[str]:
    fields = ("serial", "model", "ip", "mac", "sim", "attributes")
    return [f for f in fields if getattr(old, f) != getattr(new, f)]


def plan_import(existing: Sequence[DeviceRecord], rows: Sequence[DeviceRecord], source: str) -> ImportPlan:
    """What importing `rows` would do; refuses serials or MACs that belong to another device."""
    by_id = {d.device_id: d for d in existing}
    owner = {("serial", d.serial): d.device_id for d in existing} | {
        ("mac", d.mac): d.device_id for d in existing
    }
    plan, problems = ImportPlan(), []
    for row in rows:
        where = f"{source}:{row.line}" if isinstance(row, InventoryRow) and row.line else source
        for col in ("serial", "mac"):
            holder = owner.get((col, getattr(row, col)))
            if holder is not None and holder != row.device_id:
                problems.append(
                    f"{where}: {col} {getattr(row, col)!r} belongs to {holder} in the registry, not to "
                    f"{row.device_id} (change that device first, or correct this row)"
                )
        old = by_id.get(row.device_id)
        if old is None:
            plan.added.append(row)
        elif changes := _diff(old, row):
            plan.changed.append(row)
            plan.changes[row.device_id] = changes
        else:
            plan.unchanged.append(row.device_id)
    if problems:
        raise InventoryError(source, problems)
    return plan
