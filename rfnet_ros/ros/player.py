"""player: publish frames from a video file, an image folder or a rosbag2 bag as sensor_msgs/Image.

    ros2 run rfnet_ros player data/video/vtest.avi --rate 10 --resize 320x240
    ros2 run rfnet_ros player path/to/images/ --mono --loop
    ros2 run rfnet_ros player path/to/bag/ --bag-topic /camera/image_raw --bag-stamps

Frames go out on `image` (remap it with --ros-args -r image:=...) in bgr8, or mono8 with --mono, stamped
with the current time, or for a bag with the recorded header stamps (--bag-stamps). The frames come from
rfnet_ros.frame_sources (bags are read with the `rosbags` library, from sensor_msgs/Image or
sensor_msgs/CompressedImage topics).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from rfnet_ros.frame_sources import SourceError, frames, parse_size
from rfnet_ros.ros.image_conversion import array_to_image_fields

# Seconds the player keeps running after its last frame (reliable delivery of the last messages).
LINGER_S = 0.5


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
