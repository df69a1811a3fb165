"""The exception tree in `protocol/errors.py`'s docstring is the whole tree: every subclass of
CityEdgeError anywhere in cityedge is listed there under its parent."""

from __future__ import annotations

import importlib
import pkgutil
import re

import cityedge
from cityedge.protocol import errors
from cityedge.protocol.errors import CityEdgeError


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_cityedge_error_is_in_the_documented_tree() -> None:
    for info in pkgutil.walk_packages(cityedge.__path__, "cityedge."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)
    doc = errors.__doc__ or ""
    depth = {name: len(indent) for indent, name in re.findall(r"^([ |]*)\+-- (\w+)", doc, re.MULTILINE)}
    assert len(depth) > 10  # the docstring holds the tree
    for cls in _subclasses(CityEdgeError):
        if cls.__module__.startswith("tests"):
            continue
        assert cls.__name__ in depth, f"{cls.__module__}.{cls.__name__} is not in protocol/errors.py's tree"
        parent = cls.__mro__[1]
        if parent is not CityEdgeError:
            assert depth[cls.__name__] > depth[parent.__name__], f"{cls.__name__} not under {parent.__name__}"
