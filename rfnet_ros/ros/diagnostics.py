"""The feature node's /diagnostics status: the monitor's report with what the front end and the camera report."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from rfnet_ros.config import FeatureConfig
from rfnet_ros.ros.monitor import ERROR, OK, WARN, Report
from rfnet_ros.tracking.tracker import FeatureTracker
from rfnet_ros.tracking.tracks import ALIVE_AFTER

LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}


def front_end_values(feature: FeatureConfig, front_end: FeatureTracker) -> dict[str, str]:
    """Key-values of the model, the engine it runs in, the geometric check and the tracks."""
    statistics = front_end.statistics()
    tracks = statistics.tracks
    return {
        "device": str(front_end.device),
        "engine": front_end.engine_name,
        "precision": front_end.precision,
        "detector_precision": front_end.detector_precision,
        "replaced_layers": str(feature.replaced_layers),
        "weights": feature.weights_path.name,
        "model_size": f"{feature.model_width}x{feature.model_height}",
        "top_k": str(feature.top_k),
        "geometric_check": feature.geometric_check,
        "inlier_ratio_mean": f"{statistics.inlier_ratio_mean:.3f}",
        "inlier_ratio_last": f"{statistics.inlier_ratio_last:.3f}",
        "frames_too_few_matches": str(statistics.frames_too_few),
        "tracks_started": str(tracks.started),
        "tracks_active": str(tracks.active),
        "track_length_mean": f"{tracks.mean_length:.2f}",
        "track_length_active_mean": f"{tracks.active_mean_length:.2f}",
        f"tracks_alive_after_{ALIVE_AFTER}_share": f"{tracks.alive_share:.3f}",
        "mask": statistics.mask,
        "match_prediction": feature.match_prediction,
        "frames_predicted": str(statistics.frames_predicted),
        "prediction_fallbacks": str(statistics.prediction_fallbacks),
        "last_prediction_fallback": statistics.last_fallback or "none",
    }


def with_warning(report: Report, warning: str | None) -> Report:
    """``report`` with one more warning (e.g. a camera_info that cannot be used): WARN if it was OK."""
    if warning:
        if report.level == OK:
            report.level, report.message = WARN, warning
        else:
            report.message = f"{report.message}; {warning}"
    return report


def with_error(report: Report, error: str) -> Report:
    """``report`` with one more error: ERROR, the error first in the message."""
    report.message = error if report.level == OK else f"{error}; {report.message}"
    report.level = ERROR
    return report


def diagnostic_array(name: str, hardware_id: str, report: Report, stamp: Time) -> DiagnosticArray:
    """One DiagnosticStatus named ``name`` holding ``report``."""
    status = DiagnosticStatus(level=LEVELS[report.level], name=name, message=report.message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])
