"""The stereo front end: feature tracks on the left camera, and each left keypoint's partner in the right image.

:class:`StereoFrontEnd` is the one object a stereo pair stream talks to. It owns a
:class:`~rfnet_ros.tracking.tracker.FeatureTracker` for the left camera (its pipeline, previous frame, tracks
and geometric check), and per pair of images:

1. extracts both images with the tracker's pipeline in one go (``FeaturePipeline.extract_frames``: both images'
   patches in one descriptor call, the detector in one batch where the engine takes one); one static mask per
   camera (``mask_image`` the left's, ``right_mask_image`` the right's);
2. tracks the left image exactly as the mono front end does (``FeatureTracker.track``: matches to the previous
   left image, with its options: prediction, spread);
3. matches the left keypoints to the right ones by geometry and descriptors: on rectified rows, a pair may match
   only when the rows differ by at most ``stereo_row_tolerance`` px and the disparity (left x - right x) lies in
   [``min_disparity``, ``max_disparity``]; among those pairs, mutual nearest neighbours of the descriptors
   (``FeaturePipeline.match_frames`` with the allowed pairs), each right keypoint refined onto its left partner
   with ``refine_matches``, then checked against the same row and disparity bounds again. Raw images
   (``input_rectified: false``) have their keypoints rectified first with each camera's K, D, R and P
   (:meth:`~rfnet_ros.tracking.camera.CameraModel.rectify`);
4. gives each matched right keypoint its left partner's track id; unmatched right keypoints get
   :data:`NO_TRACK` (ids count up from 0, so 0 is a track);
5. with a calibration: undistorted normalised coordinates of each camera's keypoints in that camera (the
   rectified camera's for rectified images, the raw camera's K and D otherwise) and the right points'
   velocities from the same track's right point in the previous pair.

ROS-free: the stereo node, the benchmark and the tests use it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from rfnet_ros.config import FeatureConfig, StereoConfig
from rfnet_ros.matching.disparity import refine_disparities
from rfnet_ros.matching.mutual_nn import match_mutual_nn_among
from rfnet_ros.pipeline import FrameFeatures, MatchState
from rfnet_ros.timing import StageTimer
from rfnet_ros.tracking.camera import CalibrationRejected, CameraModel
from rfnet_ros.tracking.mask import StaticMask
from rfnet_ros.tracking.tracker import FeatureTracker, FrontEndStatistics, TrackedFrame
from rfnet_ros.tracking.tracks import TrackBook

# Track id of a right keypoint without a left partner (no track): the largest uint64.
NO_TRACK = np.iinfo(np.uint64).max
SIDES = ("left", "right")


def stereo_candidates(left: np.ndarray, right: np.ndarray, row_tolerance: float, min_disparity: float,
                      max_disparity: float) -> np.ndarray:
    """(N, M) bool: which pairs of rectified left (N, 2) and right (M, 2) pixels may match: rows within
    ``row_tolerance`` and disparity (left x - right x) within [``min_disparity``, ``max_disparity``]."""
    left, right = np.asarray(left, np.float64).reshape(-1, 2), np.asarray(right, np.float64).reshape(-1, 2)
    disparity = left[:, None, 0] - right[None, :, 0]
    rows = np.abs(left[:, None, 1] - right[None, :, 1])
    return (rows <= row_tolerance) & (disparity >= min_disparity) & (disparity <= max_disparity)


@dataclass(frozen=True)
class StereoCalibration:
    """The two cameras of a stereo pair (from their camera_infos) and whether the images are rectified.

    Build it with :meth:`of`, which refuses a pair that cannot be a stereo rig.
    """

    left: CameraModel
    right: CameraModel
    rectified_input: bool

    @classmethod
    def of(cls, left: CameraModel, right: CameraModel, rectified_input: bool) -> StereoCalibration:
        """The pair's calibration; :class:`CalibrationRejected` (one line) when the sizes differ, a camera has no
        projection P, or the right P holds no baseline (Tx = -fx * baseline is 0, or positive: swapped)."""
        if (left.width, left.height) != (right.width, right.height):
            raise CalibrationRejected(f"left camera_info is for {left.width}x{left.height} images, right for "
                                      f"{right.width}x{right.height}")
        for side, camera in (("left", left), ("right", right)):
            if camera.P is None:
                raise CalibrationRejected(f"{side} camera_info has no projection matrix P")
        if right.baseline == 0:
            raise CalibrationRejected("right camera_info has no baseline (P's Tx = -fx * baseline is 0)")
        if right.baseline < 0:
            raise CalibrationRejected(f"right camera_info's P has Tx = {right.P[0, 3]:g} > 0: the right camera "
                                      "lies left of the left one (cameras swapped?)")
        return cls(left, right, rectified_input)

    @property
    def baseline(self) -> float:
        """The right camera's distance from the left one, in the units of P (metres)."""
        return self.right.baseline

    def camera(self, side: str) -> CameraModel:
        return self.left if side == "left" else self.right

    def rectify(self, side: str, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of ``side``'s image -> (N, 2) pixels of its rectified image."""
        if self.rectified_input:
            return np.asarray(points, np.float64).reshape(-1, 2)
        return self.camera(side).rectify(points)

    def normalising(self, side: str) -> CameraModel:
        """The camera whose undistorted normalised coordinates ``side``'s keypoints are published in: the
        rectified pinhole camera of P for rectified images, the raw camera (K, D) otherwise."""
        camera = self.camera(side)
        return camera.rectified() if self.rectified_input else camera


@dataclass
class StereoFrame:
    """One stereo pair.

    left: the left image's tracks (:class:`~rfnet_ros.tracking.tracker.TrackedFrame`). right: the right image's
    features (M keypoints). right_track_ids (M,) uint64: the left partner's track id, :data:`NO_TRACK` without
    one; right_track_lengths (M,) int64 (0 without a partner). stereo_matches (S, 2) int64 (left index, right
    index), stereo_distances (S,) descriptor distances, disparities (S,) float32 rectified px (left x - right
    x). right_normalised (M, 2) and right_velocities (M, 2): as the left's, None without a calibration.
    timings: stage -> ms of the pair (left-right matching counts as "match"); stereo_match_ms: that matching
    alone. problem: why the pair has no stereo matches (images of different sizes), else "".
    """

    left: TrackedFrame
    right: FrameFeatures
    right_track_ids: np.ndarray
    right_track_lengths: np.ndarray
    stereo_matches: np.ndarray
    stereo_distances: np.ndarray
    disparities: np.ndarray
    right_normalised: np.ndarray | None
    right_velocities: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    stereo_match_ms: float = 0.0
    problem: str = ""


@dataclass(frozen=True)
class StereoStatistics:
    """Since start: pairs processed, left-right matches per pair (mean, last) and the mean disparity (px)."""

    pairs: int
    matches_mean: float
    matches_last: int
    disparity_mean: float


@dataclass
class _PreviousRight:
    """The previous pair's matched right points: their track ids (sorted), normalised coordinates, stamp."""

    ids: np.ndarray
    normalised: np.ndarray
    stamp_ns: int | None


class StereoFrontEnd:
    """Feature tracks of a stereo pair stream: one instance per camera pair, called from one thread."""

    def __init__(self, config: FeatureConfig | None = None, stereo: StereoConfig | None = None,
                 tracks: TrackBook | None = None):
        self.tracker = FeatureTracker(config, tracks)
        self.stereo = stereo or StereoConfig()
        self._right_mask = StaticMask(self.stereo.right_mask_path)
        self._previous_right: _PreviousRight | None = None
        self._lock = threading.Lock()  # guards the statistics below
        self._pairs = 0
        self._matches_sum = 0
        self._matches_last = 0
        self._disparity_sum = 0.0

    @property
    def config(self) -> FeatureConfig:
        return self.tracker.config

    @property
    def device(self) -> torch.device:
        return self.tracker.device

    @property
    def engine_name(self) -> str:
        return self.tracker.engine_name

    @property
    def precision(self) -> str:
        return self.tracker.precision

    @property
    def detector_precision(self) -> str:
        return self.tracker.detector_precision

    def add_angular_velocity(self, stamp_ns: int, rate: np.ndarray) -> str | None:
        """A gyro sample for the left camera's ``match_prediction: imu`` (``FeatureTracker.add_angular_velocity``)."""
        return self.tracker.add_angular_velocity(stamp_ns, rate)

    def configure(self, config: FeatureConfig, stereo: StereoConfig | None = None) -> None:
        """Use these settings from the next pair (``FeatureTracker.configure``; ``stereo`` None: unchanged)."""
        self.tracker.configure(config)
        if stereo is not None:
            if stereo.right_mask_path != self._right_mask.path:
                self._right_mask = StaticMask(stereo.right_mask_path)
            self.stereo = stereo

    def new_timer(self) -> StageTimer:
        return self.tracker.new_timer()

    def reset(self) -> None:
        """Forget the previous pair: every track ends."""
        self.tracker.reset()
        self._previous_right = None

    def statistics(self) -> FrontEndStatistics:
        """The left camera's track and check statistics (safe to call from another thread)."""
        return self.tracker.statistics()

    def stereo_statistics(self) -> StereoStatistics:
        """Left-right matching since start (safe to call from another thread)."""
        with self._lock:
            pairs, matches = self._pairs, self._matches_sum
            return StereoStatistics(pairs, matches / pairs if pairs else 0.0, self._matches_last,
                                    self._disparity_sum / matches if matches else 0.0)

    def process(self, left: np.ndarray, right: np.ndarray, color_order: str = "bgr", stamp_ns: int | None = None,
                calibration: StereoCalibration | None = None, timer: StageTimer | None = None) -> StereoFrame:
        """Tracks of ``left``, its keypoints' partners in ``right`` (images of one stamp, ``stamp_ns``), with
        ``calibration`` (None: the images are taken as rectified and outputs stay in pixels; the caller checks
        that it fits the images); stages timed in ``timer`` (``new_timer``; a new one when None)."""
        timer = timer or self.new_timer()
        mask, mask_note = self.tracker.mask_for(*left.shape[:2])
        right_mask, right_mask_note = self._right_mask.for_image(*right.shape[:2])
        (left_features, left_state), (right_features, right_state) = self.tracker.pipeline.extract_frames(
            [left, right], color_order, timer, [mask, right_mask])
        notes = tuple(note for note in (mask_note, right_mask_note and f"right camera: {right_mask_note}") if note)
        tracked = self.tracker.track(left_features, left_state, stamp_ns,
                                     calibration.normalising("left") if calibration else None, timer, notes)
        left_state = self.tracker.last_state  # the tracked keypoints' (min_keypoint_distance may keep fewer)
        problem = ""
        if left_features.image_size != right_features.image_size:
            (lh, lw), (rh, rw) = left_features.image_size, right_features.image_size
            problem = f"left and right images differ in size ({lw}x{lh} and {rw}x{rh}): no stereo matches"
            matches, distances = np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
            disparities, stereo_ms = np.zeros(0, np.float32), 0.0
        else:
            stereo_timer = self.new_timer()
            matches, distances, disparities = self._match(tracked.features, left_state, right_features,
                                                          right_state, calibration, stereo_timer)
            stereo_ms = stereo_timer.results().get("match", 0.0)
            timer.add("match", stereo_ms)
        right_ids = np.full(len(right_features), NO_TRACK, np.uint64)
        right_ids[matches[:, 1]] = tracked.track_ids[matches[:, 0]]
        right_lengths = np.zeros(len(right_features), np.int64)
        right_lengths[matches[:, 1]] = tracked.track_lengths[matches[:, 0]]
        right_normalised, right_velocities = self._right_motion(right_features.keypoints, right_ids, matches,
                                                                stamp_ns, calibration)
        with self._lock:
            self._pairs += 1
            self._matches_sum += len(matches)
            self._matches_last = len(matches)
            self._disparity_sum += float(disparities.sum())
        return StereoFrame(tracked, right_features, right_ids, right_lengths, matches, distances, disparities,
                           right_normalised, right_velocities, timer.results(), stereo_ms, problem)

    def _match(self, left: FrameFeatures, left_state: MatchState, right: FrameFeatures, right_state: MatchState,
               calibration: StereoCalibration | None, timer: StageTimer
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Left-right matches (S, 2), their descriptor distances (S,) and disparities (S,) (module docstring,
        step 3); ``right.keypoints`` of the matches are refined onto their partners."""
        cfg = self.stereo

        def rectified(side: str, points: np.ndarray) -> np.ndarray:
            return calibration.rectify(side, points) if calibration else np.asarray(points, np.float64)

        left_rect = rectified("left", left.keypoints)
        allowed = stereo_candidates(left_rect, rectified("right", right.keypoints), cfg.stereo_row_tolerance,
                                    cfg.min_disparity, cfg.max_disparity)
        if calibration is not None and not calibration.rectified_input:
            # Raw images: their rows are no epipolar lines, so the pipeline's refinement places the right keypoints.
            before = right.keypoints.copy()
            matches, distances = self.tracker.pipeline.match_frames(left_state, right_state, right, timer, allowed)
        with timer.stage("match"):
            if calibration is None or calibration.rectified_input:
                settings = self.config
                found, found_distances = match_mutual_nn_among(
                    left_state.matchable, right_state.matchable,
                    torch.from_numpy(np.argwhere(allowed)).to(self.device), settings.match_max_distance,
                    settings.match_ratio)
                matches, distances = found.cpu().numpy(), found_distances.float().cpu().numpy()
                before = right.keypoints.copy()
                if self.stereo.refine_disparity and len(matches):
                    images = [state.keypoints.image[0, 0].float().cpu().numpy() for state in (left_state, right_state)]
                    pair_left = left.keypoints[matches[:, 0]]
                    disparity, ok = refine_disparities(*images, pair_left, right.keypoints[matches[:, 1]])
                    right.keypoints[matches[ok, 1], 0] = pair_left[ok, 0] - disparity[ok]
                    right.keypoints[matches[ok, 1], 1] = pair_left[ok, 1]
                    # A left window that correlates nowhere near its match: a wrong match, or an occluded point.
                    matches, distances = matches[ok], distances[ok]
            # A refined right keypoint off its row or out of the disparity range loses its match and keeps the
            # detector's place.
            right_rect = rectified("right", right.keypoints[matches[:, 1]])
            pair_left = left_rect[matches[:, 0]]
            disparities = pair_left[:, 0] - right_rect[:, 0]
            keep = (np.abs(pair_left[:, 1] - right_rect[:, 1]) <= cfg.stereo_row_tolerance) & \
                (disparities >= cfg.min_disparity) & (disparities <= cfg.max_disparity)
            dropped = matches[~keep, 1]
            right.keypoints[dropped] = before[dropped]
        return matches[keep], distances[keep], disparities[keep].astype(np.float32)

    def _right_motion(self, keypoints: np.ndarray, ids: np.ndarray, matches: np.ndarray, stamp_ns: int | None,
                      calibration: StereoCalibration | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Normalised right keypoints and the velocities (normalised units per second) of those whose track had a
        right point in the previous pair (0 elsewhere); (None, None) without a calibration."""
        if calibration is None:
            self._previous_right = None
            return None, None
        normalised = calibration.normalising("right").normalise(keypoints)
        velocities = np.zeros_like(normalised)
        matched = matches[:, 1]
        previous = self._previous_right
        if previous is not None and len(previous.ids) and len(matched) and stamp_ns is not None \
                and previous.stamp_ns is not None and stamp_ns > previous.stamp_ns:
            where = np.clip(np.searchsorted(previous.ids, ids[matched]), 0, len(previous.ids) - 1)
            seen = previous.ids[where] == ids[matched]
            moved = normalised[matched[seen]] - previous.normalised[where[seen]]
            velocities[matched[seen]] = moved / ((stamp_ns - previous.stamp_ns) * 1e-9)
        order = np.argsort(ids[matched], kind="stable")
        self._previous_right = _PreviousRight(ids[matched][order], normalised[matched][order], stamp_ns)
        return normalised, velocities
