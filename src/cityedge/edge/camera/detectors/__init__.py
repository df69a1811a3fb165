"""Detector plugins behind one small interface and a registry (motion, onnx, ...)."""

from cityedge.edge.camera.detectors.base import Detector, create_detector, register_detector

__all__ = ["Detector", "create_detector", "register_detector"]
