"""The camera benchmark's ONNX model: YOLOv8n's compute and output layout with random weights.

`build_bench_model` writes the graph once into a cache directory and, for `--int8`, the same
graph statically quantized (QDQ) by ONNX Runtime. Tests use it to check the detector plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BENCH_CLASSES", "YOLOV8N_320_MACS", "build_bench_model"]

# YOLOv8n: 8.7 GFLOPs at 640x640 as Ultralytics counts them (2 FLOPs per multiply-accumulate),
# so 8.7 / 4 = 2.2 GFLOPs = 1.09 G multiply-accumulates at 320x320. The bench model's conv
# stack is sized to the same MAC count (counted layer by layer in _bench_graph).
YOLOV8N_320_MACS = 8.7e9 / 2 / 4
BENCH_CLASSES = 80


def build_bench_model(cache: Path, size: int = 320, nc: int = BENCH_CLASSES, *, int8: bool = False) -> Path:
    """A YOLOv8-shaped ONNX graph ([1, 4+nc, 2100] at 320) with random weights and ~1.09 GMACs.

    `int8`: the same graph quantized by ONNX Runtime (static, QDQ, per-channel int8 weights,
    calibrated on random images: with random weights, ranges are all that matter).
    """
    path = cache / f"yolov8n-like-{size}.onnx"
    if not path.exists():
        model, _ = _bench_graph(size, nc)
        import onnx

        tmp = path.with_suffix(".part")
        onnx.save(model, str(tmp))
        tmp.replace(path)
    if not int8:
        return path
    qpath = cache / f"yolov8n-like-{size}-int8-qdq.onnx"
    if not qpath.exists():
        _quantize(path, qpath, size)
    return qpath


def _quantize(src: Path, dst: Path, size: int) -> None:
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self._it = iter([{"images": rng.random((1, 3, size, size), dtype=np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    tmp = dst.with_suffix(".part")
    quantize_static(
        str(src),
        str(tmp),
        Images(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    tmp.replace(dst)


def _bench_graph(size: int, nc: int, head: int = 77) -> tuple[Any, int]:
    """Backbone of strided 3x3 convs with residual pairs, YOLOv8-style decoupled heads at
    strides 8/16/32. MACs = sum over convs of Cout*Hout*Wout*Cin*k*k; head width 77 brings
    the total to 1.09e9 at 320x320 (YOLOv8n: 1.09e9)."""
    import numpy as np
    from onnx import TensorProto, checker, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes: list[Any] = []
    inits: list[Any] = []
    macs = 0

    def conv(
        x: str, cin: int, cout: int, k: int, s: int, hw: int, act: bool = True, bias: float = 0.0
    ) -> str:
        nonlocal macs
        name = f"conv{len(nodes)}"
        weight = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32)
        inits.extend(
            [
                numpy_helper.from_array(weight, name + "_w"),
                numpy_helper.from_array(np.full(cout, bias, np.float32), name + "_b"),
            ]
        )
        nodes.append(
            helper.make_node(
                "Conv",
                [x, name + "_w", name + "_b"],
                [name],
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[k // 2] * 4,
            )
        )
        macs += cout * (hw // s) ** 2 * cin * k * k
        if not act:
            return name
        nodes.append(helper.make_node("Relu", [name], [name + "_r"]))
        return name + "_r"

    x, hw, c = conv("images", 3, 16, 3, 2, size), size // 2, 16
    feats = []
    for i, cw in enumerate((32, 64, 128, 256)):
        x, hw, c = conv(x, c, cw, 3, 2, hw), hw // 2, cw
        y = conv(conv(x, c, c, 3, 1, hw), c, c, 3, 1, hw)
        nodes.append(helper.make_node("Add", [x, y], [f"res{i}"]))
        x = f"res{i}"
        if hw <= size // 8:
            feats.append((x, c, hw))
    outs = []
    for j, (f, c, hw) in enumerate(feats):
        box = conv(conv(conv(f, c, head, 3, 1, hw), head, head, 3, 1, hw), head, 4, 1, 1, hw, act=False)
        # Class logits biased low: like a trained model on empty road, few candidates pass.
        cls = conv(conv(conv(f, c, head, 3, 1, hw), head, head, 3, 1, hw), head, nc, 1, 1, hw, False, -12.0)
        nodes.append(helper.make_node("Sigmoid", [cls], [f"score{j}"]))
        nodes.append(helper.make_node("Concat", [box, f"score{j}"], [f"head{j}"], axis=1))
        inits.append(numpy_helper.from_array(np.array([1, 4 + nc, -1], np.int64), f"shape{j}"))
        nodes.append(helper.make_node("Reshape", [f"head{j}", f"shape{j}"], [f"out{j}"]))
        outs.append(f"out{j}")
    nodes.append(helper.make_node("Concat", outs, ["output0"], axis=2))
    graph = helper.make_graph(
        nodes,
        "yolov8n_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    checker.check_model(model)
    return model, macs
