"""rfnet_feature_node: learned keypoints, descriptors and frame-to-frame matches for a camera stream.

Subscribes:  image (sensor_msgs/Image) with image_transport raw, the default, or image/compressed
             (sensor_msgs/CompressedImage: JPEG, PNG) with image_transport compressed; QoS from image_qos /
             qos_depth. Remap the one in use: image:=/camera/image_raw or
             image/compressed:=/camera/image_raw/compressed.
             camera_info (sensor_msgs/CameraInfo, same QoS), optional: the newest one is used for every
             image (rfnet_ros.tracking.camera.LatestCalibration). Remap it beside the image:
             camera_info:=/camera/camera_info. imu (sensor_msgs/Imu), with match_prediction: imu.
Publishes:   keypoints (rfnet_ros/Keypoints, with track ids), matches (rfnet_ros/Matches, from the second
             frame on, those that passed the geometric check), timing (rfnet_ros/FrameTiming),
             /diagnostics (diagnostic_msgs/DiagnosticArray), debug_image (sensor_msgs/Image bgr8, drawn only
             while someone subscribes), feature (sensor_msgs/PointCloud for VINS, with
             publish_vins_features and a camera_info)
Parameters:  every field of rfnet_ros.config.FeatureConfig and NodeConfig (see config/lite.yaml)

The node is wiring around one front end (rfnet_ros.tracking.tracker.FeatureTracker), which owns the
pipeline, the previous frame and the stage timings. Threading: the image callback only converts the message
(a zero-copy view of a raw image's data, or the decoded compressed image) and offers it to the newest-frame
slot (rfnet_ros.ros.frame_slot), whose worker thread alone runs the front end and publishes the outputs; a
frame replaced in the slot before the worker took it is counted as dropped, so latency stays bounded. The
executor is multi-threaded with the image callbacks and the diagnostics timer in separate mutually exclusive
callback groups (the parameter services stay in the default group), so receiving frames, reporting
diagnostics and answering parameter requests all go on while a frame is inside the model (PyTorch releases
the GIL while it computes).
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud
from std_msgs.msg import Header

from rfnet_ros.engines import EngineUnavailable
from rfnet_ros.image_messages import ImageRejected, compressed_to_array, image_to_array
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.msg import FrameTiming, Keypoints, Matches
from rfnet_ros.pipeline import STAGES
from rfnet_ros.ros import messages, parameters
from rfnet_ros.ros.camera_input import CameraInfoInput
from rfnet_ros.ros.diagnostics import diagnostic_array, front_end_values, with_warning
from rfnet_ros.ros.frame_cost import FrameCost
from rfnet_ros.ros.front_end_worker import WARN_THROTTLE, FrontEndWorker
from rfnet_ros.ros.monitor import STAGE_NAMES, FrameMonitor, InputLossEstimator, StampMonitor
from rfnet_ros.ros.qos import image_qos
from rfnet_ros.ros.startup import StartupError, run_node
from rfnet_ros.stamps import to_nanoseconds
from rfnet_ros.threads import plan_cpu_threads
from rfnet_ros.tracking.tracker import FeatureTracker

NODE_NAME = "rfnet_feature_node"
SWITCH_INTERVAL_S = 2e-4  # the interpreter lock's switch interval in the node's process (main)
OUTPUT_DEPTH = 10
# Subscription callbacks can take the middleware's message info (publication sequence numbers) from
# Jazzy's rclpy on; on Humble the node estimates input loss from header stamps only.
MESSAGE_INFO = hasattr(Subscription, "CallbackType")
# image_transport -> (message type, topic, converter to (array, color order) that raises ImageRejected).
INPUTS = {
    "raw": (Image, "image", image_to_array),
    "compressed": (CompressedImage, "image/compressed", compressed_to_array),
}
assert set(STAGES) <= set(STAGE_NAMES)


@dataclass
class ReceivedImage:
    """A converted image waiting in the newest-frame slot."""

    header: Header
    received: float  # time.perf_counter() when the callback got it
    image: np.ndarray  # a view of a raw message's data (image_to_array) or a decoded compressed image
    color_order: str
    convert_ms: float  # time spent converting in the callback


class FeatureNode(FrontEndWorker, Node):
    """Wiring around :class:`~rfnet_ros.tracking.tracker.FeatureTracker`; see the module docstring for threads."""

    def __init__(self, command_line: list[str] | None = None, **kwargs):
        """``command_line``: the process arguments rclpy was initialised with (default sys.argv), whose ``-p``
        values are type-checked here (see parameters.command_line_values)."""
        super().__init__(NODE_NAME, **kwargs)
        try:
            self.settings = parameters.declare_settings(self, sys.argv if command_line is None else command_line)
            self.front_end = FeatureTracker(self.settings[0])
        except (parameters.ParameterError, WeightsError, EngineUnavailable) as exc:
            self.destroy_node()
            raise StartupError(str(exc)) from None
        except ValueError as exc:  # device or precision the machine cannot run (the text names the key)
            self.destroy_node()
            raise StartupError(f"invalid parameter {exc}") from None
        unknown = parameters.unknown_overrides(self)
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(unknown)}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        feature, node = self.settings

        self.monitor = FrameMonitor(time.monotonic())
        self.stamps = StampMonitor(node.expected_rate)
        self.loss = InputLossEstimator()  # executor thread, input group only
        self.cost = FrameCost()  # worker observes, parameter callback predicts (under _cost_lock)
        self._cost_lock = threading.Lock()
        self._debug_images = 0  # debug images drawn (only while debug_image has a subscriber)

        input_group = MutuallyExclusiveCallbackGroup()
        diagnostics_group = MutuallyExclusiveCallbackGroup()
        self._keypoints_pub = self.create_publisher(Keypoints, "keypoints", OUTPUT_DEPTH)
        self._matches_pub = self.create_publisher(Matches, "matches", OUTPUT_DEPTH)
        self._timing_pub = self.create_publisher(FrameTiming, "timing", OUTPUT_DEPTH)
        self._debug_pub = self.create_publisher(Image, "debug_image", OUTPUT_DEPTH)
        self._feature_pub = (self.create_publisher(PointCloud, "feature", OUTPUT_DEPTH)
                             if node.publish_vins_features else None)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_DEPTH)
        msg_type, topic, self._convert = INPUTS[node.image_transport]
        on_image = self._on_image_with_info if MESSAGE_INFO else self._on_image
        self._image_sub = self.create_subscription(msg_type, topic, on_image, image_qos(node),
                                                   callback_group=input_group)
        self.camera_info = CameraInfoInput(self.get_logger(), self.resolve_topic_name("camera_info"),
                                           "; no `feature` output until one arrives" if node.publish_vins_features
                                           else "")
        self._camera_info_sub = self.create_subscription(CameraInfo, "camera_info", self.camera_info.on_message,
                                                         image_qos(node), callback_group=input_group)
        self._start_worker("rfnet_inference", feature.match_prediction, node.diagnostics_period, input_group,
                           diagnostics_group)
        self.get_logger().info(
            f"listening on {self._image_sub.topic_name} ({node.image_transport}, {node.image_qos}, "
            f"depth {node.qos_depth}); "
            f"model {feature.weights_path.name} (replaced_layers {feature.replaced_layers}) at "
            f"{feature.model_width}x{feature.model_height}, top_k {feature.top_k}, on "
            f"{self.front_end.device} with engine {self.front_end.engine_name} (descriptor "
            f"{self.front_end.precision}, detector {self.front_end.detector_precision}); "
            f"geometric check {feature.geometric_check}; camera_info from {self._camera_info_sub.topic_name}")

    # --- Parameters ------------------------------------------------------------------------------
    def _on_set_parameters(self, requested) -> SetParametersResult:
        """Validate runtime changes with the settings dataclasses; valid ones apply from the next frame."""
        changes = {p.name: p.value for p in requested if p.name in parameters.parameter_names()}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            feature, node = parameters.updated_settings(self.settings, changes)
        except parameters.ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._cost_lock:
            problem = self.cost.change_problem(self.settings[0], feature, node.output_stall_timeout)
        if problem:
            return SetParametersResult(successful=False, reason=f"refused: {problem}")
        self.settings = feature, node
        self.stamps.expected_rate = node.expected_rate
        self._worker.request_settings(feature)
        self.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    # --- Input (executor thread, input group) ----------------------------------------------------
    def _on_image_with_info(self, msg: Image | CompressedImage, info: dict) -> None:
        self._on_image(msg, info.get("publication_sequence_number"), str(info.get("publisher_gid")))

    def _on_image(self, msg: Image | CompressedImage, sequence: int | None = None, publisher: str = "") -> None:
        received = time.perf_counter()
        self.monitor.on_received(time.monotonic())
        lost = self.loss.update(to_nanoseconds(msg.header.stamp), self.stamps.expected_period, sequence, publisher)
        self.monitor.on_lost(lost, self.loss.lost, self.loss.source)
        try:
            image, color_order = self._convert(msg, self.settings[1].max_image_pixels)
        except ImageRejected as exc:
            self.monitor.on_rejected(exc.reason)
            self.get_logger().warning(f"rejected frame: {exc.reason}", throttle_duration_sec=WARN_THROTTLE)
            return
        convert_ms = (time.perf_counter() - received) * 1e3
        self._check_stamp(to_nanoseconds(msg.header.stamp))
        self.monitor.on_accepted(time.monotonic())
        if self._worker.offer(ReceivedImage(msg.header, received, image, color_order, convert_ms)):
            self.monitor.on_dropped()

    def _process(self, frame: ReceivedImage) -> dict[str, float]:
        """Track ``frame`` and publish its outputs; returns the stage times (ms)."""
        timer = self.front_end.new_timer()
        timer.add("convert", frame.convert_ms)
        result = self.front_end.process(frame.image, frame.color_order, to_nanoseconds(frame.header.stamp),
                                        self.camera_info.camera_for(frame.image.shape[1], frame.image.shape[0]),
                                        timer)
        for note in result.notes:
            self.get_logger().warning(note, throttle_duration_sec=WARN_THROTTLE)
        header, node = frame.header, self.settings[1]
        with timer.stage("publish"):
            self._keypoints_pub.publish(messages.keypoints_message(header, result, node.publish_descriptors))
            if result.has_previous:
                self._matches_pub.publish(messages.matches_message(header, result))
            cloud = messages.vins_feature_message(header, result, node) if self._feature_pub is not None else None
            if cloud is not None:
                self._feature_pub.publish(cloud)
            if self._debug_pub.get_subscription_count() > 0:
                self._debug_pub.publish(messages.debug_image_message(header, frame.image, frame.color_order, result))
                self._debug_images += 1
        stage_ms = timer.results()
        stage_ms["total"] = (time.perf_counter() - frame.received) * 1e3
        self.monitor.on_processed(stage_ms, len(result.features), len(result.matches) if result.has_previous else None)
        counters = {"frames_dropped": self.monitor.dropped, "frames_rejected": self.monitor.rejected,
                    "frames_lost": self.monitor.lost}
        self._timing_pub.publish(messages.timing_message(header, stage_ms, self.front_end, result, counters))
        return stage_ms

    # --- Diagnostics (executor thread, diagnostics group) ---------------------------------------
    def _publish_diagnostics(self) -> None:
        feature, node = self.settings
        period = self.stamps.expected_period
        calibration, calibration_warning = self.camera_info.calibration.status()
        context = {"image_topic": self._image_sub.topic_name, **front_end_values(feature, self.front_end),
                   "expected_period_s": f"{period:.4f}" if period else "unknown", "camera_info": calibration,
                   "debug_images_published": str(self._debug_images)}
        context.update(self._imu_values())
        report = self.monitor.report(time.monotonic(), node.stall_timeout, context,
                                     output_stall_timeout=node.output_stall_timeout,
                                     min_keypoints=node.min_keypoints)
        name = f"{self.get_fully_qualified_name().lstrip('/')}: features"
        self._diagnostics_pub.publish(diagnostic_array(name, str(self.front_end.device),
                                                       with_warning(report, calibration_warning),
                                                       self.get_clock().now().to_msg()))



def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown (status 0); 1 when it cannot start (one error line says why).

    The engines run on every core and PyTorch's small operations between them on one (rfnet_ros.threads):
    with more, a busy machine stalls those operations at their thread barriers, which made the node's
    latency tail. The worker thread gives up the interpreter lock for each of its hundreds of operations per
    frame and must win it back from the executor's threads; a switch interval of 0.2 ms instead of 5 ms lets
    it do so sooner (640x480 mono8 at 30 Hz on 2 busy cores: latency p99 276-340 ms against 541 ms)."""
    plan_cpu_threads()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return run_node(FeatureNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
