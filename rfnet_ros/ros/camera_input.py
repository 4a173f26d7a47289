"""One camera's camera_info input: the newest calibration, and what the node logs about it."""
from __future__ import annotations

from rclpy.impl.rcutils_logger import RcutilsLogger
from sensor_msgs.msg import CameraInfo

from rfnet_ros.tracking.camera import CameraModel, LatestCalibration

# Seconds between repeats of the same warning.
WARN_THROTTLE = 5.0


class CameraInfoInput:
    """The newest camera_info on ``topic`` (``on_message`` from the subscription) and the camera model for each
    frame (``camera_for`` from the worker): refusals and size mismatches are logged (throttled), its arrival and
    its absence once. ``without_it`` names what the node cannot do without one (logged with the absence)."""

    def __init__(self, logger: RcutilsLogger, topic: str, without_it: str = ""):
        self.calibration = LatestCalibration()
        self._logger = logger
        self._topic = topic
        self._without_it = without_it
        self._said_uncalibrated = False  # worker only

    def on_message(self, msg: CameraInfo) -> None:
        first = self.calibration.received == 0
        refused = self.calibration.offer(msg)
        if refused:
            self._logger.warning(f"camera_info rejected: {refused}", throttle_duration_sec=WARN_THROTTLE)
        elif first:
            self._logger.info(f"camera_info received: {msg.distortion_model or 'no distortion'}, "
                              f"{msg.width}x{msg.height}; normalised outputs are undistorted with it")

    def camera_for(self, width: int, height: int) -> CameraModel | None:
        """The camera model for a frame of this size, or None."""
        camera, mismatch = self.calibration.for_image(width, height)
        if mismatch:
            self._logger.warning(f"camera_info not used: {mismatch}", throttle_duration_sec=WARN_THROTTLE)
        elif camera is None and not self._said_uncalibrated:
            self._said_uncalibrated = True
            self._logger.info(f"no camera_info on {self._topic}: working in pixels (the geometric check on raw "
                              f"pixels){self._without_it}")
        return camera
