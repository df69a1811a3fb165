"""Grey frames from the luma plane: what OpenCV's BGR-to-grey gives from the decoder's BGR
(within rounding), for limited- and full-range video, at native and scaled sizes; a motion
camera's source delivers them, a camera with a colour detector still gets BGR."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cityedge.edge.camera.luma import grey_image
from cityedge.edge.camera.pipeline import _source_config
from cityedge.edge.camera.sources import FrameSource
from tests.edge.camera.test_pipeline import camera, road_frames, write_video


def _clip(path: Path, pix_fmt: str, width: int = 322) -> Path:
    """A textured, moving scene (gradients and colours) 322 px wide: a padded luma stride."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, 180, pix_fmt
        for i in range(10):
            x = np.linspace(0, 255, width, dtype=np.float32)
            img = np.stack(
                [np.tile(x, (180, 1)), np.tile(x[::-1], (180, 1)), np.full((180, width), 40.0)], -1
            )
            img[60:120, 10 * i : 10 * i + 60] = (30, 200, 240)
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
@pytest.mark.parametrize("size", [None, (160, 90)])
def test_grey_from_luma_matches_opencv_grey_of_the_decoders_bgr(
    tmp_path: Path, pix_fmt: str, size: tuple[int, int] | None
) -> None:
    with av.open(str(_clip(tmp_path / "clip.mp4", pix_fmt))) as container:
        frames = list(container.decode(video=0))
    assert frames and frames[0].format.name == pix_fmt
    for frame in frames:
        w, h = size or (frame.width, frame.height)
        bgr = frame.to_ndarray(format="bgr24", width=w, height=h)
        expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(int)
        grey = grey_image(frame, size)
        assert grey.shape == (h, w) and grey.dtype == np.uint8 and grey.flags.c_contiguous
        diff = np.abs(grey.astype(int) - expected)
        assert np.percentile(diff, 99) <= 3 and diff.mean() < 2.0, (diff.mean(), diff.max())


def test_a_motion_camera_reads_grey_frames_and_a_colour_detector_reads_bgr(tmp_path: Path) -> None:
    video = write_video(tmp_path / "road.mp4", road_frames(1.0))
    shapes = {}
    for name in ("motion", "onnx"):
        cfg = camera(str(video), detector={"name": name}, realtime=False)
        source = FrameSource(_source_config(cfg), name=name).start()
        try:
            frame = source.read(timeout=10)
        finally:
            source.stop()
        assert frame is not None
        shapes[name] = frame.image.shape
    assert shapes == {"motion": (180, 320), "onnx": (180, 320, 3)}
