"""The motion detector on synthetic frames: real OpenCV, a moving block on a noisy road."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from cityedge.edge.camera.detectors.base import create_detector
from cityedge.edge.camera.detectors.motion import MotionConfig, MotionDetector, merge_boxes
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box

W, H = 640, 360


def road(seed: int = 0, level: int = 95) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    frame = np.full((H, W, 3), level, dtype=np.int16)
    frame += rng.normal(0, 3, (H, W, 3)).round().astype(np.int16)
    frame[170:175, :] = 210  # a painted line
    return np.clip(frame, 0, 255).astype(np.uint8)


def with_car(frame: NDArray[np.uint8], x: int, y: int = 150, w: int = 80, h: int = 40) -> NDArray[np.uint8]:
    out = frame.copy()
    out[y : y + h, x : x + w] = (30, 30, 60)  # a dark car on grey asphalt
    return out


def warm(detector: MotionDetector, frames: int | None = None) -> None:
    for k in range(frames or detector.config.warmup_frames):
        assert detector.detect(road(k)) == []  # warm-up learns, reports nothing


def test_a_moving_vehicle_is_one_box_in_full_frame_pixels() -> None:
    detector = MotionDetector()
    warm(detector)
    for k, x in enumerate(range(100, 300, 20)):
        found = detector.detect(with_car(road(100 + k), x))
        assert len(found) == 1
        box = found[0].box
        # the detector works on a 320-wide copy; boxes come back in the frame's pixels
        assert box.x1 == pytest.approx(x, abs=6)
        assert box.x2 == pytest.approx(x + 80, abs=6)
        assert box.y1 == pytest.approx(150, abs=6)
        assert box.y2 == pytest.approx(190, abs=6)
        assert found[0].label == "motion"
        assert 0 < found[0].score <= 1


def test_an_exposure_swing_of_the_whole_frame_is_not_motion() -> None:
    detector = MotionDetector()
    warm(detector)
    for k, gain in enumerate((0.9, 0.75, 0.6, 0.5, 0.6, 0.8, 1.0)):
        darker = (road(200 + k).astype(np.float32) * gain).astype(np.uint8)
        assert detector.detect(darker) == []


def test_a_stopped_vehicle_stays_foreground_long_enough_for_the_stopped_rule() -> None:
    detector = MotionDetector()
    warm(detector)
    for k in range(10):
        detector.detect(with_car(road(300 + k), 100 + 20 * k))
    for k in range(150):  # 15 s at 10 fps, parked at x=300
        found = detector.detect(with_car(road(400 + k), 300))
    assert len(found) == 1
    assert found[0].box.x1 == pytest.approx(300, abs=6)


def test_sensor_noise_alone_gives_nothing() -> None:
    detector = MotionDetector()
    warm(detector)
    rng = np.random.default_rng(7)
    for _ in range(20):
        noisy = np.clip(road(0).astype(np.int16) + rng.normal(0, 6, (H, W, 3)).round(), 0, 255).astype(
            np.uint8
        )
        assert detector.detect(noisy) == []


def test_regions_are_padded_merged_and_inside_the_frame() -> None:
    detector = MotionDetector()
    warm(detector)
    frame = with_car(with_car(road(500), 10, y=300, w=60, h=50), 90, y=300, w=60, h=50)
    regions = detector.regions(frame)
    assert len(regions) == 1  # two close vehicles: their padded regions overlap and merge
    r = regions[0]
    assert r.x1 == 0.0
    assert r.x2 > 150
    assert r.y2 == H
    # asking again for the same frame does not learn it twice
    assert detector.detect(frame) == detector.detect(frame)


def test_detect_keeps_only_detections_inside_the_given_regions() -> None:
    detector = MotionDetector()
    warm(detector)
    frame = with_car(with_car(road(600), 50), 400)
    assert len(detector.detect(frame)) == 2
    kept = detector.detect(frame, [Box(380, 100, 520, 220)])
    assert len(kept) == 1
    assert kept[0].box.x1 == pytest.approx(400, abs=6)


def test_merge_boxes_joins_chains_of_overlaps() -> None:
    boxes = [Box(0, 0, 10, 10), Box(20, 0, 30, 10), Box(9, 0, 21, 10), Box(100, 100, 110, 110)]
    assert sorted(merge_boxes(boxes), key=lambda b: b.x1) == [Box(0, 0, 30, 10), Box(100, 100, 110, 110)]


def test_it_is_registered_as_the_motion_detector_and_checks_its_options() -> None:
    detector = create_detector("motion", {"width": 160})
    assert isinstance(detector, MotionDetector)
    assert detector.config == MotionConfig(width=160)
    with pytest.raises(ConfigError, match="detector 'motion' options: treshold"):
        create_detector("motion", {"treshold": 3})


def test_a_frame_that_is_not_8_bit_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="uint8 grey or BGR frame, got float32"):
        MotionDetector().detect(np.zeros((H, W, 3), dtype=np.float32))


def verged(seed: int) -> NDArray[np.uint8]:
    """The road with a dark verge below it: the car's grey level is common in the picture, so
    the exposure estimate cannot mistake the car's patch for a change of exposure."""
    frame = road(seed)
    frame[260:, :] = np.clip(frame[260:, :].astype(np.int16) - 60, 0, 255).astype(np.uint8)
    return frame


def warm_with_car(detector: MotionDetector, x: int = 300) -> None:
    for k in range(detector.config.warmup_frames):
        assert detector.detect(with_car(verged(k), x)) == []  # the car is learnt as background


def test_the_ghost_of_a_vehicle_present_during_warm_up_goes_within_a_few_seconds() -> None:
    detector = MotionDetector()
    warm_with_car(detector)
    # it left: its ghost stands still for `ghost_still_frames`, then looks like one for `ghost_frames`
    frames = detector.config.ghost_still_frames + detector.config.ghost_frames + 5
    seen = [detector.detect(verged(400 + k)) for k in range(frames)]
    assert seen[0], "the revealed road differs from the learnt background at first"
    assert seen[-5:] == [[]] * 5
    assert detector.detect(with_car(verged(500), 100)) != []  # a vehicle elsewhere is still seen


def test_without_ghost_suppression_the_ghost_stays() -> None:
    detector = MotionDetector(MotionConfig(ghost_frames=0))
    warm_with_car(detector)
    assert all(detector.detect(verged(400 + k)) for k in range(30))


def test_a_vehicle_that_arrives_and_stands_is_no_ghost() -> None:
    detector = MotionDetector()
    warm(detector)
    for k, x in enumerate(range(100, 300, 20)):
        detector.detect(with_car(road(600 + k), x))
    standing = [detector.detect(with_car(road(700 + k), 300)) for k in range(100)]
    assert all(len(found) == 1 for found in standing)


def _reference_tone_curve(
    background: NDArray[np.float32], grey: NDArray[np.uint8]
) -> tuple[list[float], ...]:
    """The per-band medians computed the plain way (np.median of each band)."""
    bg = background[::4, ::4].ravel()
    seen = grey[::4, ::4].ravel().astype(np.float32)
    band = np.minimum(bg // 16, 15).astype(np.intp)
    levels, values = [], []
    for k in np.unique(band):
        chosen = band == k
        if np.count_nonzero(chosen) >= 12:
            levels.append(float(np.median(bg[chosen])))
            values.append(float(np.median(seen[chosen])))
    return levels, list(np.maximum.accumulate(values))


@pytest.mark.parametrize("seed", range(40))
def test_the_tone_curve_is_the_median_of_each_background_band(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(20, 200)), int(rng.integers(20, 320))
    background = (rng.random((height, width)) * rng.uniform(20, 300)).astype(np.float32)
    if seed % 2:
        background = np.round(background)  # whole levels: many ties inside a band
    grey = np.clip(background * rng.uniform(0.5, 1.5) + rng.normal(0, 9, background.shape), 0, 255)
    detector = MotionDetector()
    detector._background = background
    expected = _reference_tone_curve(background, grey.astype(np.uint8))
    curve = detector._tone_curve(grey.astype(np.uint8))
    if len(expected[0]) < 2 or max(abs(v - lv) for lv, v in zip(*expected, strict=True)) < 2.0:
        assert curve is None
    else:
        assert curve is not None and (curve[0], [float(v) for v in curve[1]]) == expected


def test_the_threshold_follows_the_exposure_down_so_a_dim_vehicle_is_still_seen() -> None:
    # at dusk the whole picture is at 45 %: a car 40 grey levels darker than the road in
    # daylight is 18 darker now, under the daylight threshold (22) but over the scaled one
    def dusk(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return (frame.astype(np.float32) * 0.45).astype(np.uint8)

    def grey_car(frame: NDArray[np.uint8], x: int) -> NDArray[np.uint8]:
        out = frame.copy()
        out[150:190, x : x + 80] = 55
        return out

    found = {}
    for min_gain in (MotionConfig().min_gain, 1.0):
        detector = MotionDetector(MotionConfig(min_gain=min_gain))
        warm(detector)
        assert detector.detect(dusk(road(300))) == []  # the darker picture alone is no motion
        found[min_gain] = [detector.detect(dusk(grey_car(road(301 + k), 100 + 20 * k))) for k in range(5)]
    assert all(len(f) == 1 for f in found[MotionConfig().min_gain])
    assert not any(found[1.0]), "a fixed threshold misses the dim car: the check above proves something"
