"""The configuration reference, generated from the configuration models.

`render_markdown()` is `docs/configuration.md` (keys, types, defaults from the models;
meanings from each field's `description` or `meanings.MEANINGS`); `json_schema(section)` is
the model's JSON Schema with those meanings filled in. A test keeps the page in sync.
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cityedge.configdoc.meanings import MEANINGS
from cityedge.protocol.errors import ConfigError

__all__ = ["SECTIONS", "Row", "Section", "json_schema", "missing_meanings", "render_markdown", "rows"]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    model: str  # "module:Class", imported when needed
    intro: str
    links: Mapping[str, str] = field(default_factory=dict)  # field -> the section documenting it

    def load(self) -> type[BaseModel]:
        module, _, name = self.model.partition(":")
        model = getattr(importlib.import_module(module), name)
        assert isinstance(model, type) and issubclass(model, BaseModel)
        return model


SECTIONS: tuple[Section, ...] = (
    Section(
        "node", "Node (`cityedge edge run --config node.yaml`)", "cityedge.edge.config:EdgeConfig",
        "One file per edge node. `cityedge district init` writes a working one.",
        {"identity": "identity", "cameras": "camera", "retention": "retention"},
    ),
    Section(
        "identity", "Node identity (`identity:` in the node config)", "cityedge.edge.config:IdentityConfig",
        "With this section (instead of `uplink.tls`) the agent takes its uplink certificate from what "
        "`cityedge enroll` wrote and renews it at two thirds of its life over mutual TLS.",
    ),
    Section(
        "camera", "Camera (one item of `cameras:` in the node config)",
        "cityedge.edge.camera.config:CameraConfig",
        "Validated when the agent starts; errors name the camera and the field.",
    ),
    Section(
        "retention", "Retention (`retention:` in the node config)", "cityedge.edge.retention:RetentionConfig",
        "Raw video stays on the node: kept for `ttl_s` under a byte cap, never uplinked.",
    ),
    Section(
        "ingest", "Cloud ingest (`cityedge cloud ingest --config ingest.yaml`)",
        "cityedge.cloud.ingest.config:IngestConfig",
        "One file per ingest replica; each replica has its own certificate (identity).",
    ),
    Section(
        "control-plane", "Control plane (`cityedge api serve --config control-plane.yaml`)",
        "cityedge.cloud.config:ControlPlaneConfig",
        "Also read by `ca status|issue|renew|publish-crl`, `inventory import` and `device token|revoke` "
        "(`--config`); their options override its keys.",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    key: str  # dotted path in the file; `name.*` for a mapping's entries, `name[]` for a list's items
    type: str
    default: str
    meaning: str | None
    declared: str  # Class.field, the key of MEANINGS


def section(key: str) -> Section:
    for item in SECTIONS:
        if item.key == key:
            return item
    raise ConfigError(f"unknown config section {key!r}; one of {', '.join(s.key for s in SECTIONS)}")


def _declaring(model: type[BaseModel], name: str) -> str:
    owner = next(c for c in model.__mro__ if name in getattr(c, "__annotations__", {}))
    return f"{owner.__name__}.{name}"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _suffix(annotation: Any) -> str:
    """How a nested model's keys hang off its field: `.`, `.*.` (mapping), `[].` (list)."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return next((_suffix(a) for a in typing.get_args(annotation) if a is not type(None)), ".")
    if origin is dict:
        return ".*" + _suffix(typing.get_args(annotation)[1])
    if origin is list:
        return "[]" + _suffix(typing.get_args(annotation)[0])
    return "."


def _walk(model: type[BaseModel], prefix: str, links: Mapping[str, str]) -> Iterator[Row]:
    for name, info in model.model_fields.items():
        key, declared = prefix + name, _declaring(model, name)
        link = links.get(name) if not prefix else None
        meaning = info.description or MEANINGS.get(declared)
        if link is not None:
            meaning = f"{meaning} (keys: [{section(link).title}](#{link}))"
        yield Row(key, _type(info.annotation, info), _default(info), meaning, declared)
        if link is None:
            for sub in _models(info.annotation):
                yield from _walk(sub, key + _suffix(info.annotation).rstrip(".") + ".", {})


def rows(key: str) -> list[Row]:
    item = section(key)
    return list(_walk(item.load(), "", item.links))


def missing_meanings() -> list[str]:
    """Keys no description and no MEANINGS entry explain (the sync test lists them)."""
    return sorted(
        {f"{s.key}: {r.key} ({r.declared})" for s in SECTIONS for r in rows(s.key) if not r.meaning}
    )


_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
_LIMITS = (
    (Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"),
    (MinLen, "min_length", "length >="), (MaxLen, "max_length", "length <="),
)  # fmt: skip


def _type(annotation: Any, info: FieldInfo | None = None) -> str:
    text = _type_name(annotation)
    limits = []
    for meta in info.metadata if info is not None else []:
        for cls, attr, sign in _LIMITS:
            if isinstance(meta, cls):
                limits.append(f"{sign} {getattr(meta, attr)}")
        if getattr(meta, "pattern", None):
            limits.append(f"matching `{meta.pattern}`")
    return f"{text}, {', '.join(limits)}" if limits else text


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        named = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of name to {_type_name(args[1])}"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return _SCALARS.get(
        annotation, "any" if annotation is Any else getattr(annotation, "__name__", str(annotation))
    )


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{json.dumps(value, default=str)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """`docs/configuration.md`, exactly."""
    out = [
        "# Configuration reference",
        "",
        "Every cityedge process reads one YAML file, validated when it starts: unknown keys are",
        "refused and every error names the file and the key. This page is generated from the",
        "configuration models (`cityedge config docs > docs/configuration.md`); a test fails when a",
        "model gains a key this page does not describe. `cityedge config schema SECTION` prints a",
        "section's JSON Schema, `cityedge config check SECTION FILE` validates a file.",
        "",
        "In the key column, `a.b` is key `b` inside section `a`, `a.*.b` is key `b` of any entry of",
        "mapping `a`, and `a[].b` is key `b` of each item of list `a`.",
    ]
    for item in SECTIONS:
        out += ["", f'<a id="{item.key}"></a>', "", f"## {item.title}", "", item.intro, ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for row in rows(item.key):
            cells = (f"`{row.key}`", row.type, row.default, row.meaning or "**undocumented**")
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def json_schema(key: str) -> dict[str, Any]:
    """The section's JSON Schema, with every property's meaning as its description."""
    model = section(key).load()
    schema = model.model_json_schema()
    for sub in [model, *_nested(model)]:
        props = (schema if sub is model else schema.get("$defs", {}).get(sub.__name__, {})).get(
            "properties", {}
        )
        for name, prop in props.items():
            meaning = MEANINGS.get(_declaring(sub, name))
            if meaning and "description" not in prop:
                prop["description"] = meaning
    return schema


def _nested(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> list[type[BaseModel]]:
    seen = seen if seen is not None else set()
    for info in model.model_fields.values():
        for sub in _models(info.annotation):
            if sub not in seen:
                seen.add(sub)
                _nested(sub, seen)
    return list(seen)
