"""player: publish frames from a video file, an image folder or a rosbag2 bag as sensor_msgs/Image.

    ros2 run rfnet_ros player data/video/vtest.avi --rate 10 --resize 320x240
    ros2 run rfnet_ros player path/to/images/ --mono --loop
    ros2 run rfnet_ros player path/to/bag/ --bag-topic /camera/image_raw --bag-stamps
    ros2 run rfnet_ros player my_video.mp4 --camera-info calibration.yaml --lockstep timing

Frames go out on `image` (remap it with --ros-args -r image:=...) in bgr8, or mono8 with --mono, stamped
with the current time, or for a bag with the recorded header stamps (--bag-stamps). With --camera-info (a
camera_calibration_parsers YAML file) a sensor_msgs/CameraInfo with the frame's header goes out before each
frame on the camera_info beside the image topic (image -> camera_info, /cam/image_raw -> /cam/camera_info).
With --lockstep TOPIC the next frame waits until the feature node's timing message (rfnet_ros/FrameTiming on
TOPIC) for the previous one has arrived, so that the node processes every frame however slow it is
(--rate is then an upper bound). The frames come from
rfnet_ros.frame_sources (bags are read with the `rosbags` library, from sensor_msgs/Image or
sensor_msgs/CompressedImage topics).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image

from rfnet_ros.frame_sources import SourceError, frames
from rfnet_ros.image_messages import array_to_image_fields
from rfnet_ros.msg import FrameTiming
from rfnet_ros.sizes import parse_size
from rfnet_ros.stamps import from_nanoseconds
from rfnet_ros.stream_settings import StreamSettings
from rfnet_ros.tracking.camera import read_calibration, sibling_camera_info

# Seconds the player keeps running after its last frame (reliable delivery of the last messages).
LINGER_S = 0.5
# Seconds --lockstep waits for the timing of a frame before it goes on (the node may have rejected it).
LOCKSTEP_TIMEOUT_S = 60.0


def publisher_qos(name: str) -> QoSProfile:
    """reliable (reaches every subscriber, the node's best-effort default too) or sensor_data (best effort)."""
    reliability = ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=reliability)


@dataclass(frozen=True)
class PlaybackSettings:
    """What only live playback has: bag_stamps, keep a bag's header stamps (else: the current time); qos, the
    publishers' (``publisher_qos``); wait_for_subscriber, hold the first frame until the image topic has a
    subscriber; lockstep, a timing topic (rfnet_ros/FrameTiming) to wait on for each frame (module docstring)."""

    bag_stamps: bool = False
    qos: str = "reliable"
    wait_for_subscriber: bool = False
    lockstep: str | None = None


class Player(Node):
    """Publishes one frame per timer tick; ``done`` is set when the frames or ``max_frames`` run out.

    Raises ValueError when ``stream.camera_info`` cannot be read (before the node is created)."""

    def __init__(self, frame_source: Iterator[tuple[np.ndarray, int | None]], stream: StreamSettings,
                 playback: PlaybackSettings = PlaybackSettings(), node_name: str = "rfnet_player"):
        calibration = read_calibration(stream.camera_info) if stream.camera_info else None
        super().__init__(node_name)
        self._frames = frame_source
        self._frame_id = stream.frame_id
        self._bag_stamps = playback.bag_stamps
        self._max_frames = stream.max_frames
        self._wait_for_subscriber = playback.wait_for_subscriber
        self.published = 0
        self.done = False
        self.error: str | None = None
        qos = publisher_qos(playback.qos)
        self.publisher = self.create_publisher(Image, stream.topic, qos)
        self._camera_info = None
        if calibration is not None:
            self._camera_info = CameraInfo(width=calibration["width"], height=calibration["height"],
                                           distortion_model=calibration["distortion_model"], d=calibration["d"],
                                           k=calibration["k"], r=calibration["r"], p=calibration["p"])
            self._camera_info_pub = self.create_publisher(CameraInfo, sibling_camera_info(stream.topic), qos)
        self._waiting_for: tuple[int, int] | None = None  # --lockstep: stamp of the frame whose timing is due
        self._waiting_since = 0.0
        if playback.lockstep:
            self.create_subscription(FrameTiming, playback.lockstep, self._on_timing, 10)
        self._lockstep = bool(playback.lockstep)
        self._timer = self.create_timer(1.0 / stream.rate, self._tick)

    def _on_timing(self, msg: FrameTiming) -> None:
        if self._waiting_for == (msg.header.stamp.sec, msg.header.stamp.nanosec):
            self._waiting_for = None

    def _tick(self) -> None:
        if self.done:
            return
        if self._wait_for_subscriber and self.published == 0 and self.publisher.get_subscription_count() == 0:
            return
        if self._waiting_for is not None:
            if time.monotonic() - self._waiting_since < LOCKSTEP_TIMEOUT_S:
                return
            self.get_logger().warning(f"no timing for the frame stamped {self._waiting_for[0]}."
                                      f"{self._waiting_for[1]:09d} after {LOCKSTEP_TIMEOUT_S:.0f} s: going on")
            self._waiting_for = None
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
            msg.header.stamp = Time(**from_nanoseconds(stamp)._asdict())
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        if self._camera_info is not None:
            self._camera_info.header = msg.header
            self._camera_info_pub.publish(self._camera_info)
        if self._lockstep:
            self._waiting_for = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            self._waiting_since = time.monotonic()
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
    parser.add_argument("--camera-info", type=Path, metavar="YAML",
                        help="calibration (camera_calibration_parsers YAML) to publish as camera_info with each frame")
    parser.add_argument("--lockstep", metavar="TOPIC",
                        help="wait for the node's timing (rfnet_ros/FrameTiming on TOPIC) of each frame "
                             "before the next")
    return parser


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    rclpy.init(args=argv)
    options = build_parser().parse_args(remove_ros_args(argv)[1:])
    source = frames(options.source, mono=options.mono, resize=options.resize, loop=options.loop,
                    bag_topic=options.bag_topic)
    player = None
    try:
        try:  # a rate that is not positive, an unreadable calibration: refused before the node starts
            stream = StreamSettings(options.topic, options.rate, options.frame_id, options.max_frames,
                                    options.camera_info)
            player = Player(source, stream, PlaybackSettings(options.bag_stamps, options.qos,
                                                             options.wait_for_subscriber, options.lockstep))
        except ValueError as exc:
            print(f"player: error: {exc}", file=sys.stderr)
            return 2
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
