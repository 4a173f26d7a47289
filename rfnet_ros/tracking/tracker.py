"""The front end for visual odometry: pipeline matches, checked geometrically, turned into feature tracks.

:class:`FeatureTracker` is the one object a camera stream talks to. It owns a
:class:`~rfnet_ros.pipeline.FeaturePipeline` (built from the settings, reconfigured through ``configure``), the
one record of the previous frame (its match state, keypoints and stamp) and the frame's stage timer, and
reports the engine it runs. Per frame it adds to the pipeline's features and matches:

1. the geometric check of the pipeline's matches to the previous frame (:mod:`.geometry`; settings
   ``geometric_check``, ``geometric_threshold``, ``geometric_confidence``, ``geometric_min_matches``), on
   undistorted pixels when a camera model is given;
2. track ids: keypoints with a match that passed the check keep the previous keypoint's id, the others start
   new tracks (:mod:`.tracks`);
3. with a camera model: undistorted normalised coordinates of every keypoint and, for tracks seen in the
   previous frame, their velocity in normalised units per second (from the frames' stamps).

Options for VIO users: a static mask (``mask_image``, :mod:`.mask`) where no keypoint is detected; a least
distance between published keypoints (``min_keypoint_distance``, :mod:`.spread`), tracked keypoints first;
matching limited to search windows around predicted places (``match_prediction``, :mod:`.prediction`).

ROS-free: the node, the command-line tools and the tests all use it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from rfnet_ros.config import FeatureConfig
from rfnet_ros.pipeline import FeaturePipeline, FrameFeatures, MatchState
from rfnet_ros.timing import StageTimer
from rfnet_ros.tracking.camera import CameraModel
from rfnet_ros.tracking.geometry import CheckResult, check_matches
from rfnet_ros.tracking.mask import StaticMask
from rfnet_ros.tracking.prediction import MatchPredictor, fit_motion, search_window
from rfnet_ros.tracking.spread import spread
from rfnet_ros.tracking.tracks import TrackBook, TrackStatistics


@dataclass
class TrackedFrame:
    """One frame of tracks.

    features: the pipeline's keypoints (N) and descriptors. matches: (M, 2) int64 (index in the previous
    frame, index in this frame) that passed the geometric check, match_distances (M,); candidate_matches: the
    pipeline's matches before the check; check: the check's inlier mask over the candidates and its status
    ("checked", "too few", "off", or "no previous frame"). track_ids (N,) uint64, track_lengths (N,) int64
    (frames seen). normalised: (N, 2) undistorted normalised (x, y), velocities: (N, 2) normalised units per
    second (0 for tracks that start here), both None without a camera model. previous_keypoints: (P, 2) px,
    the previous frame's keypoints (what ``matches[:, 0]`` indexes; empty without one). timings: stage -> ms
    (the check and the track update count as "match"). has_previous: whether there was a previous frame to
    match; previous_stamp_ns: its stamp (None without one, or when it had none).
    """

    features: FrameFeatures
    matches: np.ndarray
    match_distances: np.ndarray
    candidate_matches: int
    check: CheckResult
    track_ids: np.ndarray
    track_lengths: np.ndarray
    normalised: np.ndarray | None
    velocities: np.ndarray | None
    previous_keypoints: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    has_previous: bool = False
    previous_stamp_ns: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def inlier_ratio(self) -> float:
        """Share of the pipeline's matches that passed the check (0.0 without matches)."""
        return self.check.ratio


@dataclass(frozen=True)
class FrontEndStatistics:
    """Since start: the tracks, and the geometric check over the frames that had matches to check."""

    tracks: TrackStatistics
    inlier_ratio_mean: float  # mean over those frames of the share of matches kept (0.0 before any)
    inlier_ratio_last: float
    frames_too_few: int  # frames whose matches were all rejected for being too few to check
    mask: str  # the static mask's state: none, used, or why not
    frames_predicted: int  # frames matched within search windows around predicted places
    prediction_fallbacks: int  # frames matched without a prediction although one was asked for
    last_fallback: str  # why the last of those had none


@dataclass
class _Previous:
    """The previous frame: what the pipeline matches against, its keypoints (N, 2) px and its stamp."""

    state: MatchState
    keypoints: np.ndarray
    stamp_ns: int | None
    motion: np.ndarray | None  # homography fitted to the checked matches from the frame before (or None)


class FeatureTracker:
    """Feature tracks over a frame sequence: one instance per camera stream, called from one thread."""

    def __init__(self, config: FeatureConfig | None = None, tracks: TrackBook | None = None):
        self._pipeline = FeaturePipeline(config)
        self._mask = StaticMask(self.config.mask_path)
        self._predictor = MatchPredictor(self.config.match_prediction, self.config.imu_rotation)
        self.tracks = tracks or TrackBook()
        self._previous: _Previous | None = None
        self._lock = threading.Lock()  # guards the check statistics below
        self._ratio_sum = 0.0
        self._ratio_frames = 0
        self._last_ratio = 0.0
        self._too_few = 0

    @property
    def config(self) -> FeatureConfig:
        return self._pipeline.config

    @property
    def pipeline(self) -> FeaturePipeline:
        """The pipeline this front end extracts with (for callers that extract several frames at once)."""
        return self._pipeline

    @property
    def device(self) -> torch.device:
        return self._pipeline.device

    @property
    def engine_name(self) -> str:
        return self._pipeline.engine.name

    @property
    def precision(self) -> str:
        return self._pipeline.precision

    @property
    def detector_precision(self) -> str:
        return self._pipeline.detector_precision

    def configure(self, config: FeatureConfig) -> None:
        """Use ``config`` from the next frame (the engine is rebuilt only when needed); when the new descriptions
        cannot be compared with the previous frame's, matching restarts as after ``reset``."""
        if config.mask_path != self._mask.path:
            self._mask = StaticMask(config.mask_path)
        if not self._pipeline.configure(config):
            self.reset()
        self._predictor.mode = config.match_prediction
        self._predictor.gyro.imu_to_camera = config.imu_rotation

    def add_angular_velocity(self, stamp_ns: int, rate: np.ndarray) -> str | None:
        """A gyro sample (rad/s in the IMU's axes) for ``match_prediction: imu`` (thread-safe); returns why it was
        refused, or None."""
        return self._predictor.gyro.add(stamp_ns, rate)

    def new_timer(self) -> StageTimer:
        """A stage timer for one frame on the front end's device: stages timed before ``process`` (a conversion
        elsewhere) and after it (publishing) go into the same timer."""
        return self._pipeline.new_timer()

    def reset(self) -> None:
        """Forget the previous frame: every track ends, the next frame is matched to nothing."""
        self.tracks.reset()
        self._previous = None

    def statistics(self) -> FrontEndStatistics:
        """Track and check statistics since start (safe to call from another thread)."""
        with self._lock:
            mean = self._ratio_sum / self._ratio_frames if self._ratio_frames else 0.0
            return FrontEndStatistics(self.tracks.statistics(), mean, self._last_ratio, self._too_few,
                                      self._mask.status, self._predictor.predicted, self._predictor.fallbacks,
                                      self._predictor.last_fallback)

    def process(self, image: np.ndarray, color_order: str = "bgr", stamp_ns: int | None = None,
                camera: CameraModel | None = None, timer: StageTimer | None = None) -> TrackedFrame:
        """Tracks of ``image`` (any array FeaturePipeline.process takes) stamped ``stamp_ns`` (for velocities and
        the gyro's prediction), with ``camera`` (None: pixels only; the caller checks that the camera fits the
        image size); stages are timed in ``timer`` (``new_timer``; a new one when None). The frame's notes say
        what the caller should report (a mask that does not fit, a prediction that could not be made)."""
        timer = timer or self.new_timer()
        mask, mask_note = self.mask_for(*image.shape[:2])
        features, state = self._pipeline.extract_frame(image, color_order, timer, mask)
        return self.track(features, state, stamp_ns, camera, timer, (mask_note,) if mask_note else ())

    def mask_for(self, height: int, width: int) -> tuple[np.ndarray | None, str | None]:
        """The static mask for an image of this size (None without one, or when it does not fit) and why it is
        not used (None when it is, or when there is none)."""
        return self._mask.for_image(height, width)

    @property
    def last_state(self) -> MatchState | None:
        """The match state of the frame tracked last (what the next frame is matched against), None after reset."""
        return self._previous.state if self._previous is not None else None

    def track(self, features: FrameFeatures, state: MatchState, stamp_ns: int | None, camera: CameraModel | None,
              timer: StageTimer, notes: tuple[str, ...] = ()) -> TrackedFrame:
        """``process`` of a frame already extracted by ``pipeline`` (``FeaturePipeline.extract_frame(s)``, with the
        mask of ``mask_for``): its matches to the previous frame, the check, track ids and motion; the frame
        becomes the previous one. ``notes``: what extraction has to report (a mask that did not fit)."""
        cfg = self.config
        previous = self._previous
        notes = list(notes)
        if previous is not None:
            predicted, why = self._predictor.predict(previous.keypoints, previous.stamp_ns, stamp_ns, previous.motion,
                                                     camera.K if camera is not None else None)
            notes += [f"match prediction off for this frame: {why}"] if why else []
            window = None if predicted is None else search_window(predicted, features.keypoints,
                                                                   cfg.match_search_radius)
            candidates, candidate_distances = self._pipeline.match_frames(previous.state, state, features, timer,
                                                                          window)
        else:
            candidates, candidate_distances = np.zeros((0, 2), np.int64), np.zeros((0,), np.float32)
        with timer.stage("match"):
            if previous is not None:
                points0, points1 = previous.keypoints[candidates[:, 0]], features.keypoints[candidates[:, 1]]
                if camera is not None:
                    points0, points1 = camera.undistort_pixels(points0), camera.undistort_pixels(points1)
                check = check_matches(points0, points1, cfg.geometric_check, cfg.geometric_threshold,
                                      cfg.geometric_confidence, cfg.geometric_min_matches)
            else:
                check = CheckResult(np.zeros(len(candidates), bool), "no previous frame")
            matches, distances = candidates[check.inliers], candidate_distances[check.inliers]
            if cfg.min_keypoint_distance > 0:
                features, state, matches, distances = self._spread(features, state, matches, distances)
            keypoints = features.keypoints
            track_ids, track_lengths = self.tracks.update(len(keypoints), matches)
            normalised, velocities = self._motion(keypoints, matches, previous, stamp_ns, camera)
            motion = None
            if previous is not None and cfg.match_prediction == "constant_velocity":
                motion = fit_motion(previous.keypoints[matches[:, 0]], keypoints[matches[:, 1]])
        self._previous = _Previous(state, keypoints, stamp_ns, motion)
        with self._lock:
            if len(candidates):
                self._ratio_sum += check.ratio
                self._ratio_frames += 1
                self._last_ratio = check.ratio
            self._too_few += check.status == "too few"
        return TrackedFrame(
            features=features, matches=matches, match_distances=distances, candidate_matches=len(candidates),
            check=check, track_ids=track_ids, track_lengths=track_lengths, normalised=normalised,
            velocities=velocities,
            previous_keypoints=previous.keypoints if previous is not None else np.zeros((0, 2), np.float32),
            timings=timer.results(), has_previous=previous is not None,
            previous_stamp_ns=previous.stamp_ns if previous is not None else None, notes=tuple(notes))

    def _spread(self, features: FrameFeatures, state: MatchState, matches: np.ndarray, distances: np.ndarray
                ) -> tuple[FrameFeatures, MatchState, np.ndarray, np.ndarray]:
        """Only the keypoints ``min_keypoint_distance`` apart (tracking.spread): tracked ones first (longer tracks
        first), then the strongest new ones; the matches of the keypoints left out go with them."""
        tracked = np.zeros(len(features), bool)
        tracked[matches[:, 1]] = True
        length = np.zeros(len(features), np.int64)
        length[matches[:, 1]] = self.tracks.lengths[matches[:, 0]]
        order = np.lexsort((-features.scores, -length, ~tracked))  # the last key sorts first
        kept = spread(features.keypoints, order, self.config.min_keypoint_distance, features.image_size)
        index = np.full(len(features), -1, np.int64)
        index[kept] = np.arange(len(kept))
        still = index[matches[:, 1]] >= 0
        matches = np.stack([matches[still, 0], index[matches[still, 1]]], axis=1)
        return features.take(kept), state.take(kept), matches, distances[still]

    @staticmethod
    def _motion(keypoints: np.ndarray, matches: np.ndarray, previous: _Previous | None, stamp_ns: int | None,
                camera: CameraModel | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Undistorted normalised keypoints and their velocities (normalised units per second; 0 where a track
        starts), or (None, None) without a camera model."""
        if camera is None:
            return None, None
        normalised = camera.normalise(keypoints)
        velocities = np.zeros_like(normalised)
        if previous is not None and len(matches) and stamp_ns is not None and previous.stamp_ns is not None \
                and stamp_ns > previous.stamp_ns:
            moved = normalised[matches[:, 1]] - camera.normalise(previous.keypoints[matches[:, 0]])
            velocities[matches[:, 1]] = moved / ((stamp_ns - previous.stamp_ns) * 1e-9)
        return normalised, velocities
