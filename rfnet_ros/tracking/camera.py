"""A calibrated camera from sensor_msgs/CameraInfo: undistorted normalised coordinates of pixel keypoints.

Distortion models (sensor_msgs/distortion_models), undistorted with OpenCV:

- ``plumb_bob`` (k1, k2, t1, t2, k3) and ``rational_polynomial`` (k1, k2, t1, t2, k3, k4, k5, k6):
  cv2.undistortPoints;
- ``equidistant`` (k1, k2, k3, k4, the fisheye model of OpenCV and Kalibr): cv2.fisheye.undistortPoints.

Normalised coordinates are those of the raw (unrectified) camera, x = X/Z, y = Y/Z in its optical frame, taken
from K and D only; R and P of the CameraInfo (stereo rectification) are not applied. This is what VINS-Mono's
and VINS-Fusion's feature trackers publish. R and P are kept for a stereo pair: ``rectify`` maps raw pixels to
the rectified image's pixels (cv2.undistortPoints with R and P), ``rectified`` is the pinhole camera of the
rectified image (P's intrinsics) and ``baseline`` comes from P's Tx = -fx * baseline.

Nothing here imports rclpy: :meth:`CameraModel.from_camera_info` takes any object with the CameraInfo fields
(an rclpy message, a rosbags message, or a test's).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

# distortion_model -> allowed numbers of coefficients in D (an empty D means no distortion).
DISTORTION_MODELS = {"plumb_bob": (0, 4, 5), "rational_polynomial": (0, 8), "equidistant": (4,)}
# cv2.undistortPoints iterations; OpenCV's default (5) leaves up to ~0.1 px at the corners of wide lenses.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-9)


def _undistort_points(src: np.ndarray, K: np.ndarray, D: np.ndarray, R: np.ndarray | None = None,
                      P: np.ndarray | None = None) -> np.ndarray:
    """cv2.undistortPoints with UNDISTORT_CRITERIA: OpenCV 4 names that overload undistortPointsIter."""
    if hasattr(cv2, "undistortPointsIter"):
        return cv2.undistortPointsIter(src, K, D, R, P, UNDISTORT_CRITERIA)
    return cv2.undistortPoints(src, K, D, R=R, P=P, criteria=UNDISTORT_CRITERIA)


class CalibrationRejected(ValueError):
    """A CameraInfo that cannot be used; the text says why in one line."""


@dataclass(frozen=True)
class CameraModel:
    """K (3, 3) float64, D (k,) float64, distortion model name, image (width, height) in px; R (3, 3) and P (3, 4)
    float64 of stereo rectification, or None where the CameraInfo leaves them zero."""

    K: np.ndarray
    D: np.ndarray
    distortion_model: str
    width: int
    height: int
    R: np.ndarray | None = None
    P: np.ndarray | None = None

    @classmethod
    def from_camera_info(cls, msg) -> CameraModel:
        """The camera of a sensor_msgs/CameraInfo (fields k, d, distortion_model, width, height, binning_x,
        binning_y, roi, and r and p where present); raises :class:`CalibrationRejected` for one that cannot be used."""
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        D = np.asarray(msg.d, dtype=np.float64).ravel()
        model = msg.distortion_model or ("plumb_bob" if len(D) == 0 else "")
        if model not in DISTORTION_MODELS:
            raise CalibrationRejected(f"distortion model {model!r} is not one of "
                                      f"{', '.join(DISTORTION_MODELS)}")
        if len(D) not in DISTORTION_MODELS[model]:
            allowed = " or ".join(map(str, DISTORTION_MODELS[model]))
            raise CalibrationRejected(f"{model} takes {allowed} distortion coefficients, got {len(D)}")
        if not (K[0, 0] > 0 and K[1, 1] > 0) or not np.isfinite(K).all() or not np.isfinite(D).all():
            raise CalibrationRejected("uncalibrated camera: K has no positive focal lengths")
        if msg.width <= 0 or msg.height <= 0:
            raise CalibrationRejected(f"image size {msg.width}x{msg.height} is empty")
        if max(msg.binning_x, 1) > 1 or max(msg.binning_y, 1) > 1 or msg.roi.width or msg.roi.height:
            raise CalibrationRejected("binning and region of interest are not supported")
        # r and p may be absent (an object with the mono fields only) or zero (no stereo calibration).
        r, p = getattr(msg, "r", None), getattr(msg, "p", None)
        R = np.asarray(np.eye(3) if r is None else r, dtype=np.float64).reshape(3, 3)
        P = np.asarray(np.zeros(12) if p is None else p, dtype=np.float64).reshape(3, 4)
        usable = np.isfinite(R).all() and np.isfinite(P).all() and P[0, 0] > 0 and P[1, 1] > 0
        R = R if usable and abs(np.linalg.det(R)) > 0.5 else (np.eye(3) if usable else None)
        return cls(K, D, model, int(msg.width), int(msg.height), R, P if usable else None)

    @property
    def baseline(self) -> float:
        """Distance to the stereo partner in P's units (metres), from P's Tx = -fx * baseline; 0 without one."""
        return 0.0 if self.P is None else float(-self.P[0, 3] / self.P[0, 0])

    def rectify(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) raw pixel (x, y) -> (N, 2) float64 pixels of the rectified image (undistorted, rotated by R,
        projected by P); ValueError without P."""
        if self.P is None:
            raise ValueError("camera_info has no projection matrix P to rectify with")
        src = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 1, 2)
        if len(src) == 0:
            return np.zeros((0, 2))
        if self.distortion_model == "equidistant":
            return cv2.fisheye.undistortPoints(src, self.K, self.D, R=self.R, P=self.P).reshape(-1, 2)
        return _undistort_points(src, self.K, self.D, self.R, self.P).reshape(-1, 2)

    def rectified(self) -> CameraModel:
        """The pinhole camera of the rectified image: P's intrinsics, no distortion; ValueError without P."""
        if self.P is None:
            raise ValueError("camera_info has no projection matrix P")
        return CameraModel(self.P[:, :3].copy(), np.zeros(0), "plumb_bob", self.width, self.height, np.eye(3),
                           self.P.copy())

    def size_mismatch(self, width: int, height: int) -> str | None:
        """Why images of ``width`` x ``height`` px cannot use this calibration, or None when they can."""
        if (width, height) == (self.width, self.height):
            return None
        return f"camera_info is for {self.width}x{self.height} images, the images are {width}x{height}"

    def normalise(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixel (x, y) -> (N, 2) float64 undistorted normalised coordinates (x/z, y/z)."""
        src = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 1, 2)
        if len(src) == 0:
            return np.zeros((0, 2))
        if self.distortion_model == "equidistant":
            out = cv2.fisheye.undistortPoints(src, self.K, self.D, criteria=UNDISTORT_CRITERIA)
        else:
            out = _undistort_points(src, self.K, self.D)
        return out.reshape(-1, 2)

    def undistort_pixels(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixel (x, y) -> (N, 2) undistorted pixel coordinates (the pinhole camera with the same K)."""
        normalised = self.normalise(points)
        return normalised * (self.K[0, 0], self.K[1, 1]) + (self.K[0, 2], self.K[1, 2]) + \
            normalised[:, 1:2] * (self.K[0, 1], 0.0)

    def project(self, normalised: np.ndarray) -> np.ndarray:
        """(N, 2) normalised coordinates -> (N, 2) distorted pixel coordinates (the inverse of normalise)."""
        points = np.ascontiguousarray(normalised, dtype=np.float64).reshape(-1, 1, 2)
        if len(points) == 0:
            return np.zeros((0, 2))
        if self.distortion_model == "equidistant":
            return cv2.fisheye.distortPoints(points, self.K, self.D).reshape(-1, 2)
        object_points = np.concatenate([points.reshape(-1, 2), np.ones((len(points), 1))], axis=1)
        pixels, _ = cv2.projectPoints(object_points, np.zeros(3), np.zeros(3), self.K,
                                      self.D if len(self.D) else None)
        return pixels.reshape(-1, 2)


class LatestCalibration:
    """The newest camera_info of a camera stream, paired with each image, and what to report about it.

    Pairing: every image uses the newest camera_info received before it, whatever its stamp; calibrations
    rarely change, and drivers publish camera_info beside every image, so an exact stamp match would only
    add latency and lose frames whose camera_info was late. A camera_info that cannot be used is reported
    and the previous usable one is kept. Thread-safe: camera_info arrives in one callback, images are
    processed in another thread.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._camera: CameraModel | None = None
        self._rejected: str | None = None  # why the newest camera_info was refused
        self._mismatch: str | None = None  # why the last image could not use the camera
        self.received = 0

    def offer(self, msg) -> str | None:
        """Take a sensor_msgs/CameraInfo; returns why it was refused (None when it is used)."""
        try:
            camera = CameraModel.from_camera_info(msg)
        except CalibrationRejected as exc:
            with self._lock:
                self.received += 1
                self._rejected = str(exc)
            return str(exc)
        with self._lock:
            self.received += 1
            self._camera, self._rejected = camera, None
        return None

    @property
    def camera(self) -> CameraModel | None:
        with self._lock:
            return self._camera

    def for_image(self, width: int, height: int) -> tuple[CameraModel | None, str | None]:
        """(the camera for an image of this size or None, why the newest camera does not fit or None)."""
        with self._lock:
            camera = self._camera
            self._mismatch = camera.size_mismatch(width, height) if camera is not None else None
            return (None if self._mismatch else camera), self._mismatch

    def status(self) -> tuple[str, str | None]:
        """(one line for diagnostics, a warning or None)."""
        with self._lock:
            camera, rejected, mismatch = self._camera, self._rejected, self._mismatch
        if rejected:
            return f"rejected: {rejected}", f"camera_info rejected: {rejected}"
        if mismatch:
            return f"not used: {mismatch}", f"camera_info not used: {mismatch}"
        if camera is None:
            return "none received: outputs in pixels", None
        return f"{camera.distortion_model} {camera.width}x{camera.height}", None


def sibling_camera_info(image_topic: str) -> str:
    """The camera_info topic image_transport pairs with an image topic: /cam/image_raw -> /cam/camera_info."""
    head, _, _ = image_topic.rpartition("/")
    return f"{head}/camera_info" if head or image_topic.startswith("/") else "camera_info"


def read_calibration(path) -> dict:
    """The CameraInfo fields (width, height, distortion_model, d, k, r, p) of a calibration file in the format
    of ROS's camera_calibration_parsers (what the camera_calibration package and most drivers write):
    image_width, image_height, camera_matrix, distortion_model, distortion_coefficients, and optionally
    rectification_matrix and projection_matrix (each {rows, cols, data}). ValueError naming what is wrong."""
    import yaml

    try:
        data = yaml.safe_load(open(path).read())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read calibration {path}: {exc}") from None

    def matrix(key: str, size: int, default=None) -> list[float]:
        entry = data.get(key)
        if entry is None and default is not None:
            return default
        values = entry.get("data") if isinstance(entry, dict) else None
        if values is None or len(values) != size and size:
            raise ValueError(f"calibration {path}: {key} needs a data list of {size or 'any number of'} values")
        return [float(v) for v in values]

    if not isinstance(data, dict) or "camera_matrix" not in data:
        raise ValueError(f"calibration {path}: no camera_matrix (camera_calibration_parsers YAML expected)")
    k = matrix("camera_matrix", 9)
    return {"width": int(data.get("image_width", 0)), "height": int(data.get("image_height", 0)),
            "distortion_model": str(data.get("distortion_model", "plumb_bob")),
            "d": matrix("distortion_coefficients", 0, []), "k": k,
            "r": matrix("rectification_matrix", 9, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            "p": matrix("projection_matrix", 12, k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])}
