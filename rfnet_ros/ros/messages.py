"""Output messages of the feature node, built from the front end's results (rfnet_ros.tracking.tracker)."""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
from sensor_msgs.msg import ChannelFloat32, Image, PointCloud
from std_msgs.msg import Header

from rfnet_ros.config import NodeConfig
from rfnet_ros.image_messages import array_to_image_fields
from rfnet_ros.msg import FrameTiming, Keypoints, Matches
from rfnet_ros.pipeline import FrameFeatures
from rfnet_ros.ros.monitor import STAGE_NAMES
from rfnet_ros.stamps import from_nanoseconds
from rfnet_ros.tracking.drawing import draw_tracks
from rfnet_ros.tracking.tracker import FeatureTracker, TrackedFrame
from rfnet_ros.tracking.vins import FeatureCloud, TrackedPoints, VinsLayout, feature_cloud


def float_array(values: np.ndarray) -> array.array:
    """float32 values as array.array('f'): message setters take it without a per-element check."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def uint32_array(values: np.ndarray) -> array.array:
    out = array.array("I")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def uint64_array(values: np.ndarray) -> array.array:
    out = array.array("Q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint64).tobytes())
    return out


def keypoints_message(header: Header, result: TrackedFrame, with_descriptors: bool) -> Keypoints:
    return features_message(header, result.features, result.track_ids, with_descriptors)


def features_message(header: Header, features: FrameFeatures, track_ids: np.ndarray,
                     with_descriptors: bool) -> Keypoints:
    """The Keypoints message of one image's features with their track ids (N,)."""
    msg = Keypoints(header=header, image_height=features.image_size[0], image_width=features.image_size[1])
    msg.x = float_array(features.keypoints[:, 0])
    msg.y = float_array(features.keypoints[:, 1])
    msg.score = float_array(features.scores)
    msg.scale = float_array(features.scales)
    msg.orientation = float_array(features.orientations)
    if with_descriptors:
        msg.descriptor_size = features.descriptors.shape[1]
        msg.descriptors = float_array(features.descriptors.ravel())
    msg.track_ids = uint64_array(track_ids)
    return msg


def matches_message(header: Header, result: TrackedFrame) -> Matches:
    """The checked matches of ``result`` to its previous frame, which must have a stamp."""
    msg = Matches(header=header, previous_stamp=Time(**from_nanoseconds(result.previous_stamp_ns)._asdict()))
    msg.previous_index = uint32_array(result.matches[:, 0])
    msg.current_index = uint32_array(result.matches[:, 1])
    msg.distance = float_array(result.match_distances)
    return msg


def point_cloud_message(header: Header, cloud: FeatureCloud) -> PointCloud:
    """The VINS feature message: points (x, y, 1) and one float32 channel per name, in order."""
    msg = PointCloud(header=header)
    msg.points = [Point32(x=x, y=y, z=z) for x, y, z in cloud.points.tolist()]
    msg.channels = [ChannelFloat32(name=name, values=float_array(values)) for name, values in cloud.channels.items()]
    return msg


def vins_feature_message(header: Header, result: TrackedFrame, settings: NodeConfig) -> PointCloud | None:
    """The VINS feature message of ``result`` in ``settings.vins_layout``; None without a camera model or, as
    VINS-Mono's tracker, without a feature to report."""
    if result.normalised is None:
        return None
    cloud = feature_cloud(TrackedPoints.of(result), VinsLayout.from_config(settings))
    return point_cloud_message(header, cloud) if len(cloud.points) else None


def debug_image_message(header: Header, image: np.ndarray, color_order: str, result: TrackedFrame) -> Image:
    """``image`` (bgr8) with the keypoints coloured by track length, each match a line from its previous place."""
    trails = [np.zeros((0, 2))] * len(result.features)
    for previous, current in result.matches.tolist():
        trails[current] = result.previous_keypoints[previous][None]
    canvas = draw_tracks(image, result.features.keypoints, result.track_lengths, trails, color_order)
    return Image(header=header, **array_to_image_fields(canvas, "bgr"))


def timing_message(header: Header, stage_ms: dict[str, float], front_end: FeatureTracker, result: TrackedFrame,
                   counters: dict[str, int]) -> FrameTiming:
    """Stage times (ms; stages that did not run are 0), the engine that ran and the node's frame counters
    (``frames_dropped``, ``frames_rejected``, ``frames_lost``)."""
    return FrameTiming(
        header=header, **{f"{stage}_ms": float(stage_ms.get(stage, 0.0)) for stage in STAGE_NAMES},
        device=str(front_end.device), engine=front_end.engine_name, precision=front_end.precision,
        num_keypoints=len(result.features), num_matches=len(result.matches) if result.has_previous else 0,
        inlier_ratio=result.inlier_ratio, **counters)
