"""Where the previous frame's keypoints should be in the next frame, to limit the matcher's search.

Two predictions, both a homography from the previous image to the next:
- constant velocity: the motion fitted to the last frame pair's checked matches (a homography, with OpenCV's
  RANSAC) is assumed to repeat;
- the gyro: the camera's rotation between the two stamps, integrated from angular rates, predicts the image
  motion of a pure rotation, ``K R K^-1`` (far points, or a camera that mostly turns: exactly the fast
  rotations where descriptors alone fail).
A keypoint of the previous frame may then only match keypoints within a search radius of its predicted place
(``search_window``). No prediction (too few matches to fit, no angular rates covering the interval) means an
unrestricted search.
"""
from __future__ import annotations

import bisect
import threading

import cv2
import numpy as np

# Fewest checked matches the constant-velocity homography is fitted to.
MIN_MOTION_MATCHES = 15
# RANSAC reprojection threshold (px) of that fit.
MOTION_RANSAC_PX = 3.0
# Longest gap (s) between two angular-rate samples integrated across: an IMU slower than 10 Hz cannot follow
# the fast rotations the prediction is for.
MAX_SAMPLE_GAP_S = 0.1


def fit_motion(points0: np.ndarray, points1: np.ndarray) -> np.ndarray | None:
    """The homography (3, 3) taking ``points0`` (M, 2) to ``points1`` (RANSAC), or None when it cannot be fitted."""
    if len(points0) < MIN_MOTION_MATCHES:
        return None
    homography, _ = cv2.findHomography(points0.astype(np.float64), points1.astype(np.float64), cv2.RANSAC,
                                       MOTION_RANSAC_PX)
    return homography if homography is not None and homography.size and np.isfinite(homography).all() else None


def rotation_homography(camera_matrix: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``K R K^-1``: how a camera rotating by ``rotation`` (3, 3; the new camera's axes in the old camera's
    frame) moves far points in the image, for the pinhole matrix ``camera_matrix`` (3, 3)."""
    return camera_matrix @ rotation.T @ np.linalg.inv(camera_matrix)


def warp_points(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) px moved by ``homography`` (3, 3)."""
    if len(points) == 0:
        return points.reshape(0, 2).astype(np.float32)
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)


def search_window(predicted: np.ndarray, points: np.ndarray, radius: float) -> np.ndarray:
    """(N0, N1) bool: whether ``points`` (N1, 2) lie within ``radius`` px of each ``predicted`` place (N0, 2)."""
    gap = predicted[:, None, :].astype(np.float32) - points[None, :, :].astype(np.float32)
    return (gap ** 2).sum(axis=2) <= radius ** 2


class GyroIntegrator:
    """Angular-rate samples (rad/s, in the IMU's frame) and the camera rotation they give between two stamps.

    ``imu_to_camera`` (3, 3) turns IMU-frame vectors into the camera's frame. Samples arrive on one thread and
    are read on another (thread-safe); they are kept for ``keep_s`` seconds.
    """

    def __init__(self, imu_to_camera: np.ndarray | None = None, keep_s: float = 5.0):
        self.imu_to_camera = np.eye(3) if imu_to_camera is None else np.asarray(imu_to_camera, np.float64)
        self._keep_ns = int(keep_s * 1e9)
        self._lock = threading.Lock()
        self._stamps: list[int] = []
        self._rates: list[np.ndarray] = []

    def add(self, stamp_ns: int, rate: np.ndarray) -> str | None:
        """Record one sample; returns why it was refused (not finite, older than the last one), else None."""
        rate = np.asarray(rate, np.float64)
        if rate.shape != (3,) or not np.isfinite(rate).all():
            return "angular velocity is not three finite numbers"
        with self._lock:
            if self._stamps and stamp_ns <= self._stamps[-1]:
                return "stamp not after the previous sample's"
            self._stamps.append(stamp_ns)
            self._rates.append(self.imu_to_camera @ rate)
            cut = bisect.bisect_left(self._stamps, stamp_ns - self._keep_ns)
            del self._stamps[:cut], self._rates[:cut]
        return None

    def rotation(self, start_ns: int, end_ns: int) -> tuple[np.ndarray | None, str]:
        """The camera's rotation from ``start_ns`` to ``end_ns`` (3, 3: the later axes in the earlier frame),
        integrating piecewise-constant rates, and ""; or None and why not (no samples, the samples do not
        cover the interval, or a gap between samples longer than MAX_SAMPLE_GAP_S)."""
        with self._lock:
            stamps, rates = list(self._stamps), list(self._rates)
        if not stamps:
            return None, "no imu samples"
        if end_ns < start_ns or stamps[0] > start_ns or stamps[-1] < end_ns:
            return None, "imu samples do not cover the frame interval (late or missing imu data)"
        first = bisect.bisect_right(stamps, start_ns) - 1
        last = bisect.bisect_left(stamps, end_ns)
        if max(np.diff(stamps[first:last + 1]), default=0) > MAX_SAMPLE_GAP_S * 1e9:
            return None, f"imu samples more than {MAX_SAMPLE_GAP_S:g} s apart (imu rate too low)"
        rotation = np.eye(3)
        for i in range(first, last):
            begin, finish = max(stamps[i], start_ns), min(stamps[i + 1], end_ns)
            if finish > begin:
                step, _ = cv2.Rodrigues(rates[i] * ((finish - begin) * 1e-9))
                rotation = rotation @ step
        return rotation, ""


class MatchPredictor:
    """The prediction of ``match_prediction`` (``off``, ``constant_velocity`` or ``imu``) for one camera stream,
    with counts of frames predicted and of fallbacks to an unrestricted search (and the last reason)."""

    def __init__(self, mode: str, imu_to_camera: np.ndarray | None = None):
        self.mode = mode
        self.gyro = GyroIntegrator(imu_to_camera)
        self.predicted = 0
        self.fallbacks = 0
        self.last_fallback = ""

    def predict(self, points: np.ndarray, start_ns: int | None, end_ns: int | None, motion: np.ndarray | None,
                camera_matrix: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        """Where ``points`` (N, 2) px of the frame stamped ``start_ns`` should be in the frame stamped ``end_ns``:
        ``motion`` (the homography fitted to the last frame pair, constant_velocity) or the gyro's rotation
        with ``camera_matrix`` (imu). Returns the places (N, 2), or None and why not (counted as a fallback)."""
        if self.mode == "off":
            return None, ""
        homography, why = None, ""
        if self.mode == "constant_velocity":
            homography = motion
            why = "" if motion is not None else "no motion fitted to the last frame pair"
        elif camera_matrix is None:
            why = "no camera_info: the rotation's image motion needs K"
        elif start_ns is None or end_ns is None:
            why = "frames without stamps"
        else:
            rotation, why = self.gyro.rotation(start_ns, end_ns)
            homography = None if rotation is None else rotation_homography(camera_matrix, rotation)
        if homography is None:
            self.fallbacks += 1
            self.last_fallback = why
            return None, why
        self.predicted += 1
        return warp_points(homography, points), ""
