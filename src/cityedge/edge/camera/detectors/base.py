"""The detector seam: a detector turns a frame (and optional motion regions) into detections.

Plugins register under a name (`motion`, `onnx`, ...) and are built from their config
section, so hardware-specific code stays behind the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from numpy.typing import NDArray

from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box, Detection

__all__ = ["Detector", "create_detector", "register_detector"]


class Detector(Protocol):
    def detect(self, frame: NDArray[Any], regions: Sequence[Box] | None = None) -> list[Detection]:
        """Detections in frame pixel coordinates; `regions` limits the search when given."""
        ...


_REGISTRY: dict[str, Callable[[dict[str, Any]], Detector]] = {}


def register_detector(
    name: str,
) -> Callable[[Callable[[dict[str, Any]], Detector]], Callable[[dict[str, Any]], Detector]]:
    def wrap(factory: Callable[[dict[str, Any]], Detector]) -> Callable[[dict[str, Any]], Detector]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def create_detector(name: str, options: dict[str, Any]) -> Detector:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown detector {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](options)
