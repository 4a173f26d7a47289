"""Frames from a video file, an image folder or a rosbag2 bag, as numpy arrays (no ROS needed).

The player publishes them, rfnet-bag writes them into a bag and rfnet-track tracks them. Bags are read with
the `rosbags` library, from sensor_msgs/Image or sensor_msgs/CompressedImage topics.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.stamps import to_nanoseconds

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
BAG_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class SourceError(ValueError):
    """A frame source that cannot be opened or read."""


def is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or path.suffix in (".db3", ".mcap")


def to_bgr_or_gray(image: np.ndarray, color_order: str, mono: bool) -> np.ndarray:
    """Any decoded frame -> uint8 (H, W, 3) BGR, or (H, W) gray with ``mono``."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image if mono else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    code = {("bgr", 3): cv2.COLOR_BGR2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY,
            ("rgb", 3): cv2.COLOR_RGB2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY} if mono else \
           {("bgr", 3): None, ("bgr", 4): cv2.COLOR_BGRA2BGR, ("rgb", 3): cv2.COLOR_RGB2BGR,
            ("rgb", 4): cv2.COLOR_RGBA2BGR}
    conversion = code[(color_order, image.shape[2])]
    return image if conversion is None else cv2.cvtColor(image, conversion)


def video_frames(path: Path) -> Iterator[tuple[np.ndarray, str, int | None]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"{path}: not a readable video")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame, "bgr", None
    finally:
        capture.release()


def folder_frames(path: Path) -> Iterator[tuple[np.ndarray, str, int | None]]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            print(f"player: skipping unreadable {file}", file=sys.stderr)
            continue
        yield image, "bgr", None


def bag_frames(path: Path, topic: str | None) -> Iterator[tuple[np.ndarray, str, int | None]]:
    """Frames of an image topic of a rosbag2 bag, with their header stamps in ns."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from rfnet_ros.image_messages import ImageRejected, compressed_to_array, image_to_array

    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        connections = [c for c in reader.connections if c.msgtype in BAG_IMAGE_TYPES
                       and (topic is None or c.topic == topic)]
        if not connections:
            found = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "none"
            raise SourceError(f"{path}: no image topic{f' {topic}' if topic else ''}; topics: {found}")
        topics = {c.topic for c in connections}
        if len(topics) > 1:
            raise SourceError(f"{path}: several image topics ({', '.join(sorted(topics))}): choose one with "
                              "--bag-topic")
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            try:
                if connection.msgtype.endswith("CompressedImage"):
                    image, order = compressed_to_array(msg)
                else:
                    image, order = image_to_array(msg)
            except ImageRejected as exc:
                print(f"player: skipping a bag message: {exc.reason}", file=sys.stderr)
                continue
            yield image, order, to_nanoseconds(msg.header.stamp)


def open_source(path: Path, bag_topic: str | None = None) -> Iterator[tuple[np.ndarray, str, int | None]]:
    """(image, colour order, stamp ns or None) for each frame of a video, image folder or bag."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if is_bag(path):
        return bag_frames(path, bag_topic)
    if path.is_dir():
        return folder_frames(path)
    return video_frames(path)


def frames(path: Path, *, mono: bool = False, resize: tuple[int, int] | None = None, loop: bool = False,
           bag_topic: str | None = None) -> Iterator[tuple[np.ndarray, int | None]]:
    """Publishable frames (uint8 BGR or gray, resized to (width, height)) and their recorded stamps."""
    while True:
        count = 0
        for image, order, stamp in open_source(path, bag_topic):
            image = to_bgr_or_gray(image, order, mono)
            if resize is not None and (image.shape[1], image.shape[0]) != resize:
                image = cv2.resize(image, resize, interpolation=cv2.INTER_AREA)
            count += 1
            yield image, stamp
        if count == 0:
            raise SourceError(f"{path}: no frames")
        if not loop:
            return

