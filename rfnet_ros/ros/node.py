"""rfnet_feature_node: learned keypoints, descriptors and frame-to-frame matches for a camera stream.

Subscribes:  image (sensor_msgs/Image) with image_transport raw, the default, or image/compressed
             (sensor_msgs/CompressedImage: JPEG, PNG) with image_transport compressed; QoS from image_qos /
             qos_depth. Remap the one in use: image:=/camera/image_raw or
             image/compressed:=/camera/image_raw/compressed.
             camera_info (sensor_msgs/CameraInfo, same QoS), optional: the newest one is used for every
             image (rfnet_ros.tracking.camera.LatestCalibration). Remap it beside the image:
             camera_info:=/camera/camera_info.
Publishes:   keypoints (rfnet_ros/Keypoints, with track ids), matches (rfnet_ros/Matches, from the second
             frame on, those that passed the geometric check), timing (rfnet_ros/FrameTiming),
             /diagnostics (diagnostic_msgs/DiagnosticArray), debug_image (sensor_msgs/Image bgr8, drawn only
             while someone subscribes), feature (sensor_msgs/PointCloud for VINS, with
             publish_vins_features and a camera_info)
Parameters:  every field of rfnet_ros.config.FeatureConfig and NodeConfig (see config/lite.yaml)

Threading. Frames are processed newest-first: the image callback only converts the message (a zero-copy view
of a raw image's data, or the decoded compressed image) and stores it in a one-frame slot, replacing, and
counting as dropped, a frame the worker has not taken yet; so a slow model never builds a queue and latency
stays bounded. One dedicated worker thread takes the newest frame, runs the pipeline and publishes the
outputs; it alone touches the pipeline, which is therefore never run concurrently. The executor is
multi-threaded with the image callbacks and the diagnostics timer in separate mutually exclusive callback
groups (the parameter services stay in the default group), so receiving frames, reporting diagnostics and
answering parameter requests all go on while a frame is inside the model (PyTorch releases the GIL while it
computes).
"""
from __future__ import annotations

import array
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point32
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.logging import LoggingSeverity, get_logger, set_logger_level
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, ChannelFloat32, CompressedImage, Image, PointCloud
from std_msgs.msg import Header

from rfnet_ros.config import FeatureConfig, NodeConfig
from rfnet_ros.engines import EngineUnavailable
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.msg import FrameTiming, Keypoints, Matches
from rfnet_ros.pipeline import STAGES, FeaturePipeline
from rfnet_ros.ros.frame_cost import FrameCost
from rfnet_ros.ros.image_conversion import ImageRejected, array_to_image_fields, compressed_to_array, image_to_array
from rfnet_ros.ros.monitor import ERROR, OK, STAGE_NAMES, WARN, FrameMonitor, InputLossEstimator, StampMonitor
from rfnet_ros.ros.parameters import (
    ParameterError,
    declare_settings,
    parameter_names,
    unknown_overrides,
    updated_settings,
)
from rfnet_ros.tracking.camera import LatestCalibration
from rfnet_ros.tracking.drawing import draw_tracks
from rfnet_ros.tracking.tracker import FeatureTracker, TrackedFrame
from rfnet_ros.tracking.tracks import ALIVE_AFTER
from rfnet_ros.tracking.vins import FeatureCloud, TrackedPoints, VinsLayout, feature_cloud

NODE_NAME = "rfnet_feature_node"
OUTPUT_DEPTH = 10
# Seconds between repeats of the same warning (rejected frames, time jumps, inference errors).
WARN_THROTTLE = 5.0
# Seconds destroy_node waits for the frame in the model to finish; a longer frame is abandoned (main() then
# ends the process without waiting for it), so shutdown takes well under 2 s however long frames are.
WORKER_JOIN_TIMEOUT = 0.5
# Subscription callbacks can take the middleware's message info (publication sequence numbers) from
# Jazzy's rclpy on; on Humble the node estimates input loss from header stamps only.
MESSAGE_INFO = hasattr(Subscription, "CallbackType")
# image_transport -> (message type, topic, converter to (array, color order) that raises ImageRejected).
INPUTS = {
    "raw": (Image, "image", image_to_array),
    "compressed": (CompressedImage, "image/compressed", compressed_to_array),
}
_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
assert set(STAGES) <= set(STAGE_NAMES)


class StartupError(RuntimeError):
    """The node cannot start; the text is the one line to log."""


def image_qos(settings: NodeConfig) -> QoSProfile:
    """QoS of the image subscription from the node settings."""
    if settings.image_qos == "sensor_data":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.qos_depth,
                          reliability=qos_profile_sensor_data.reliability,
                          durability=qos_profile_sensor_data.durability)
    reliability = ReliabilityPolicy.RELIABLE if settings.image_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings.qos_depth, reliability=reliability)


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def float_array(values: np.ndarray) -> array.array:
    """float32 values as array.array('f'): message setters take it without a per-element check."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def uint32_array(values: np.ndarray) -> array.array:
    out = array.array("I")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def uint64_array(values: np.ndarray) -> array.array:
    out = array.array("Q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint64).tobytes())
    return out


def keypoints_message(header: Header, result: TrackedFrame, with_descriptors: bool) -> Keypoints:
    features = result.features
    msg = Keypoints(header=header, image_height=features.image_size[0], image_width=features.image_size[1])
    msg.x = float_array(features.keypoints[:, 0])
    msg.y = float_array(features.keypoints[:, 1])
    msg.score = float_array(features.scores)
    msg.scale = float_array(features.scales)
    msg.orientation = float_array(features.orientations)
    if with_descriptors:
        msg.descriptor_size = features.descriptors.shape[1]
        msg.descriptors = float_array(features.descriptors.ravel())
    msg.track_ids = uint64_array(result.track_ids)
    return msg


def matches_message(header: Header, previous_stamp: Time, result: TrackedFrame) -> Matches:
    msg = Matches(header=header, previous_stamp=previous_stamp)
    msg.previous_index = uint32_array(result.matches[:, 0])
    msg.current_index = uint32_array(result.matches[:, 1])
    msg.distance = float_array(result.match_distances)
    return msg


def point_cloud_message(header: Header, cloud: FeatureCloud) -> PointCloud:
    """The VINS feature message: points (x, y, 1) and one float32 channel per name, in order."""
    msg = PointCloud(header=header)
    msg.points = [Point32(x=x, y=y, z=z) for x, y, z in cloud.points.tolist()]
    msg.channels = [ChannelFloat32(name=name, values=float_array(values)) for name, values in cloud.channels.items()]
    return msg


@dataclass
class _Frame:
    """A received frame waiting for the worker."""

    header: Header
    received: float  # time.perf_counter() when the callback got it
    image: np.ndarray  # a view of a raw message's data (image_to_array) or a decoded compressed image
    color_order: str
    convert_ms: float  # time spent converting in the callback


class FeatureNode(Node):
    """Wiring around :class:`~rfnet_ros.pipeline.FeaturePipeline`; see the module docstring for threads."""

    def __init__(self, command_line: list[str] | None = None, **kwargs):
        """``command_line``: the process arguments rclpy was initialised with (default sys.argv), whose ``-p``
        values are type-checked here (see parameters.command_line_values)."""
        super().__init__(NODE_NAME, **kwargs)
        try:
            self.settings = declare_settings(self, sys.argv if command_line is None else command_line)
            self.pipeline = FeaturePipeline(self.settings[0])
            self.tracker = FeatureTracker(self.pipeline)
        except (ParameterError, WeightsError, EngineUnavailable) as exc:
            self.destroy_node()
            raise StartupError(str(exc)) from None
        except ValueError as exc:  # device or precision the machine cannot run (the text names the key)
            self.destroy_node()
            raise StartupError(f"invalid parameter {exc}") from None
        unknown = unknown_overrides(self)
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(unknown)}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        feature, node = self.settings

        self.monitor = FrameMonitor(time.monotonic())
        self.stamps = StampMonitor(node.expected_rate)
        self.loss = InputLossEstimator()  # executor thread, input group only
        self.cost = FrameCost()  # worker observes, parameter callback predicts (under _slot_lock)
        self._slot_lock = threading.Condition()
        self._slot: _Frame | None = None  # newest unprocessed frame (guarded by _slot_lock)
        self._reset_pending = False  # a backwards jump was seen: forget the previous frame first
        self._pending_settings: FeatureConfig | None = None  # runtime change for the worker to apply
        self._stopping = False
        self._previous_stamp: Time | None = None  # worker only
        self.calibration = LatestCalibration()
        self._said_uncalibrated = False  # worker only: "no camera_info" is logged once
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
        self._camera_info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info,
                                                         image_qos(node), callback_group=input_group)
        self._diagnostics_timer = self.create_timer(node.diagnostics_period, self._publish_diagnostics,
                                                    callback_group=diagnostics_group)
        self._worker = threading.Thread(target=self._work, name="rfnet_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"listening on {self._image_sub.topic_name} ({node.image_transport}, {node.image_qos}, "
            f"depth {node.qos_depth}); "
            f"model {feature.weights_path.name} (replaced_layers {feature.replaced_layers}) at "
            f"{feature.model_width}x{feature.model_height}, top_k {feature.top_k}, on "
            f"{self.pipeline.device} with engine {self.pipeline.engine.name} ({self.pipeline.precision}); "
            f"geometric check {feature.geometric_check}; camera_info from {self._camera_info_sub.topic_name}")

    # --- Parameters ------------------------------------------------------------------------------
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Validate runtime changes with the settings dataclasses; valid ones apply from the next frame."""
        changes = {p.name: p.value for p in parameters if p.name in parameter_names()}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            feature, node = updated_settings(self.settings, changes)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._slot_lock:
            problem = self.cost.change_problem(self.settings[0], feature, node.output_stall_timeout)
        if problem:
            return SetParametersResult(successful=False, reason=f"refused: {problem}")
        self.settings = feature, node
        self.stamps.expected_rate = node.expected_rate
        with self._slot_lock:
            self._pending_settings = feature
        self.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    # --- Input (executor thread, input group) ----------------------------------------------------
    def _on_image_with_info(self, msg: Image | CompressedImage, info: dict) -> None:
        self._on_image(msg, info.get("publication_sequence_number"), str(info.get("publisher_gid")))

    def _on_image(self, msg: Image | CompressedImage, sequence: int | None = None, publisher: str = "") -> None:
        received = time.perf_counter()
        self.monitor.on_received(time.monotonic())
        self._count_lost(msg.header, sequence, publisher)
        try:
            image, color_order = self._convert(msg, self.settings[1].max_image_pixels)
        except ImageRejected as exc:
            self._reject(exc.reason)
            return
        convert_ms = (time.perf_counter() - received) * 1e3
        self._check_stamp(msg.header)
        self.monitor.on_accepted(time.monotonic())
        self._offer(_Frame(msg.header, received, image, color_order, convert_ms))

    def _count_lost(self, header: Header, sequence: int | None, publisher: str) -> None:
        """Frames that never reached this callback: sequence-number or stamp gaps before this message."""
        lost = self.loss.update(stamp_ns(header.stamp), self.stamps.expected_period, sequence, publisher)
        self.monitor.on_lost(lost, self.loss.lost, self.loss.source)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        first = self.calibration.received == 0
        refused = self.calibration.offer(msg)
        if refused:
            self.get_logger().warning(f"camera_info rejected: {refused}", throttle_duration_sec=WARN_THROTTLE)
        elif first:
            self.get_logger().info(f"camera_info received: {msg.distortion_model or 'no distortion'}, "
                                   f"{msg.width}x{msg.height}; normalised outputs are undistorted with it")

    def _check_stamp(self, header: Header) -> None:
        """Report time jumps of accepted frames; going backwards makes the worker restart matching."""
        jump = self.stamps.update(stamp_ns(header.stamp))
        if jump is None:
            return
        kind, description = jump
        self.monitor.on_time_jump(description)
        if kind == "backwards":
            with self._slot_lock:
                self._reset_pending = True
            self.get_logger().warning(f"time jump: {description}; matching restarts",
                                      throttle_duration_sec=WARN_THROTTLE)
        else:
            self.get_logger().warning(f"time jump: {description}", throttle_duration_sec=WARN_THROTTLE)

    def _reject(self, reason: str) -> None:
        self.monitor.on_rejected(reason)
        self.get_logger().warning(f"rejected frame: {reason}", throttle_duration_sec=WARN_THROTTLE)

    def _offer(self, frame: _Frame) -> None:
        """Put the newest frame in the slot; an unprocessed older one is dropped and counted."""
        with self._slot_lock:
            if self._slot is not None:
                self.monitor.on_dropped()
            self._slot = frame
            self._slot_lock.notify()

    # --- Worker thread ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._slot_lock:
                while self._slot is None and not self._stopping:
                    self._slot_lock.wait()
                if self._stopping:
                    return
                frame, self._slot = self._slot, None
                reset, self._reset_pending = self._reset_pending, False
                settings, self._pending_settings = self._pending_settings, None
            if settings is not None:
                try:
                    self.pipeline.configure(settings)
                except Exception as exc:  # noqa: BLE001 - an engine that cannot be built: keep the old one
                    self.monitor.on_error(f"applying the parameters failed: {type(exc).__name__}: {exc}")
                    self.get_logger().error(f"applying the parameters failed, keeping the previous ones: "
                                            f"{type(exc).__name__}: {exc}")
            config = self.pipeline.config
            if reset:
                self.tracker.reset()
                self._previous_stamp = None
            try:
                stage_ms = self._process(frame)
                with self._slot_lock:
                    self.cost.observe(config, stage_ms)
            except Exception as exc:  # noqa: BLE001 - a failing frame must not stop the node
                if self._stopping or not self.context.ok():
                    return  # shut down while the frame was in the model: nothing left to publish to
                self.monitor.on_error(f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"processing a frame failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=WARN_THROTTLE)

    def _camera_for(self, image: np.ndarray):
        """The camera model for this frame, or None (logged once while there is none, throttled on a size
        mismatch)."""
        camera, mismatch = self.calibration.for_image(image.shape[1], image.shape[0])
        if mismatch:
            self.get_logger().warning(f"camera_info not used: {mismatch}", throttle_duration_sec=WARN_THROTTLE)
        elif camera is None and not self._said_uncalibrated:
            self._said_uncalibrated = True
            vins = "; no `feature` output until one arrives" if self._feature_pub is not None else ""
            self.get_logger().info(f"no camera_info on {self._camera_info_sub.topic_name}: working in pixels "
                                   f"(the geometric check on raw pixels){vins}")
        return camera

    def _process(self, frame: _Frame) -> dict[str, float]:
        """Track ``frame`` (pipeline, geometric check, track ids) and publish its outputs; returns the stage
        times (ms)."""
        result = self.tracker.process(frame.image, frame.color_order, stamp_ns(frame.header.stamp),
                                      self._camera_for(frame.image))

        publish_start = time.perf_counter()
        header = frame.header
        node = self.settings[1]
        self._keypoints_pub.publish(keypoints_message(header, result, node.publish_descriptors))
        num_matches = None
        if result.has_previous and self._previous_stamp is not None:
            num_matches = len(result.matches)
            self._matches_pub.publish(matches_message(header, self._previous_stamp, result))
        self._previous_stamp = header.stamp
        if self._feature_pub is not None and result.normalised is not None:
            cloud = feature_cloud(TrackedPoints.of(result), VinsLayout.from_config(node))
            if len(cloud.points):  # as VINS-Mono's tracker: no message without a feature to report
                self._feature_pub.publish(point_cloud_message(header, cloud))
        if self._debug_pub.get_subscription_count() > 0:
            self._publish_debug_image(header, frame, result)
        end = time.perf_counter()

        stage_ms = dict(result.timings)
        stage_ms["convert"] = stage_ms.get("convert", 0.0) + frame.convert_ms
        stage_ms["publish"] = (end - publish_start) * 1e3
        stage_ms["total"] = (end - frame.received) * 1e3
        self.monitor.on_processed(stage_ms, len(result.features), num_matches)
        self._timing_pub.publish(FrameTiming(
            header=header, **{f"{stage}_ms": float(stage_ms.get(stage, 0.0)) for stage in STAGE_NAMES},
            device=str(self.pipeline.device), engine=self.pipeline.engine.name, precision=self.pipeline.precision,
            num_keypoints=len(result.features), num_matches=num_matches or 0,
            frames_dropped=self.monitor.dropped, frames_rejected=self.monitor.rejected,
            frames_lost=self.monitor.lost, inlier_ratio=result.inlier_ratio))
        return stage_ms

    def _publish_debug_image(self, header: Header, frame: _Frame, result: TrackedFrame) -> None:
        """Keypoints coloured by track length, and each match as a line from its previous position."""
        trails = [np.zeros((0, 2))] * len(result.features)
        for previous, current in result.matches.tolist():
            trails[current] = result.previous_keypoints[previous][None]
        canvas = draw_tracks(frame.image, result.features.keypoints, result.track_lengths, trails,
                             frame.color_order)
        msg = Image(header=header, **array_to_image_fields(canvas, "bgr"))
        self._debug_pub.publish(msg)
        self._debug_images += 1

    # --- Diagnostics (executor thread, diagnostics group) ---------------------------------------
    def _publish_diagnostics(self) -> None:
        feature, node = self.settings
        period = self.stamps.expected_period
        front_end = self.tracker.statistics()
        tracks = front_end.tracks
        calibration, calibration_warning = self.calibration.status()
        report = self.monitor.report(time.monotonic(), node.stall_timeout,
                                     output_stall_timeout=node.output_stall_timeout,
                                     min_keypoints=node.min_keypoints, context={
            "image_topic": self._image_sub.topic_name,
            "device": str(self.pipeline.device),
            "engine": self.pipeline.engine.name,
            "precision": self.pipeline.precision,
            "replaced_layers": str(feature.replaced_layers),
            "weights": feature.weights_path.name,
            "model_size": f"{feature.model_width}x{feature.model_height}",
            "top_k": str(feature.top_k),
            "expected_period_s": f"{period:.4f}" if period else "unknown",
            "geometric_check": feature.geometric_check,
            "inlier_ratio_mean": f"{front_end.inlier_ratio_mean:.3f}",
            "inlier_ratio_last": f"{front_end.inlier_ratio_last:.3f}",
            "frames_too_few_matches": str(front_end.frames_too_few),
            "tracks_started": str(tracks.started),
            "tracks_active": str(tracks.active),
            "track_length_mean": f"{tracks.mean_length:.2f}",
            "track_length_active_mean": f"{tracks.active_mean_length:.2f}",
            f"tracks_alive_after_{ALIVE_AFTER}_share": f"{tracks.alive_share:.3f}",
            "camera_info": calibration,
            "debug_images_published": str(self._debug_images),
        })
        if calibration_warning:  # a camera_info that cannot be used is a warning of its own
            if report.level == OK:
                report.level, report.message = WARN, calibration_warning
            else:
                report.message = f"{report.message}; {calibration_warning}"
        status = DiagnosticStatus(
            level=_LEVELS[report.level], name=f"{self.get_fully_qualified_name().lstrip('/')}: features",
            message=report.message, hardware_id=str(self.pipeline.device),
            values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
        self._diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                      status=[status]))

    def destroy_node(self) -> None:
        """Stop the worker (waiting WORKER_JOIN_TIMEOUT for the frame in the model, if any) and destroy the node.

        A frame still in the model then finds its publishers gone and is dropped (see _work).
        """
        worker = getattr(self, "_worker", None)
        if worker is not None:
            with self._slot_lock:
                self._stopping = True
                self._slot_lock.notify()
            worker.join(WORKER_JOIN_TIMEOUT)
        super().destroy_node()


def init_rclpy(args: list[str] | None) -> None:
    """rclpy.init; raises StartupError with rcl's reason in one line (a missing or malformed --params-file)."""
    # rcl logs its own "Failed to parse global arguments" line before raising: keep it to our one line.
    set_logger_level("rcl", LoggingSeverity.FATAL)
    try:
        rclpy.init(args=args)
    except _rclpy.RCLError as exc:  # the same class on Humble and later (rclpy.RCLError is newer)
        reason = re.sub(r", at \S+:\d+", "", str(exc)).replace("failed to initialize rcl: ", "")
        raise StartupError(f"cannot start: {reason}") from None
    finally:
        set_logger_level("rcl", LoggingSeverity.UNSET)


def _ignore_signal(signum, frame) -> None:
    """SIGINT/SIGTERM handler of the Python level: does nothing (see install_shutdown_signals)."""


def install_shutdown_signals() -> None:
    """Make SIGINT and SIGTERM shut the node down without ever raising into the Python code.

    Installed before rclpy.init, these handlers are the ones rclpy's own signal handlers chain to after they
    have shut the context down (which ends spin()), and the ones rclpy puts back at shutdown. So the first
    signal stops spinning, and every later one, however close behind, is ignored while the node tears down,
    instead of raising KeyboardInterrupt in the middle of it (a traceback, or an abort).
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_signal)


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown, then end the process with status 0; returns 1 when it cannot start (one
    error line says why)."""
    install_shutdown_signals()
    try:
        init_rclpy(args)
    except StartupError as exc:
        get_logger(NODE_NAME).error(str(exc))
        return 1
    node = None
    try:
        node = FeatureNode(command_line=sys.argv if args is None else args)
        # Three threads: input callbacks, diagnostics timer and parameter services each get one.
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        get_logger(NODE_NAME).error(str(exc))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a signal during start-up shuts the context down under the constructor
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None:
        # Teardown is complete: the node is destroyed and the context shut down. The interpreter's own exit
        # would take seconds more on a busy machine (finalising torch and the middleware's libraries), and
        # with a frame still in the model (abandoned by destroy_node) it would tear torch down under it
        # (std::terminate). So the process ends here.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
