"""Feature tracks for visual odometry: track ids, geometric check, camera model, VINS layout, drawing."""
from rfnet_ros.tracking.camera import CalibrationRejected, CameraModel, LatestCalibration
from rfnet_ros.tracking.geometry import CheckResult, check_matches
from rfnet_ros.tracking.tracker import FeatureTracker, FrontEndStatistics, TrackedFrame
from rfnet_ros.tracking.tracks import TrackBook, TrackStatistics

__all__ = ["CalibrationRejected", "CameraModel", "LatestCalibration", "CheckResult", "check_matches",
           "FeatureTracker", "FrontEndStatistics", "TrackedFrame", "TrackBook", "TrackStatistics"]
