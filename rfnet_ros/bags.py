"""rosbag2 bags in MCAP storage, written with the `rosbags` library (no ROS install needed).

The message definitions come from rosbags' Humble type store (sensor_msgs, std_msgs, diagnostic_msgs, ...)
plus rfnet_ros's own messages, read from their .msg files (the installed share/rfnet_ros/msg, or msg/ of
this source tree), and any other type whose .msg file is found under an AMENT_PREFIX_PATH prefix. The bags
are what `ros2 bag record -s mcap` writes: `ros2 bag play`, `ros2 bag info` and Foxglove read them, and so
do the player and rfnet_ros.frame_sources.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rfnet_ros.share import find_shared_file
from rfnet_ros.stamps import from_nanoseconds

# Field types of a .msg file that name another message ("pkg/Type" or a bare "Type" of the same package).
_FIELD = re.compile(r"^\s*([A-Za-z][\w/]*)(\[[^\]]*\])?\s+\w+")
_PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
               "uint32", "int64", "uint64", "string", "wstring", "time", "duration"}


class BagError(ValueError):
    """A bag that cannot be written or a message type without a definition."""


def typestore(extra_types: tuple[str, ...] = ("rfnet_ros/msg/Keypoints", "rfnet_ros/msg/Matches",
                                              "rfnet_ros/msg/FrameTiming")):
    """rosbags' Humble type store with ``extra_types`` ("pkg/msg/Type") registered from their .msg files."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    for msgtype in extra_types:
        register(store, msgtype)
    return store


def register(store, msgtype: str) -> None:
    """Register ``msgtype`` ("pkg/msg/Type") and the message types its fields use from their .msg files."""
    from rosbags.typesys import get_types_from_msg

    if msgtype in store.types:
        return
    package, _, name = msgtype.partition("/msg/")
    path = find_shared_file(package, "msg", f"{name}.msg")
    if path is None:
        raise BagError(f"no message definition for {msgtype}: {name}.msg not found in "
                       f"share/{package}/msg of AMENT_PREFIX_PATH")
    text = path.read_text()
    for line in text.splitlines():
        match = _FIELD.match(line.split("#", 1)[0])
        if not match or "=" in line.split("#", 1)[0] or match.group(1) in _PRIMITIVES:
            continue
        field_type = match.group(1)
        if field_type == "Header":
            field_type = "std_msgs/Header"
        dependency = field_type if "/" in field_type else f"{package}/{field_type}"
        dependency_package, _, dependency_name = dependency.rpartition("/")
        register(store, f"{dependency_package.removesuffix('/msg')}/msg/{dependency_name}")
    store.register(get_types_from_msg(text, msgtype))


def open_writer(path: Path):
    """A rosbags Writer of a new MCAP bag folder at ``path`` (which must not exist), opened."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = Path(path)
    if path.exists():
        raise BagError(f"{path} exists: choose a new folder for the bag")
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    return writer


def stamp_fields(store, stamp_ns: int):
    """A builtin_interfaces/Time of rosbags' store for a stamp in ns."""
    Time = store.types["builtin_interfaces/msg/Time"]
    return Time(**from_nanoseconds(stamp_ns)._asdict())


def image_message(store, image: np.ndarray, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/Image of a uint8 BGR (H, W, 3) or gray (H, W) frame."""
    Image, Header = store.types["sensor_msgs/msg/Image"], store.types["std_msgs/msg/Header"]
    image = np.ascontiguousarray(image)
    encoding = "mono8" if image.ndim == 2 else "bgr8"
    return Image(header=Header(stamp=stamp_fields(store, stamp_ns), frame_id=frame_id), height=image.shape[0],
                 width=image.shape[1], encoding=encoding, is_bigendian=0, step=image.strides[0],
                 data=image.reshape(-1).view(np.uint8))


def compressed_message(store, data: bytes, fmt: str, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/CompressedImage of encoded image bytes (format "jpeg" or "png")."""
    CompressedImage, Header = store.types["sensor_msgs/msg/CompressedImage"], store.types["std_msgs/msg/Header"]
    return CompressedImage(header=Header(stamp=stamp_fields(store, stamp_ns), frame_id=frame_id), format=fmt,
                           data=np.frombuffer(data, np.uint8))


def camera_info_message(store, fields: dict, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/CameraInfo from :func:`rfnet_ros.tracking.camera.read_calibration` fields."""
    CameraInfo, Header = store.types["sensor_msgs/msg/CameraInfo"], store.types["std_msgs/msg/Header"]
    RegionOfInterest = store.types["sensor_msgs/msg/RegionOfInterest"]
    return CameraInfo(header=Header(stamp=stamp_fields(store, stamp_ns), frame_id=frame_id),
                      height=fields["height"], width=fields["width"], distortion_model=fields["distortion_model"],
                      d=np.asarray(fields["d"], np.float64), k=np.asarray(fields["k"], np.float64),
                      r=np.asarray(fields["r"], np.float64), p=np.asarray(fields["p"], np.float64),
                      binning_x=0, binning_y=0,
                      roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
