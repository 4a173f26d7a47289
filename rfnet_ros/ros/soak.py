"""Soak test of the feature node: many frames over the middleware, the node's memory sampled throughout.

    python -m rfnet_ros.ros.soak                         # 10,000 frames at 30 Hz, model 120x160
    python -m rfnet_ros.ros.soak --frames 50000 --rate 60 --model-size 240x320 --bad-every 25

Starts the node (``python -m rfnet_ros.ros.node``) as a child process in the namespace /soak, publishes
320x240 crops of a photo sliding across it (every ``--bad-every``-th frame malformed: a float image or
truncated data), samples the node's resident memory every ``--sample-every`` seconds, then stops the node
with SIGINT and prints the counters, latency percentiles, memory growth and shutdown time. Not part of the
test suite: it takes minutes (10,000 frames at 30 Hz: about 6). Exit status 0 when the node kept running
and exited cleanly.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from rfnet_ros.image_messages import array_to_image_fields
from rfnet_ros.msg import FrameTiming
from rfnet_ros.stamps import from_nanoseconds

NAMESPACE = "/soak"
DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "data" / "images" / "heldout" / "building.png"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def frames_from(photo: Path) -> list[np.ndarray]:
    """320x240 crops of ``photo`` (resized to 640x480) along a closed path: consecutive frames overlap."""
    image = cv2.imread(str(photo)) if photo.is_file() else None
    if image is None:  # no data folder: a smooth random texture
        rng = np.random.default_rng(0)
        image = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (7, 7), 2.0)
    image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
    angles = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    return [np.ascontiguousarray(image[int(120 + 100 * np.sin(a)):int(120 + 100 * np.sin(a)) + 240,
                                       int(160 + 140 * np.cos(a)):int(160 + 140 * np.cos(a)) + 320])
            for a in angles]


def bad_fields(index: int) -> dict:
    """A malformed frame: a float image, or bgr8 with truncated data."""
    if index % 2:
        return dict(height=240, width=320, encoding="32FC1", step=1280, data=bytes(1280 * 240))
    return dict(height=240, width=320, encoding="bgr8", step=960, data=bytes(960 * 200))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.ros.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000, help="frames to publish (default 10000)")
    parser.add_argument("--rate", type=float, default=30.0, help="publishing rate in Hz (default 30)")
    parser.add_argument("--model-size", default="120x160", help="detector input HEIGHTxWIDTH (default 120x160)")
    parser.add_argument("--top-k", type=int, default=128, help="keypoints per frame (default 128)")
    parser.add_argument("--bad-every", type=int, default=50, help="every Nth frame is malformed (0: none)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo the frames are cut from")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.model_size.lower().split("x"))

    command = [sys.executable, "-m", "rfnet_ros.ros.node", "--ros-args", "-r", f"__ns:={NAMESPACE}",
               "-p", f"model_height:={height}", "-p", f"model_width:={width}", "-p", f"top_k:={args.top_k}"]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(node.stdout), daemon=True).start()

    rclpy.init()
    probe = rclpy.create_node("rfnet_soak")
    arrivals: dict[tuple[int, int], float] = {}
    timings: list[FrameTiming] = []
    diagnostics: list[DiagnosticArray] = []

    def on_timing(msg: FrameTiming) -> None:
        arrivals[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
        timings.append(msg)

    probe.create_subscription(FrameTiming, f"{NAMESPACE}/timing", on_timing, 100)
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 100)
    publisher = probe.create_publisher(Image, f"{NAMESPACE}/image", qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    status = 1
    try:
        deadline = time.monotonic() + 300
        while publisher.get_subscription_count() == 0:
            if node.poll() is not None or time.monotonic() > deadline:
                print("".join(output), file=sys.stderr)
                print("error: the node did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        time.sleep(1.0)
        frames = [array_to_image_fields(f) for f in frames_from(args.photo)]
        sent: dict[tuple[int, int], float] = {}
        rss: list[tuple[float, float]] = [(0.0, rss_mb(node.pid))]
        start = next_sample = time.monotonic()
        stamp_ns = time.time_ns()
        for i in range(args.frames):
            time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            stamp_ns += int(1e9 / args.rate)
            bad = args.bad_every and i % args.bad_every == args.bad_every - 1
            msg = Image(**(bad_fields(i) if bad else frames[i % len(frames)]))
            msg.header.stamp = Time(**from_nanoseconds(stamp_ns)._asdict())
            msg.header.frame_id = "soak_camera"
            publisher.publish(msg)
            if not bad:
                sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
            if time.monotonic() >= next_sample:
                if node.poll() is not None:
                    break
                rss.append((time.monotonic() - start, rss_mb(node.pid)))
                next_sample += args.sample_every
                print(f"[soak] {i + 1}/{args.frames} frames, {len(timings)} outputs, node RSS {rss[-1][1]:.0f} MB",
                      flush=True)
        publish_s = time.monotonic() - start
        time.sleep(3.0)
        alive = node.poll() is None
        if alive:
            rss.append((time.monotonic() - start, rss_mb(node.pid)))
        last = next((s for msg in reversed(diagnostics) for s in msg.status if s.name.startswith("soak/")), None)
        counters = {kv.key: kv.value for kv in last.values} if last else {}
        stop = time.monotonic()
        if alive:
            os.killpg(node.pid, signal.SIGINT)
        try:
            exit_status = node.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            exit_status = node.wait()
        shutdown_s = time.monotonic() - stop
    finally:
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)

    latency_ms = [(arrivals[k] - sent[k]) * 1e3 for k in sent if k in arrivals]
    samples = np.array(rss)
    # Growth after the warm-up (the first tenth of the run: the model's buffers and allocator pools settle).
    settled = samples[samples[:, 0] >= 0.1 * samples[-1, 0]]
    slope = np.polyfit(settled[:, 0], settled[:, 1], 1)[0] * 3600 if len(settled) >= 3 else float("nan")
    bad_count = args.frames // args.bad_every if args.bad_every else 0
    print(f"[soak] node: model {height}x{width}, top_k {args.top_k}; {args.frames} frames of 320x240 bgr8 at "
          f"{args.rate:g} Hz ({bad_count} malformed) published in {publish_s:.0f} s")
    print(f"[soak] counters: received {counters.get('frames_received')}, processed {counters.get('frames_processed')}, "
          f"dropped {counters.get('frames_dropped')}, rejected {counters.get('frames_rejected')}, lost "
          f"{counters.get('frames_lost')} ({counters.get('frames_lost_from')}), inference errors "
          f"{counters.get('inference_errors')}")
    print(f"[soak] latency of {len(latency_ms)} outputs: p50 {percentile(latency_ms, 50):.0f} ms, p99 "
          f"{percentile(latency_ms, 99):.0f} ms, max {max(latency_ms, default=float('nan')):.0f} ms")
    print(f"[soak] node RSS: start {samples[0, 1]:.0f} MB, after warm-up {settled[0, 1]:.0f} MB, peak "
          f"{samples[:, 1].max():.0f} MB, end {samples[-1, 1]:.0f} MB; growth after warm-up "
          f"{samples[-1, 1] - settled[0, 1]:+.0f} MB ({slope:+.1f} MB/h fitted, {len(samples)} samples)")
    print(f"[soak] SIGINT: exit status {exit_status} after {shutdown_s:.2f} s")
    clean = exit_status == 0 and "Traceback" not in "".join(output)
    if not clean:
        print("".join(output)[-4000:], file=sys.stderr)
    status = 0 if alive and clean else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
