"""The feature message of the VINS estimators: sensor_msgs/PointCloud points and channels, as arrays.

VINS-Mono's and VINS-Fusion's estimators read their visual input as a sensor_msgs/PointCloud whose points
are the undistorted normalised coordinates (x, y, 1) of the tracked features and whose channels carry one
value per point, read **by position**:

``mono``   (VINS-Mono, as its feature_tracker publishes it): id_of_point, u_of_point, v_of_point,
           velocity_x_of_point, velocity_y_of_point. Only tracks seen in two or more frames are published,
           as VINS-Mono's tracker does (a feature seen once carries no motion yet).
``fusion`` (VINS-Fusion, as its estimator's feature_callback reads it): id_of_point, camera_id_of_point,
           u_of_point, v_of_point, velocity_x_of_point, velocity_y_of_point, then three zero channels
           (ground_truth_x/y/z_of_point). The estimator reads positions 6..8 as debug ground truth whenever
           a message has more than five channels, so a message with exactly six would make it read past the
           end of its channel list; the zeros keep that read in bounds and are otherwise unused. Every track is
           published, new ones too, as VINS-Fusion's tracker does.

u, v are the distorted pixel coordinates of the keypoint; velocities are normalised units per second, from
the track's position in the previous frame (0 for a track that starts in this frame).

Ids are float32 values, exact up to 2**24. VINS-Mono's id channel holds ``id * NUM_OF_CAM + camera``; with
one camera that is the id itself. Track ids above 2**24 are published modulo 2**24 (they would otherwise be
rounded onto their neighbours' ids); an id then repeats after 16.7 million tracks, long after the estimators'
sliding windows (about ten keyframes) have forgotten the earlier track of that id.

Plain numpy, no ROS: the node turns :class:`FeatureCloud` into the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rfnet_ros.config import VINS_LAYOUTS as LAYOUTS
from rfnet_ros.config import NodeConfig

if TYPE_CHECKING:
    from rfnet_ros.tracking.tracker import TrackedFrame

MONO_CHANNELS = ("id_of_point", "u_of_point", "v_of_point", "velocity_x_of_point", "velocity_y_of_point")
FUSION_CHANNELS = ("id_of_point", "camera_id_of_point", "u_of_point", "v_of_point", "velocity_x_of_point",
                   "velocity_y_of_point", "ground_truth_x_of_point", "ground_truth_y_of_point",
                   "ground_truth_z_of_point")
# Track ids go into float32 channels: 2**24 is the first integer float32 cannot tell from its neighbour.
ID_MODULUS = 1 << 24


@dataclass(frozen=True)
class FeatureCloud:
    """points: (P, 3) float32 (x, y, 1); channels: name -> (P,) float32, in message order."""

    points: np.ndarray
    channels: dict[str, np.ndarray]


@dataclass(frozen=True)
class TrackedPoints:
    """One frame's N tracked keypoints: track_ids (N,), track_lengths (N,) frames seen, pixels (N, 2) px,
    normalised (N, 2) undistorted normalised coordinates, velocities (N, 2) normalised units per second."""

    track_ids: np.ndarray
    track_lengths: np.ndarray
    pixels: np.ndarray
    normalised: np.ndarray
    velocities: np.ndarray

    @classmethod
    def of(cls, frame: TrackedFrame) -> TrackedPoints:
        """The points of a frame tracked with a camera model (``normalised`` and ``velocities`` set)."""
        return cls(frame.track_ids, frame.track_lengths, frame.features.keypoints, frame.normalised,
                   frame.velocities)


@dataclass(frozen=True)
class VinsLayout:
    """The channels of the cloud: ``name`` mono or fusion (module docstring); ``camera_id``, the value of the
    fusion layout's camera id channel."""

    name: str
    camera_id: int = 0

    def __post_init__(self) -> None:
        if self.name not in LAYOUTS:
            raise ValueError(f"vins layout {self.name!r} is not one of {', '.join(LAYOUTS)}")

    @classmethod
    def from_config(cls, node: NodeConfig) -> VinsLayout:
        return cls(node.vins_layout, node.vins_camera_id)


def feature_cloud(tracked: TrackedPoints, layout: VinsLayout) -> FeatureCloud:
    """The cloud of one frame's tracked keypoints in ``layout``."""
    mono = layout.name == "mono"
    keep = np.asarray(tracked.track_lengths) >= 2 if mono else np.ones(len(tracked.track_ids), bool)
    ids = (np.asarray(tracked.track_ids, np.uint64)[keep] % np.uint64(ID_MODULUS)).astype(np.float32)
    pixels = np.asarray(tracked.pixels, np.float32)[keep]
    normalised = np.asarray(tracked.normalised, np.float32)[keep]
    velocities = np.asarray(tracked.velocities, np.float32)[keep]
    count = len(ids)
    points = np.concatenate([normalised.reshape(count, 2), np.ones((count, 1), np.float32)], axis=1)
    values = {"id_of_point": ids, "camera_id_of_point": np.full(count, layout.camera_id, np.float32),
              "u_of_point": pixels[:, 0].copy(), "v_of_point": pixels[:, 1].copy(),
              "velocity_x_of_point": velocities[:, 0].copy(), "velocity_y_of_point": velocities[:, 1].copy()}
    names = MONO_CHANNELS if mono else FUSION_CHANNELS
    zeros = np.zeros(count, np.float32)
    return FeatureCloud(points, {name: values.get(name, zeros) for name in names})


def stereo_cloud(left: TrackedPoints, right: TrackedPoints, left_camera_id: int = 0) -> FeatureCloud:
    """VINS-Fusion's stereo input in one cloud, in the fusion layout: every left point with camera id
    ``left_camera_id``, then the right points (the left points' partners, with their ids) with the next id."""
    clouds = [feature_cloud(left, VinsLayout("fusion", left_camera_id)),
              feature_cloud(right, VinsLayout("fusion", left_camera_id + 1))]
    return FeatureCloud(np.concatenate([cloud.points for cloud in clouds]),
                        {name: np.concatenate([cloud.channels[name] for cloud in clouds]) for name in FUSION_CHANNELS})
