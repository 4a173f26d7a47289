"""record: record the feature node's inputs and outputs into a rosbag2 bag (MCAP storage).

    ros2 run rfnet_ros record my_run                          # image, camera_info and the node's outputs
    ros2 run rfnet_ros record my_run --ros-args -r __ns:=/front   # the node in /front
    ros2 run rfnet_ros record my_run --topics keypoints matches /diagnostics --duration 60

Topic names are resolved in the recorder's namespace, as the node's are: by default image, camera_info,
keypoints, matches, timing and feature. debug_image is not recorded unless named, since subscribing to it
makes the node draw it. Each topic is subscribed once a publisher of it appears, with its publishers'
reliability (best effort if any of them is, so that sensor-data cameras are recorded too); messages are
written as they arrived over the wire (serialized CDR, stamped with the receive time), with the `rosbags`
library. Stops on Ctrl-C (or after --duration seconds) and closes the bag; `ros2 bag play`, the player and
Foxglove read it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args

from rfnet_ros.bags import BagError, open_writer, register, typestore

DEFAULT_TOPICS = ("image", "camera_info", "keypoints", "matches", "timing", "feature")
# Seconds between looks at the ROS graph for the topics still waited for.
DISCOVERY_PERIOD = 0.2
QUEUE_DEPTH = 100


def message_class(msgtype: str):
    """"pkg/msg/Type" -> the rclpy message class."""
    package, _, name = msgtype.partition("/msg/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class Recorder(Node):
    """Subscribes to ``topics`` as they appear and writes every message into the bag at ``out``."""

    def __init__(self, out: Path, topics: tuple[str, ...]):
        super().__init__("rfnet_recorder")
        self._store = typestore()
        self._writer = open_writer(out)
        self._wanted = {self.resolve_topic_name(topic) for topic in topics}
        self._connections = {}
        self._subscriptions = []
        self.counts: dict[str, int] = {}
        self._timer = self.create_timer(DISCOVERY_PERIOD, self._discover)
        self._discover()

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic not in self._wanted or topic in self._connections:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue  # only subscribers so far: wait for a publisher (and its QoS)
            msgtype = types[0]
            try:
                register(self._store, msgtype)
                cls = message_class(msgtype)
            except (BagError, ImportError, AttributeError) as exc:
                self.get_logger().error(f"cannot record {topic} ({msgtype}): {exc}")
                self._wanted.discard(topic)
                continue
            best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers)
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=QUEUE_DEPTH,
                             reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE)
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[topic] = connection
            self.counts[topic] = 0
            self._subscriptions.append(self.create_subscription(
                cls, topic, lambda data, topic=topic: self._write(topic, data), qos, raw=True))
            self.get_logger().info(f"recording {topic} ({msgtype}, {'best effort' if best_effort else 'reliable'})")

    def _write(self, topic: str, data: bytes) -> None:
        self._writer.write(self._connections[topic], self.get_clock().now().nanoseconds, data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Close the bag (writes its index and metadata.yaml)."""
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self._subscriptions.clear()
        self._writer.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    parser.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS),
                        help=f"topics to record (default: {' '.join(DEFAULT_TOPICS)})")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    return parser


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    options = build_parser().parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv)
    recorder = None
    try:
        recorder = Recorder(options.out, tuple(options.topics))
        deadline = None if options.duration is None else time.monotonic() + options.duration
        while rclpy.ok() and (deadline is None or time.monotonic() < deadline):
            rclpy.spin_once(recorder, timeout_sec=0.1)
    except BagError as exc:
        print(f"record: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if recorder is not None:
            recorder.close()
            counts = ", ".join(f"{topic} {count}" for topic, count in sorted(recorder.counts.items())) or "nothing"
            print(f"record: wrote {options.out}: {counts}", file=sys.stderr)
            recorder.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
