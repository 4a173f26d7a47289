"""The front end's options for VIO users on a real photo: static mask, keypoint spread, predicted matching."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from photos import DATA

from rfnet_ros.config import FeatureConfig
from rfnet_ros.tracking.camera import CameraModel
from rfnet_ros.tracking.tracker import FeatureTracker

SIZE = (240, 320)  # frames (height, width)


def training_photo() -> np.ndarray:
    """A training photo (foliage, texture everywhere but in a few flat patches) at 500x800."""
    image = cv2.imread(str(DATA / "images" / "train" / "Autumn.png"))
    assert image is not None, "run scripts/fetch_data.sh"
    return cv2.resize(image, (800, 500), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo():
    return training_photo()


def crop(image, x, y):
    return np.ascontiguousarray(image[y:y + SIZE[0], x:x + SIZE[1]])


def front_end(**settings) -> FeatureTracker:
    return FeatureTracker(FeatureConfig(**{"device": "cpu", "top_k": 256, **settings}))


# --- Static mask ---------------------------------------------------------------------------------------------
def test_no_keypoint_in_the_masked_area_and_the_top_k_goes_elsewhere(photo, tmp_path):
    mask = np.full(SIZE, 255, np.uint8)
    mask[:, 160:] = 0  # the robot's body over the right half
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), mask)
    frame = crop(photo, 300, 150)  # keypoints in both halves
    plain = front_end(top_k=64).process(frame)
    masked = front_end(top_k=64, mask_image=str(path)).process(frame)
    assert np.sum(plain.features.keypoints[:, 0] >= 159.5) > 10  # the masked area has keypoints of its own
    assert (masked.features.keypoints[:, 0] < 159.5).all()
    # The budget of 64 is spent on the unmasked part: more keypoints there than without the mask.
    assert len(masked.features) > np.sum(plain.features.keypoints[:, 0] < 159.5)
    assert masked.notes == ()


def test_a_mask_of_another_size_is_reported_once_and_not_used(photo, tmp_path):
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), np.zeros((100, 100), np.uint8))
    tracker = front_end(mask_image=str(path))
    first = tracker.process(crop(photo, 100, 100))
    second = tracker.process(crop(photo, 104, 100))
    assert len(first.features) > 50 and len(second.features) > 50  # not used: the whole frame has keypoints
    assert len(first.notes) == 1 and "100x100" in first.notes[0] and "320x240" in first.notes[0]
    assert second.notes == ()
    assert tracker.statistics().mask.startswith("not used")


@pytest.mark.parametrize("content", [b"not an image", None])
def test_a_mask_that_cannot_be_read_stops_start_up_naming_the_setting(tmp_path, content):
    path = tmp_path / "mask.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="mask_image"):
        front_end(mask_image=str(path))


# --- Keypoint spread -----------------------------------------------------------------------------------------
def test_spread_keypoints_are_apart_and_tracks_go_on(photo):
    tracker = front_end(min_keypoint_distance=12.0)
    frames = [tracker.process(crop(photo, 200 - 3 * i, 150 - 2 * i), stamp_ns=i * 10**8) for i in range(5)]
    for frame in frames:
        points = frame.features.keypoints
        gaps = np.linalg.norm(points[:, None] - points[None], axis=2) + np.eye(len(points)) * 1e9
        assert gaps.min() > 12.0 - 1.5
        assert len(frame.features.descriptors) == len(points) == len(frame.track_ids)
    for earlier, later in zip(frames[1:], frames[2:]):
        assert len(later.matches) > 0.5 * len(later.features)
        # Matches index the published keypoints of both frames, and ids follow them.
        assert later.matches[:, 0].max() < len(earlier.features) and later.matches[:, 1].max() < len(later.features)
        assert (later.track_ids[later.matches[:, 1]] == earlier.track_ids[later.matches[:, 0]]).all()
        moved = later.features.keypoints[later.matches[:, 1]] - earlier.features.keypoints[later.matches[:, 0]]
        assert np.median(np.abs(moved - [3.0, 2.0]).max(axis=1)) < 1.0


def test_tracked_keypoints_keep_their_place_before_new_ones(photo):
    """Of each neighbourhood, a keypoint that continues a track is kept before a stronger new one."""
    spread_tracker = front_end(min_keypoint_distance=16.0)
    frames = [spread_tracker.process(crop(photo, 200 - 3 * i, 150 - 2 * i)) for i in range(3)]
    last = frames[-1]
    tracked = np.zeros(len(last.features), bool)
    tracked[last.matches[:, 1]] = True
    assert tracked.sum() > 10
    # No dropped-for-spacing conflict between two kept keypoints, and long tracks survive.
    assert (last.track_lengths[tracked] >= 2).all()
    assert np.mean(last.track_lengths == 3) > 0.3


# --- Predicted matching --------------------------------------------------------------------------------------
def correct_share(frame, previous, motion) -> float:
    """Share of the frame's matches within 3 px of where ``motion`` (2x3) takes the previous keypoints."""
    before = previous.features.keypoints[frame.matches[:, 0]]
    expected = before @ motion[:, :2].T + motion[:, 2]
    return float(np.mean(np.linalg.norm(frame.features.keypoints[frame.matches[:, 1]] - expected, axis=1) <= 3))


def test_constant_velocity_prediction_keeps_the_matches_of_a_steady_motion(photo):
    tracker = front_end(match_prediction="constant_velocity", match_search_radius=6.0, geometric_check="off")
    frames = [tracker.process(crop(photo, 300 - 8 * i, 150 - 5 * i), stamp_ns=i * 10**8) for i in range(5)]
    statistics = tracker.statistics()
    assert statistics.prediction_fallbacks == 1 and "no motion" in statistics.last_fallback  # frame 2 has none
    assert statistics.frames_predicted == 3
    assert "match prediction off" in frames[1].notes[0]
    shift = np.array([[1.0, 0.0, 8.0], [0.0, 1.0, 5.0]])
    for earlier, later in zip(frames[2:], frames[3:]):
        assert len(later.matches) > 0.5 * len(later.features)
        # Within a 6 px window of a prediction that is right, every match is near the true motion.
        assert correct_share(later, earlier, shift) > 0.97


def rotated(image, angle, size=SIZE):
    """``image``'s centre crop rotated by ``angle`` degrees about the crop's centre, and the 2x3 map."""
    height, width = image.shape[:2]
    centre = (width / 2 - 0.5, height / 2 - 0.5)
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR)
    x0, y0 = (width - size[1]) // 2, (height - size[0]) // 2
    return np.ascontiguousarray(turned[y0:y0 + size[0], x0:x0 + size[1]]), turn


def test_imu_prediction_follows_a_fast_roll(photo):
    """A camera rolling 12 degrees per frame about its optical axis (its image turning by cv2's -12 degrees);
    the gyro says so (K from camera_info)."""
    focal, step = 300.0, 12.0
    camera = CameraModel(np.array([[focal, 0, SIZE[1] / 2 - 0.5], [0, focal, SIZE[0] / 2 - 0.5], [0, 0, 1]]),
                         np.zeros(5), "plumb_bob", SIZE[1], SIZE[0])
    # Refinement off, so that published keypoints are where they were matched (the window is exact).
    tracker = front_end(match_prediction="imu", match_search_radius=8.0, geometric_check="off", refine_matches=False)
    rate = -np.deg2rad(step) / 0.1  # rad/s about the camera's z (optical) axis
    for k in range(0, 41):
        assert tracker.add_angular_velocity(k * 10_000_000, np.array([0.0, 0.0, rate])) is None
    frames = [tracker.process(rotated(photo, -step * i)[0], stamp_ns=i * 100_000_000, camera=camera)
              for i in range(4)]
    assert tracker.statistics().frames_predicted == 3 and tracker.statistics().prediction_fallbacks == 0
    centre = np.array([SIZE[1] / 2 - 0.5, SIZE[0] / 2 - 0.5])
    turn = cv2.getRotationMatrix2D(tuple(centre), -step, 1.0)
    for earlier, later in zip(frames, frames[1:]):
        assert len(later.matches) > 50
        assert correct_share(later, earlier, turn) > 0.9
        # Every match lies in the 8 px window around the gyro's prediction.
        before = earlier.features.keypoints[later.matches[:, 0]]
        off = np.linalg.norm(later.features.keypoints[later.matches[:, 1]] - (before @ turn[:, :2].T + turn[:, 2]),
                             axis=1)
        assert off.max() <= 8.0 + 1e-3
    # Stamps past the last gyro sample: no prediction, counted, and matching goes on unrestricted.
    late = tracker.process(rotated(photo, -step * 4)[0], stamp_ns=10**9 + 1, camera=camera)
    assert tracker.statistics().prediction_fallbacks == 1 and "imu" in tracker.statistics().last_fallback
    assert late.has_previous and "match prediction off" in late.notes[0]
