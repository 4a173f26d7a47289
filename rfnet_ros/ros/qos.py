"""QoS of the node's subscriptions (REP-2003: sensor data is best effort, keep last)."""
from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from rfnet_ros.config import NodeConfig

# Gyro samples come at hundreds of Hz: a deep queue, so that none is lost while the input group is busy.
IMU_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=qos_profile_sensor_data.reliability)


def image_qos(settings: NodeConfig) -> QoSProfile:
    """QoS of the image subscription from the node settings."""
    if settings.image_qos == "sensor_data":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.qos_depth,
                          reliability=qos_profile_sensor_data.reliability,
                          durability=qos_profile_sensor_data.durability)
    reliability = ReliabilityPolicy.RELIABLE if settings.image_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.qos_depth, reliability=reliability)
