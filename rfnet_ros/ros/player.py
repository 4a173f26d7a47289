"""player: publish frames from a video file, an image folder or a rosbag2 bag as sensor_msgs/Image.

    ros2 run rfnet_ros player data/video/vtest.avi --rate 10 --resize 320x240
    ros2 run rfnet_ros player path/to/images/ --mono --loop
    ros2 run rfnet_ros player path/to/bag/ --bag-topic /camera/image_raw --bag-stamps

Frames go out on `image` (remap it with --ros-args -r image:=...) in bgr8, or mono8 with --mono, stamped
with the current time, or for a bag with the recorded header stamps (--bag-stamps). Bags are read with the
`rosbags` library (no ROS install needed), from sensor_msgs/Image or sensor_msgs/CompressedImage topics.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from rfnet_ros.ros.image_conversion import ImageRejected, array_to_image_fields, compressed_to_array, image_to_array

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
BAG_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# Seconds the player keeps running after its last frame (reliable delivery of the last messages).
LINGER_S = 0.5


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
            yield image, order, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


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


def parse_size(text: str) -> tuple[int, int]:
    """'320x240' -> (320, 240)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 320x240, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def publisher_qos(name: str) -> QoSProfile:
    """reliable (reaches every subscriber, the node's best-effort default too) or sensor_data (best effort)."""
    reliability = ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=reliability)


class Player(Node):
    """Publishes one frame per timer tick; ``done`` is set when the frames or --max-frames run out."""

    def __init__(self, frame_source: Iterator[tuple[np.ndarray, int | None]], *, rate: float,
                 frame_id: str = "camera", bag_stamps: bool = False, max_frames: int | None = None,
                 qos: str = "reliable", topic: str = "image", node_name: str = "rfnet_player",
                 wait_for_subscriber: bool = False):
        super().__init__(node_name)
        self._frames = frame_source
        self._frame_id = frame_id
        self._bag_stamps = bag_stamps
        self._max_frames = max_frames
        self._wait_for_subscriber = wait_for_subscriber
        self.published = 0
        self.done = False
        self.error: str | None = None
        self.publisher = self.create_publisher(Image, topic, publisher_qos(qos))
        self._timer = self.create_timer(1.0 / rate, self._tick)

    def _tick(self) -> None:
        if self.done:
            return
        if self._wait_for_subscriber and self.published == 0 and self.publisher.get_subscription_count() == 0:
            return
        if self._max_frames is not None and self.published >= self._max_frames:
            self._finish()
            return
        try:
            image, stamp = next(self._frames)
        except StopIteration:
            self._finish()
            return
        except Exception as exc:  # noqa: BLE001 - unreadable source (rosbags and OpenCV raise several types)
            self.error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            self._finish()
            return
        msg = Image(**array_to_image_fields(image, "bgr"))
        msg.header.frame_id = self._frame_id
        if self._bag_stamps and stamp is not None:
            msg.header.stamp = Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        self.publisher.publish(msg)
        self.published += 1

    def _finish(self) -> None:
        self.done = True
        self._timer.cancel()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="player", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="video file, image folder, or rosbag2 bag (folder, .db3, .mcap)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--frame-id", default="camera", help="header.frame_id (default camera)")
    parser.add_argument("--mono", action="store_true", help="publish mono8 instead of bgr8")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--resize", type=parse_size, metavar="WxH", help="resize frames, e.g. 320x240")
    parser.add_argument("--bag-topic", help="image topic of the bag (needed when it has several)")
    parser.add_argument("--bag-stamps", action="store_true",
                        help="keep the bag's header stamps (default: stamp with the current time)")
    parser.add_argument("--qos", choices=("reliable", "sensor_data"), default="reliable",
                        help="publisher QoS; reliable (default) reaches best-effort subscribers too")
    parser.add_argument("--topic", default="image", help="topic to publish on (default image)")
    parser.add_argument("--wait-for-subscriber", action="store_true",
                        help="hold the first frame until a subscriber is connected")
    return parser


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    rclpy.init(args=argv)
    options = build_parser().parse_args(remove_ros_args(argv)[1:])
    if options.rate <= 0:
        print("player: error: --rate must be positive", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    source = frames(options.source, mono=options.mono, resize=options.resize, loop=options.loop,
                    bag_topic=options.bag_topic)
    player = None
    try:
        player = Player(source, rate=options.rate, frame_id=options.frame_id, bag_stamps=options.bag_stamps,
                        max_frames=options.max_frames, qos=options.qos, topic=options.topic,
                        wait_for_subscriber=options.wait_for_subscriber)
        while rclpy.ok() and not player.done:
            rclpy.spin_once(player, timeout_sec=0.1)
        # Give reliable subscribers a moment to receive the last frames before the publisher goes.
        deadline = time.monotonic() + LINGER_S
        while rclpy.ok() and time.monotonic() < deadline:
            rclpy.spin_once(player, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown()
    if player is not None and player.error:
        print(f"player: error: {player.error}", file=sys.stderr)
        return 1
    if player is not None:
        print(f"player: published {player.published} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
