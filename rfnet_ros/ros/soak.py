"""Soak test of the feature node: many frames over the middleware, the node's memory sampled throughout.

    python -m rfnet_ros.ros.soak                         # 10,000 frames at 30 Hz, model 120x160
    python -m rfnet_ros.ros.soak --frames 50000 --rate 60 --model-size 240x320 --bad-every 25
    # the node as shipped under a 640x480 camera at 30 Hz, against the same frames in a plain loop:
    python -m rfnet_ros.ros.soak --params-file config/lite.yaml --size 640x480 --encoding mono8 \
        --frames 900 --bad-every 0 --loop 100

Starts the node (``python -m rfnet_ros.ros.node``) as a child process in the namespace /soak, publishes
320x240 crops of a photo sliding across it (every ``--bad-every``-th frame malformed: a float image or
truncated data), samples the node's resident memory every ``--sample-every`` seconds, then stops the node
with SIGINT and prints the counters, processed frames per second, latency percentiles (publication to the
timing message), the node's per-stage times, memory growth and shutdown time. With ``--params-file`` the
node runs that file's settings (``--model-size`` and ``--top-k`` then override it only when given); ``--size``
and ``--encoding`` choose the frames (crops of the photo resized to twice their size). ``--loop N`` then
runs N of the same frames through the front end (FeatureTracker) in this process, one after another, for
the stage times without the node around them. Not part of the test suite: it takes minutes (10,000 frames at
30 Hz: about 6). Exit status 0 when the node kept running and exited cleanly.
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
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from rfnet_ros.image_messages import array_to_image_fields
from rfnet_ros.msg import FrameTiming
from rfnet_ros.stamps import from_nanoseconds

NAMESPACE = "/soak"
DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "data" / "images" / "heldout" / "building.png"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def frames_from(photo: Path, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """width x height crops of ``photo`` (resized to twice that) along a closed path: consecutive frames
    overlap."""
    image = cv2.imread(str(photo)) if photo.is_file() else None
    if image is None:  # no data folder: a smooth random texture
        rng = np.random.default_rng(0)
        image = cv2.GaussianBlur(rng.integers(0, 256, (2 * height, 2 * width, 3), dtype=np.uint8), (7, 7), 2.0)
    image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_AREA)
    angles = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    rows = [int(height / 2 + height * 5 / 12 * np.sin(a)) for a in angles]
    columns = [int(width / 2 + width * 7 / 16 * np.cos(a)) for a in angles]
    return [np.ascontiguousarray(image[r:r + height, c:c + width]) for r, c in zip(rows, columns)]


def stage_summary(timings: list[FrameTiming]) -> str:
    """p50 / p99 / max ms of the node's stages over its timing messages."""
    parts = []
    for stage in ("convert", "detect", "describe", "match", "publish", "total"):
        values = [getattr(msg, f"{stage}_ms") for msg in timings]
        parts.append(f"{stage} {percentile(values, 50):.0f}/{percentile(values, 99):.0f}/"
                     f"{max(values, default=float('nan')):.0f}")
    return ", ".join(parts)


def plain_loop(params_file: Path | None, overrides: dict, frames: list[np.ndarray], count: int) -> str:
    """Stage times (p50 / p99 / max ms) and frames per second of ``count`` frames through the front end, one
    after another, with the node's settings, in a fresh process (this one's rclpy threads would compete for
    the interpreter lock)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_plain_loop, (params_file, overrides, frames, count))


def _plain_loop(params_file: Path | None, overrides: dict, frames: list[np.ndarray], count: int) -> str:
    import dataclasses

    from rfnet_ros.config import FeatureConfig, NodeConfig, load_config
    from rfnet_ros.threads import plan_cpu_threads
    from rfnet_ros.tracking.tracker import FeatureTracker

    plan_cpu_threads()  # as the node
    config = load_config(params_file, ignore=NodeConfig.names()) if params_file else FeatureConfig()
    tracker = FeatureTracker(dataclasses.replace(config, **overrides))
    color_order = "bgr"
    for frame in frames[:3]:
        tracker.process(frame, color_order)
    stages: dict[str, list[float]] = {}
    start = time.perf_counter()
    for i in range(count):
        begin = time.perf_counter()
        result = tracker.process(frames[i % len(frames)], color_order)
        for stage, ms in {**result.timings, "total": (time.perf_counter() - begin) * 1e3}.items():
            stages.setdefault(stage, []).append(ms)
    fps = count / (time.perf_counter() - start)
    return f"{fps:.1f} frames/s; " + ", ".join(
        f"{stage} {percentile(v, 50):.0f}/{percentile(v, 99):.0f}/{max(v):.0f}" for stage, v in stages.items()
        if stage in ("convert", "detect", "describe", "match", "total"))


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
    parser.add_argument("--params-file", type=Path, default=None,
                        help="the node's parameters file (default: none; model 120x160, top_k 128)")
    parser.add_argument("--model-size", default=None, help="detector input HEIGHTxWIDTH (default 120x160 "
                        "without --params-file, else the file's)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="keypoints per frame (default 128 without --params-file, else the file's)")
    parser.add_argument("--size", default="320x240", help="published frames' WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--encoding", choices=("bgr8", "mono8"), default="bgr8", help="published frames' encoding")
    parser.add_argument("--loop", type=int, default=0,
                        help="then time this many frames through the front end in a plain loop (default 0)")
    parser.add_argument("--bad-every", type=int, default=50, help="every Nth frame is malformed (0: none)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo the frames are cut from")
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="QoS of the published frames: sensor_data (best effort, as camera drivers publish; "
                        "the default) or reliable (keep last 1, and the node's image_qos reliable to match): "
                        "best effort loses frames larger than the middleware's shared-memory segments (640x480 "
                        "bgr8) in fragments")
    args = parser.parse_args(argv)
    frame_width, frame_height = (int(v) for v in args.size.lower().split("x"))
    if args.params_file is None:
        args.model_size, args.top_k = args.model_size or "120x160", args.top_k or 128
    overrides = {}
    if args.model_size:
        overrides["model_height"], overrides["model_width"] = (int(v) for v in args.model_size.lower().split("x"))
    if args.top_k:
        overrides["top_k"] = args.top_k
    node_overrides = {**overrides, **({"image_qos": "reliable"} if args.qos == "reliable" else {})}

    command = [sys.executable, "-m", "rfnet_ros.ros.node", "--ros-args", "-r", f"__ns:={NAMESPACE}"]
    if args.params_file:
        command += ["--params-file", str(args.params_file)]
    for name, value in node_overrides.items():
        command += ["-p", f"{name}:={value}"]
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
    frame_qos = qos_profile_sensor_data if args.qos == "sensor_data" else QoSProfile(
        depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
    publisher = probe.create_publisher(Image, f"{NAMESPACE}/image", frame_qos)
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
        arrays = frames_from(args.photo, frame_width, frame_height)
        if args.encoding == "mono8":
            arrays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in arrays]
        frames = [array_to_image_fields(f) for f in arrays]
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
    settings = ", ".join(f"{k} {v}" for k, v in node_overrides.items()) or "the file's model size and top_k"
    settings += f"; frames published with QoS {args.qos}"
    print(f"[soak] node: {args.params_file or 'defaults'}, {settings}; {args.frames} frames of {args.size} "
          f"{args.encoding} at {args.rate:g} Hz ({bad_count} malformed) published in {publish_s:.0f} s")
    print(f"[soak] counters: received {counters.get('frames_received')}, processed {counters.get('frames_processed')}, "
          f"dropped {counters.get('frames_dropped')}, rejected {counters.get('frames_rejected')}, lost "
          f"{counters.get('frames_lost')} ({counters.get('frames_lost_from')}), inference errors "
          f"{counters.get('inference_errors')}")
    print(f"[soak] processed {len(timings) / publish_s:.1f} frames/s; node stages p50/p99/max ms: "
          f"{stage_summary(timings)}")
    print(f"[soak] latency of {len(latency_ms)} outputs: p50 {percentile(latency_ms, 50):.0f} ms, p99 "
          f"{percentile(latency_ms, 99):.0f} ms, max {max(latency_ms, default=float('nan')):.0f} ms")
    print(f"[soak] node RSS: start {samples[0, 1]:.0f} MB, after warm-up {settled[0, 1]:.0f} MB, peak "
          f"{samples[:, 1].max():.0f} MB, end {samples[-1, 1]:.0f} MB; growth after warm-up "
          f"{samples[-1, 1] - settled[0, 1]:+.0f} MB ({slope:+.1f} MB/h fitted, {len(samples)} samples)")
    print(f"[soak] SIGINT: exit status {exit_status} after {shutdown_s:.2f} s")
    if args.loop:
        print(f"[soak] plain loop of {args.loop} frames, p50/p99/max ms: "
              f"{plain_loop(args.params_file, overrides, arrays, args.loop)}")
    clean = exit_status == 0 and "Traceback" not in "".join(output)
    if not clean:
        print("".join(output)[-4000:], file=sys.stderr)
    status = 0 if alive and clean else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
