"""The front end for visual odometry: pipeline matches, checked geometrically, turned into feature tracks.

:class:`FeatureTracker` wraps a :class:`~rfnet_ros.pipeline.FeaturePipeline` (which it drives, and whose
settings it reads) and adds, per frame:

1. the geometric check of the pipeline's matches to the previous frame (:mod:`.geometry`; settings
   ``geometric_check``, ``geometric_threshold``, ``geometric_confidence``, ``geometric_min_matches``), on
   undistorted pixels when a camera model is given;
2. track ids: keypoints with a match that passed the check keep the previous keypoint's id, the others start
   new tracks (:mod:`.tracks`);
3. with a camera model: undistorted normalised coordinates of every keypoint and, for tracks seen in the
   previous frame, their velocity in normalised units per second (from the frames' stamps).

ROS-free: the node, the command-line tools and the tests all use it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from rfnet_ros.config import FeatureConfig
from rfnet_ros.pipeline import FeaturePipeline, FrameFeatures
from rfnet_ros.tracking.camera import CameraModel
from rfnet_ros.tracking.geometry import CheckResult, check_matches
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
    (the check and the track update count as "match").
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


@dataclass
class _Previous:
    keypoints: np.ndarray  # (N, 2) px
    stamp_ns: int | None


class FeatureTracker:
    """Feature tracks over a frame sequence: one instance per camera stream, called from one thread."""

    def __init__(self, pipeline: FeaturePipeline, tracks: TrackBook | None = None):
        pipeline.reset()  # from now on the tracker drives it: its previous frame is the tracker's
        self.pipeline = pipeline
        self.tracks = tracks or TrackBook()
        self._previous: _Previous | None = None
        self._lock = threading.Lock()  # guards the check statistics below
        self._ratio_sum = 0.0
        self._ratio_frames = 0
        self._last_ratio = 0.0
        self._too_few = 0

    @property
    def config(self) -> FeatureConfig:
        return self.pipeline.config

    def reset(self) -> None:
        """Forget the previous frame: every track ends, the next frame is matched to nothing."""
        self.pipeline.reset()
        self.tracks.reset()
        self._previous = None

    def statistics(self) -> FrontEndStatistics:
        """Track and check statistics since start (safe to call from another thread)."""
        with self._lock:
            mean = self._ratio_sum / self._ratio_frames if self._ratio_frames else 0.0
            return FrontEndStatistics(self.tracks.statistics(), mean, self._last_ratio, self._too_few)

    def process(self, image: np.ndarray, color_order: str = "bgr", stamp_ns: int | None = None,
                camera: CameraModel | None = None) -> TrackedFrame:
        """Tracks of ``image`` (any array FeaturePipeline.process takes) stamped ``stamp_ns`` (for velocities),
        with ``camera`` (None: pixels only; the caller checks that the camera fits the image size)."""
        result = self.pipeline.process(image, color_order)
        start = time.perf_counter()
        cfg = self.config
        keypoints = result.features.keypoints
        previous = self._previous if result.has_previous else None
        if previous is not None:
            points0, points1 = previous.keypoints[result.matches[:, 0]], keypoints[result.matches[:, 1]]
            if camera is not None:
                points0, points1 = camera.undistort_pixels(points0), camera.undistort_pixels(points1)
            check = check_matches(points0, points1, cfg.geometric_check, cfg.geometric_threshold,
                                  cfg.geometric_confidence, cfg.geometric_min_matches)
        else:
            check = CheckResult(np.zeros(len(result.matches), bool), "no previous frame")
        matches, distances = result.matches[check.inliers], result.match_distances[check.inliers]
        track_ids, track_lengths = self.tracks.update(len(keypoints), matches)

        normalised = velocities = None
        if camera is not None:
            normalised = camera.normalise(keypoints)
            velocities = np.zeros_like(normalised)
            if previous is not None and len(matches) and stamp_ns is not None and previous.stamp_ns is not None \
                    and stamp_ns > previous.stamp_ns:
                moved = normalised[matches[:, 1]] - camera.normalise(previous.keypoints[matches[:, 0]])
                velocities[matches[:, 1]] = moved / ((stamp_ns - previous.stamp_ns) * 1e-9)
        self._previous = _Previous(keypoints, stamp_ns)

        timings = dict(result.timings)
        timings["match"] = timings.get("match", 0.0) + (time.perf_counter() - start) * 1e3
        with self._lock:
            if len(result.matches):
                self._ratio_sum += check.ratio
                self._ratio_frames += 1
                self._last_ratio = check.ratio
            self._too_few += check.status == "too few"
        return TrackedFrame(result.features, matches, distances, len(result.matches), check, track_ids,
                            track_lengths, normalised, velocities,
                            previous.keypoints if previous is not None else np.zeros((0, 2), np.float32),
                            timings, result.has_previous)
