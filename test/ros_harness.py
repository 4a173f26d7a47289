"""Helpers of the ROS integration tests: installed executables as child processes, and a probe node.

The tests run the real node executable of the colcon install tree (install/rfnet_ros/lib/rfnet_ros) over
the real middleware. Each test session gets DDS domains of its own, derived from its process id, so that
sessions running side by side (or a robot on the network) do not see each other; discovery stays on
localhost. Every wait is bounded and says what it waited for when it times out.
"""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / 'install' / 'rfnet_ros'
LIB = INSTALL / 'lib' / 'rfnet_ros'
SHARE = INSTALL / 'share' / 'rfnet_ros'
SETUP_HINT = 'run `bash scripts/setup_env.sh`, then `source scripts/env.sh`, then pytest (or bash scripts/test.sh)'
HELDOUT = ROOT / 'data' / 'images' / 'heldout'

# Domains 1..99 for the node tests, 200..229 for the demo (other test modules use 100..199).
NODE_DOMAIN = 1 + os.getpid() % 99
DEMO_DOMAIN = 200 + os.getpid() % 30

# Generous bounds: the machine may be busy, and the model runs on the CPU.
STARTUP_TIMEOUT = 240.0
FRAME_TIMEOUT = 90.0


def require_install() -> None:
    """Fail (not skip) when the install tree or the ROS Python packages are missing."""
    if not (LIB / 'feature_node').is_file():
        pytest.fail(f'{LIB / "feature_node"} missing: {SETUP_HINT}', pytrace=False)
    try:
        importlib.import_module('rclpy')
        importlib.import_module('rfnet_ros.msg')
    except ImportError as exc:
        pytest.fail(f'ROS 2 Python packages do not import ({exc}): {SETUP_HINT}', pytrace=False)


def ros_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED='1')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


class ChildProcess:
    """A command running in its own process group, its stdout and stderr collected line by line."""

    def __init__(self, command: list[str], domain_id: int, cwd: Path | None = None):
        self.command = command
        self.process = subprocess.Popen(command, env=ros_env(domain_id), cwd=cwd, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return ''.join(self._lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Exit status; kills the process and fails the test when it runs past ``timeout``."""
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f'{self.command[0]} still running after {timeout:.0f} s; output:\n{self.output}')
        self._reader.join(5)
        return status

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT (a clean ROS shutdown), then SIGKILL after ``timeout``."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


def executable(name: str, *args: str, domain_id: int = NODE_DOMAIN) -> ChildProcess:
    """An executable of the install tree (feature_node, player, ...) with arguments."""
    return ChildProcess([str(LIB / name), *args], domain_id)


class StampClock:
    """Header stamps 100 ms apart; ``rewind`` makes the next stamp earlier than every earlier one."""

    def __init__(self, start_sec: int = 1_000_000):
        self._ns = start_sec * 1_000_000_000

    def next(self):
        from builtin_interfaces.msg import Time

        from rfnet_ros.stamps import from_nanoseconds

        self._ns += 100_000_000
        return Time(**from_nanoseconds(self._ns)._asdict())

    def rewind(self, seconds: int = 1000) -> None:
        self._ns -= seconds * 1_000_000_000


def same_stamp(a, b) -> bool:
    return a.sec == b.sec and a.nanosec == b.nanosec


class Probe:
    """An rclpy node in a context of its own that publishes images and records what arrives.

    A background thread spins it; received messages are kept per topic, in arrival order.
    """

    def __init__(self, domain_id: int = NODE_DOMAIN, name: str = 'rfnet_test_probe'):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self._lock = threading.Lock()
        self._received: dict[str, list[Any]] = {}
        self._publishers: dict[str, Any] = {}
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def subscribe(self, msg_type, topic: str, depth: int = 100) -> None:
        def record(msg, topic=topic):
            with self._lock:
                self._received.setdefault(topic, []).append((time.monotonic(), msg))
        self.node.create_subscription(msg_type, topic, record, depth)

    def received(self, topic: str, since: float = 0.0) -> list[Any]:
        """Messages on ``topic`` in arrival order, those that arrived at time.monotonic() >= ``since``."""
        with self._lock:
            return [msg for arrival, msg in self._received.get(topic, []) if arrival >= since]

    def received_with_times(self, topic: str) -> list[tuple[float, Any]]:
        """(time.monotonic() of arrival, message) on ``topic``, in arrival order."""
        with self._lock:
            return list(self._received.get(topic, []))

    def publisher(self, msg_type, topic: str, depth: int = 10):
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(msg_type, topic, depth)
        return self._publishers[topic]

    def publish_image(self, image: np.ndarray, stamp, frame_id: str = 'camera', color_order: str = 'bgr',
                      topic: str = 'image', **fields):
        """Publish ``image`` as sensor_msgs/Image; ``fields`` override message fields (for bad frames)."""
        from sensor_msgs.msg import Image

        from rfnet_ros.image_messages import array_to_image_fields

        values = array_to_image_fields(image, color_order) if image is not None else {}
        values.update(fields)
        msg = Image(**values)
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        self.publisher(Image, topic).publish(msg)
        return msg.header

    def publish_compressed(self, data: bytes, stamp, frame_id: str = 'camera', fmt: str = 'jpeg',
                           topic: str = 'image/compressed'):
        """Publish ``data`` (e.g. a JPEG file's bytes) as sensor_msgs/CompressedImage; returns the header."""
        import array

        from sensor_msgs.msg import CompressedImage

        msg = CompressedImage(format=fmt, data=array.array('B', data))
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        self.publisher(CompressedImage, topic).publish(msg)
        return msg.header

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = FRAME_TIMEOUT,
                 process: ChildProcess | None = None) -> Any:
        """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            if process is not None and not process.running():
                pytest.fail(f'the node exited with status {process.process.returncode} while waiting for '
                            f'{what}; output:\n{process.output}')
            time.sleep(0.05)
        detail = f'; node output:\n{process.output}' if process is not None else ''
        pytest.fail(f'timed out after {timeout:.0f} s waiting for {what}{detail}')

    def wait_for_stamp(self, topic: str, stamp, process: ChildProcess | None = None,
                       timeout: float = FRAME_TIMEOUT):
        """The first message on ``topic`` whose header has ``stamp``."""
        def find():
            return next((m for m in self.received(topic) if same_stamp(m.header.stamp, stamp)), None)
        return self.wait_for(find, f'{topic} with stamp {stamp.sec}.{stamp.nanosec:09d}', timeout, process)

    def call(self, srv_type, name: str, request, timeout: float = 30.0):
        """Call a service and return its response (bounded)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                pytest.fail(f'service {name} not available after {timeout:.0f} s')
            future = client.call_async(request)
            self.wait_for(future.done, f'the response of {name}', timeout)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        import rclpy
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(10)


def run_feature_node(node_args: tuple[str, ...], image_type, image_topic: str, namespace: str = '',
                     outputs: tuple = (), probe_name: str = 'rfnet_test_probe'):
    """Start the feature node (child process) with ``node_args`` in ``namespace``, and a probe subscribed to
    its keypoints, matches, timing, ``outputs`` ((message type, topic) pairs, topics relative to the
    namespace) and /diagnostics; yields (process, probe, clock) once the node subscribes to ``image_topic``
    and publishes all of them. Then stops it: SIGINT must end it with status 0 and no traceback."""
    require_install()
    from diagnostic_msgs.msg import DiagnosticArray

    from rfnet_ros.msg import FrameTiming, Keypoints, Matches

    prefix = f'{namespace.strip("/")}/' if namespace else ''
    remap = ('-r', f'__ns:={namespace}') if namespace else ()
    process = executable('feature_node', *node_args, *remap)
    probe = Probe(name=probe_name)
    try:
        subscribed = ((Keypoints, 'keypoints'), (Matches, 'matches'), (FrameTiming, 'timing'), *outputs)
        for msg_type, topic in subscribed:
            probe.subscribe(msg_type, prefix + topic)
        probe.subscribe(DiagnosticArray, '/diagnostics')
        image_pub = probe.publisher(image_type, prefix + image_topic)
        probe.wait_for(lambda: image_pub.get_subscription_count() > 0,
                       f'the node to subscribe to /{prefix}{image_topic}', STARTUP_TIMEOUT, process)
        published = [f'/{prefix}{topic}' for _, topic in subscribed]
        probe.wait_for(lambda: all(probe.node.count_publishers(t) > 0 for t in published),
                       'the node\'s publishers', 30, process)
        time.sleep(1.0)  # let the probe's subscriptions match the node's publishers
        yield process, probe, StampClock()
    finally:
        stop_cleanly(process, probe)


def stop_cleanly(process: ChildProcess, probe: Probe) -> None:
    """Close ``probe`` and stop the node ``process``: SIGINT must end it with status 0 and no traceback."""
    probe.close()
    status = process.stop()
    print(process.output)
    assert status == 0, f'the node exited with status {status} on SIGINT'
    assert 'Traceback' not in process.output


def photo(name: str = 'building.png') -> np.ndarray:
    """A held-out photograph (BGR uint8) of data/images/heldout (bash scripts/fetch_data.sh)."""
    import cv2
    path = HELDOUT / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        pytest.fail(f'{path} missing: run bash scripts/fetch_data.sh', pytrace=False)
    return image


def crop(image: np.ndarray, x: int, y: int, width: int = 320, height: int = 240) -> np.ndarray:
    """The (height, width) window whose top-left corner is (x, y), as a contiguous copy."""
    assert 0 <= x and x + width <= image.shape[1] and 0 <= y and y + height <= image.shape[0]
    return np.ascontiguousarray(image[y:y + height, x:x + width])
