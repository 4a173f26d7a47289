"""Demo: the installed feature node on a video, with a summary line per second and one at the end.

    python -m rfnet_ros.ros.demo                      # data/video/vtest.avi for 30 s (bash scripts/demo.sh)
    python -m rfnet_ros.ros.demo --frames 20 --param top_k:=256 --params-file config/full.yaml

Starts the node executable (feature_node of the colcon install tree) as a child process in the namespace
/rfnet_demo, plays the video into it with the player (looping) and listens to keypoints, matches and
timing. Exits with 1 when no keypoints or no matches arrived, or the node did not start.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from rfnet_ros.frame_sources import frames
from rfnet_ros.msg import FrameTiming, Keypoints, Matches
from rfnet_ros.ros.monitor import STAGE_NAMES
from rfnet_ros.ros.player import Player
from rfnet_ros.sizes import parse_size
from rfnet_ros.stream_settings import StreamSettings

NAMESPACE = "/rfnet_demo"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO = ROOT / "data" / "video" / "vtest.avi"
# Seconds to wait for the node to load its model and subscribe.
STARTUP_TIMEOUT = 180.0


def node_executable() -> Path:
    """feature_node of the rfnet_ros install found on the ament index (source scripts/env.sh first)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        prefix = Path(get_package_prefix("rfnet_ros"))
    except PackageNotFoundError:
        raise SystemExit("demo: rfnet_ros is not installed: run bash scripts/setup_env.sh, then "
                         "source scripts/env.sh") from None
    return prefix / "lib" / "rfnet_ros" / "feature_node"


class Listener(Node):
    """Collects the node's outputs: per-second window and run totals."""

    def __init__(self):
        super().__init__("rfnet_demo_listener", namespace=NAMESPACE)
        self.window: list[FrameTiming] = []
        self.timings: list[FrameTiming] = []
        self.keypoint_messages = 0
        self.match_messages = 0
        self.match_counts: list[int] = []
        self.create_subscription(Keypoints, "keypoints", self._on_keypoints, 10)
        self.create_subscription(Matches, "matches", self._on_matches, 10)
        self.create_subscription(FrameTiming, "timing", self._on_timing, 10)

    def _on_keypoints(self, msg: Keypoints) -> None:
        if len(msg.x):
            self.keypoint_messages += 1

    def _on_matches(self, msg: Matches) -> None:
        self.match_messages += 1
        self.match_counts.append(len(msg.current_index))

    def _on_timing(self, msg: FrameTiming) -> None:
        self.window.append(msg)
        self.timings.append(msg)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def stage_summary(timings: list[FrameTiming]) -> str:
    return " ".join(f"{stage} {_mean(getattr(t, f'{stage}_ms') for t in timings):.1f}" for stage in STAGE_NAMES)


def node_overhead(timings: list[FrameTiming]) -> float:
    """Share of the frame time the node spends around the pipeline: converting the image message and
    building and publishing the outputs, (convert + publish) / total, over all frames."""
    total = sum(t.total_ms for t in timings)
    return sum(t.convert_ms + t.publish_ms for t in timings) / total if total > 0 else 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet_ros.ros.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_VIDEO,
                        help="video, image folder or bag to play (default data/video/vtest.avi)")
    parser.add_argument("--seconds", type=float, default=30.0, help="run time after the node is up (default 30)")
    parser.add_argument("--frames", type=int, help="stop after this many processed frames instead")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second played (default 10)")
    # 320x240 (the model's input size): frames up to 512 KB stay in Fast DDS shared memory; larger ones go
    # over UDP in fragments, which best-effort (sensor_data) subscriptions lose under load.
    parser.add_argument("--resize", type=parse_size, default=(320, 240), metavar="WxH",
                        help="frame size played (default 320x240)")
    parser.add_argument("--params-file", type=Path, help="node parameters file (default: the node's defaults)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="node parameter, repeatable, e.g. --param top_k:=256")
    return parser


def start_node(options: argparse.Namespace) -> subprocess.Popen:
    command = [str(node_executable()), "--ros-args", "-r", f"__ns:={NAMESPACE}"]
    if options.params_file:
        command += ["--params-file", str(options.params_file.resolve())]
    for param in options.param:
        command += ["-p", param]
    print(f"[demo] starting {' '.join(command)}", flush=True)
    # Its own process group, so that Ctrl-C in the terminal reaches it only through stop_node.
    return subprocess.Popen(command, start_new_session=True)


def stop_node(process: subprocess.Popen) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def wait_for_node(executor, listener: Listener, process: subprocess.Popen) -> bool:
    """Spin until the node subscribes to the image topic; False when it exits or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"[demo] error: the node exited with status {process.returncode} before it was up",
                  file=sys.stderr)
            return False
        if listener.count_subscribers(f"{NAMESPACE}/image") > 0:
            return True
        executor.spin_once(timeout_sec=0.2)
    print(f"[demo] error: the node did not subscribe to {NAMESPACE}/image within {STARTUP_TIMEOUT:.0f} s",
          file=sys.stderr)
    return False


def run(options: argparse.Namespace) -> int:
    if not options.source.exists():
        print(f"[demo] error: {options.source} not found (bash scripts/fetch_data.sh fetches the demo video)",
              file=sys.stderr)
        return 1
    process = start_node(options)
    rclpy.init()
    executor = SingleThreadedExecutor()
    listener = Listener()
    executor.add_node(listener)
    player = None
    ok = False
    try:
        if not wait_for_node(executor, listener, process):
            return 1
        player = Player(frames(options.source, resize=options.resize, loop=True),
                        StreamSettings(f"{NAMESPACE}/image", options.rate, frame_id="camera"),
                        node_name="rfnet_demo_player")
        executor.add_node(player)
        print(f"[demo] node up; playing {options.source.name} at {options.rate:g} fps, "
              f"{options.resize[0]}x{options.resize[1]}", flush=True)
        start = last = time.monotonic()
        sent_before = 0
        while process.poll() is None and not player.done:
            executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if options.frames is not None and len(listener.timings) >= options.frames:
                break
            if options.frames is None and now - start >= options.seconds:
                break
            if now - last >= 1.0:
                window, listener.window = listener.window, []
                matches = [t.num_matches for t in window if t.num_matches]
                print(f"[demo] {now - start:5.1f} s | in {(player.published - sent_before) / (now - last):4.1f} fps"
                      f" | out {len(window) / (now - last):4.1f} fps"
                      f" | keypoints {_mean(t.num_keypoints for t in window):5.0f}"
                      f" | matches {_mean(matches):5.0f} | ms {stage_summary(window)}", flush=True)
                sent_before, last = player.published, now
        elapsed = time.monotonic() - start
        # Let the outputs of frames still in flight arrive.
        for _ in range(20):
            executor.spin_once(timeout_sec=0.05)
        timings = listener.timings
        last_timing = timings[-1] if timings else None
        ok = listener.keypoint_messages > 0 and listener.match_messages > 0
        print(f"[demo] {'done' if ok else 'FAILED'}: {elapsed:.1f} s, {player.published} frames sent, "
              f"{len(timings)} processed ({len(timings) / max(elapsed, 1e-9):.2f} fps), "
              f"{last_timing.frames_dropped if last_timing else 0} dropped, "
              f"{last_timing.frames_rejected if last_timing else 0} rejected"
              f" | keypoints {_mean(t.num_keypoints for t in timings):.0f}"
              f" | matches {_mean(listener.match_counts):.0f} ({listener.match_messages} match messages)"
              f" | mean ms {stage_summary(timings)}"
              f" | node overhead {node_overhead(timings):.1%}"
              f" | {last_timing.device if last_timing else '?'} {last_timing.engine if last_timing else '?'} "
              f"{last_timing.precision if last_timing else '?'}"
              f" | {options.resize[0]}x{options.resize[1]} input", flush=True)
        if not ok:
            print("[demo] error: no keypoints or no matches arrived", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if player is not None:
            player.destroy_node()
        listener.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
        stop_node(process)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
