"""rfnet_stereo_node: learned keypoints of a stereo camera, left tracks, left-right matches and VINS-Fusion's
stereo feature cloud.

Subscribes:  left/image_rect and right/image_rect (sensor_msgs/Image; image_pipeline's stereo names), or
             left/image_rect/compressed and right/image_rect/compressed with image_transport compressed; QoS
             from image_qos / qos_depth. left/camera_info and right/camera_info (sensor_msgs/CameraInfo, same
             QoS): the newest of each is used for every pair. Images pair by header stamp: equal, or within
             sync_tolerance seconds (rfnet_ros.ros.stereo_sync).
Publishes:   left/keypoints and right/keypoints (rfnet_ros/Keypoints; a right keypoint carries its left
             partner's track id, rfnet_ros.tracking.stereo.NO_TRACK without one), left/matches (rfnet_ros/Matches,
             left frame t-1 -> t after the geometric check), stereo_matches (rfnet_ros/StereoMatches), timing
             (rfnet_ros/FrameTiming of the pair), /diagnostics, and feature (sensor_msgs/PointCloud in
             VINS-Fusion's layout holding both cameras, camera ids vins_camera_id and vins_camera_id + 1) with
             publish_vins_features and both camera_infos. Every output carries the left image's header.
Parameters:  every field of FeatureConfig, NodeConfig and StereoConfig (see config/stereo.yaml); vins_layout
             is not used: the stereo cloud is always in VINS-Fusion's layout, the only one with camera ids

Wiring around one front end (rfnet_ros.tracking.stereo.StereoFrontEnd), as the feature node is around
FeatureTracker: the image callbacks (one callback group) convert each image and offer it to the stereo
pairing; a completed pair goes to the newest-pair slot (rfnet_ros.ros.frame_slot) whose worker thread alone
runs the front end and publishes; the diagnostics timer has its own group.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, PointCloud
from std_msgs.msg import Header

from rfnet_ros.config import FeatureConfig, NodeConfig, StereoConfig
from rfnet_ros.engines import EngineUnavailable
from rfnet_ros.image_messages import ImageRejected
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.msg import FrameTiming, Keypoints, Matches, StereoMatches
from rfnet_ros.ros import messages, parameters
from rfnet_ros.ros.camera_input import CameraInfoInput
from rfnet_ros.ros.diagnostics import diagnostic_array, front_end_values, with_error, with_warning
from rfnet_ros.ros.frame_cost import FrameCost
from rfnet_ros.ros.front_end_worker import WARN_THROTTLE, FrontEndWorker
from rfnet_ros.ros.monitor import FrameMonitor, InputLossEstimator, StampMonitor
from rfnet_ros.ros.node import INPUTS, MESSAGE_INFO, OUTPUT_DEPTH, SWITCH_INTERVAL_S
from rfnet_ros.ros.qos import image_qos
from rfnet_ros.ros.startup import StartupError, run_node
from rfnet_ros.ros.stereo_sync import SIDES, Pair, StereoSync
from rfnet_ros.stamps import to_nanoseconds
from rfnet_ros.threads import plan_cpu_threads
from rfnet_ros.tracking.camera import CalibrationRejected
from rfnet_ros.tracking.stereo import StereoCalibration, StereoFrame, StereoFrontEnd
from rfnet_ros.tracking.vins import TrackedPoints, stereo_cloud

NODE_NAME = "rfnet_stereo_node"
SETTINGS = (FeatureConfig, NodeConfig, StereoConfig)


@dataclass
class CameraImage:
    """One camera's converted image waiting for its partner."""

    header: Header
    received: float  # time.perf_counter() when the callback got it
    image: np.ndarray
    color_order: str
    convert_ms: float


class StereoNode(FrontEndWorker, Node):
    """Wiring around :class:`~rfnet_ros.tracking.stereo.StereoFrontEnd`; see the module docstring."""

    def __init__(self, command_line: list[str] | None = None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        try:
            self.settings = parameters.declare_settings(
                self, sys.argv if command_line is None else command_line, SETTINGS)
            self.front_end = StereoFrontEnd(self.settings[0], self.settings[2])
        except (parameters.ParameterError, WeightsError, EngineUnavailable) as exc:
            self.destroy_node()
            raise StartupError(str(exc)) from None
        except ValueError as exc:
            self.destroy_node()
            raise StartupError(f"invalid parameter {exc}") from None
        unknown = parameters.unknown_overrides(self)
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(unknown)}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        feature, node, stereo = self.settings

        self.monitor = FrameMonitor(time.monotonic())  # pairs
        self.sync = StereoSync(stereo.sync_tolerance, time.monotonic())
        self.stamps = StampMonitor(node.expected_rate)
        self.loss = {side: InputLossEstimator() for side in SIDES}
        self.cost = FrameCost()
        self._cost_lock = threading.Lock()
        self._calibration_problem: str | None = None  # worker writes, diagnostics reads
        self._pair_problem = ""  # why the last pair had no stereo matches (worker writes, diagnostics reads)

        input_group = MutuallyExclusiveCallbackGroup()
        diagnostics_group = MutuallyExclusiveCallbackGroup()
        self._keypoints_pub = {side: self.create_publisher(Keypoints, f"{side}/keypoints", OUTPUT_DEPTH)
                               for side in SIDES}
        self._matches_pub = self.create_publisher(Matches, "left/matches", OUTPUT_DEPTH)
        self._stereo_pub = self.create_publisher(StereoMatches, "stereo_matches", OUTPUT_DEPTH)
        self._timing_pub = self.create_publisher(FrameTiming, "timing", OUTPUT_DEPTH)
        self._feature_pub = (self.create_publisher(PointCloud, "feature", OUTPUT_DEPTH)
                             if node.publish_vins_features else None)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_DEPTH)
        msg_type, topic, self._convert = INPUTS[node.image_transport]
        self._image_subs, self.camera_info = {}, {}
        for side in SIDES:
            callback = functools.partial(self._on_image_with_info if MESSAGE_INFO else self._on_image, side)
            self._image_subs[side] = self.create_subscription(
                msg_type, topic.replace("image", f"{side}/image_rect", 1), callback, image_qos(node),
                callback_group=input_group)
            info = self.create_subscription(CameraInfo, f"{side}/camera_info", lambda msg, side=side:
                                            self.camera_info[side].on_message(msg), image_qos(node),
                                            callback_group=input_group)
            self.camera_info[side] = CameraInfoInput(self.get_logger(), info.topic_name,
                                                     "no `feature` output until one arrives")
        self._start_worker("rfnet_stereo_inference", feature.match_prediction, node.diagnostics_period, input_group,
                           diagnostics_group)
        self.get_logger().info(
            f"listening on {self._image_subs['left'].topic_name} and {self._image_subs['right'].topic_name} "
            f"({node.image_transport}, {node.image_qos}, depth {node.qos_depth}, pairs within "
            f"{stereo.sync_tolerance:g} s); model {feature.weights_path.name} at "
            f"{feature.model_width}x{feature.model_height}, top_k {feature.top_k}, on {self.front_end.device} with "
            f"engine {self.front_end.engine_name} (descriptor {self.front_end.precision}, detector "
            f"{self.front_end.detector_precision}); "
            f"{'rectified' if stereo.input_rectified else 'raw'} input")

    # --- Parameters ------------------------------------------------------------------------------
    def _on_set_parameters(self, requested) -> SetParametersResult:
        changes = {p.name: p.value for p in requested if p.name in parameters.parameter_names(SETTINGS)}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            feature, node, stereo = parameters.updated_settings(self.settings, changes)
        except parameters.ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._cost_lock:
            problem = self.cost.change_problem(self.settings[0], feature, node.output_stall_timeout)
        if problem:
            return SetParametersResult(successful=False, reason=f"refused: {problem}")
        self.settings = feature, node, stereo
        self.stamps.expected_rate = node.expected_rate
        self.sync.tolerance = stereo.sync_tolerance
        self._worker.request_settings((feature, stereo))
        self.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    # --- Input (executor thread, input group) ----------------------------------------------------
    def _on_image_with_info(self, side: str, msg, info: dict) -> None:
        self._on_image(side, msg, info.get("publication_sequence_number"), str(info.get("publisher_gid")))

    def _on_image(self, side: str, msg, sequence: int | None = None, publisher: str = "") -> None:
        received = time.perf_counter()
        stamp_ns = to_nanoseconds(msg.header.stamp)
        loss = self.loss[side]
        lost = loss.update(stamp_ns, self.stamps.expected_period, sequence, publisher)
        self.monitor.on_lost(lost, sum(estimator.lost for estimator in self.loss.values()), loss.source)
        try:
            image, color_order = self._convert(msg, self.settings[1].max_image_pixels)
        except ImageRejected as exc:
            self.sync.on_rejected(side, exc.reason, time.monotonic())
            self.monitor.on_rejected(f"{side}: {exc.reason}")
            self.get_logger().warning(f"rejected {side} frame: {exc.reason}", throttle_duration_sec=WARN_THROTTLE)
            return
        convert_ms = (time.perf_counter() - received) * 1e3
        pair = self.sync.offer(side, stamp_ns, CameraImage(msg.header, received, image, color_order, convert_ms),
                               time.monotonic())
        if pair is None:
            return
        self.monitor.on_received(time.monotonic())
        self._check_stamp(pair.stamp_ns)
        self.monitor.on_accepted(time.monotonic())
        if self._worker.offer(pair):
            self.monitor.on_dropped()

    def _apply_settings(self, settings: tuple[FeatureConfig, StereoConfig]) -> None:
        self.front_end.configure(*settings)

    def _stereo_calibration(self, left: np.ndarray, right: np.ndarray) -> StereoCalibration | None:
        """The pair's calibration for these images, or None (the reason kept for diagnostics)."""
        cameras, problems = {}, []
        for side, image in (("left", left), ("right", right)):
            cameras[side] = self.camera_info[side].camera_for(image.shape[1], image.shape[0])
            if cameras[side] is None:
                state = self.camera_info[side].calibration.status()[0]
                problems.append(f"{side} camera_info {state}; rows taken as rectified")
        calibration = None
        if not problems:
            try:
                calibration = StereoCalibration.of(cameras["left"], cameras["right"], self.settings[2].input_rectified)
            except CalibrationRejected as exc:
                problems.append(f"stereo calibration not used: {exc}")
        problem = "; ".join(problems) or None
        if problem and problem != self._calibration_problem:
            self.get_logger().warning(problem)
        self._calibration_problem = problem
        return calibration

    def _process(self, pair: Pair) -> dict[str, float]:
        left, right = pair.left, pair.right
        timer = self.front_end.new_timer()
        timer.add("convert", left.convert_ms + right.convert_ms)
        calibration = self._stereo_calibration(left.image, right.image)
        result = self.front_end.process(left.image, right.image, left.color_order, pair.stamp_ns, calibration, timer)
        for note in result.left.notes:
            self.get_logger().warning(note, throttle_duration_sec=WARN_THROTTLE)
        if result.problem:
            self.get_logger().warning(result.problem, throttle_duration_sec=WARN_THROTTLE)
        self._pair_problem = result.problem
        header, node = left.header, self.settings[1]
        with timer.stage("publish"):
            self._publish(header, result, calibration, node)
        stage_ms = timer.results()
        stage_ms["total"] = (time.perf_counter() - min(left.received, right.received)) * 1e3
        tracked = result.left
        self.monitor.on_processed(stage_ms, len(tracked.features),
                                  len(tracked.matches) if tracked.has_previous else None)
        counters = {"frames_dropped": self.monitor.dropped, "frames_rejected": self.monitor.rejected,
                    "frames_lost": self.monitor.lost}
        self._timing_pub.publish(messages.timing_message(header, stage_ms, self.front_end, tracked, counters))
        return stage_ms

    def _publish(self, header: Header, result: StereoFrame, calibration: StereoCalibration | None,
                 node: NodeConfig) -> None:
        tracked = result.left
        self._keypoints_pub["left"].publish(messages.keypoints_message(header, tracked, node.publish_descriptors))
        self._keypoints_pub["right"].publish(messages.features_message(header, result.right, result.right_track_ids,
                                                                       node.publish_descriptors))
        if tracked.has_previous:
            self._matches_pub.publish(messages.matches_message(header, tracked))
        msg = StereoMatches(header=header)
        msg.left_index = messages.uint32_array(result.stereo_matches[:, 0])
        msg.right_index = messages.uint32_array(result.stereo_matches[:, 1])
        msg.disparity = messages.float_array(result.disparities)
        self._stereo_pub.publish(msg)
        if self._feature_pub is not None and calibration is not None:
            matched = result.stereo_matches[:, 1]
            right = TrackedPoints(result.right_track_ids[matched], result.right_track_lengths[matched],
                                  result.right.keypoints[matched], result.right_normalised[matched],
                                  result.right_velocities[matched])
            cloud = stereo_cloud(TrackedPoints.of(tracked), right, node.vins_camera_id)
            self._feature_pub.publish(messages.point_cloud_message(header, cloud))

    # --- Diagnostics (executor thread, diagnostics group) ---------------------------------------
    def _publish_diagnostics(self) -> None:
        feature, node, stereo = self.settings
        now = time.monotonic()
        statistics = self.front_end.stereo_statistics()
        context = {"left_image_topic": self._image_subs["left"].topic_name,
                   "right_image_topic": self._image_subs["right"].topic_name,
                   **front_end_values(feature, self.front_end),
                   "stereo_matches_mean": f"{statistics.matches_mean:.1f}",
                   "stereo_matches_last": str(statistics.matches_last),
                   "disparity_mean_px": f"{statistics.disparity_mean:.2f}",
                   "input_rectified": str(stereo.input_rectified).lower()}
        for side in SIDES:
            context[f"{side}_camera_info"] = self.camera_info[side].calibration.status()[0]
        context.update(self._imu_values())
        synced = self.sync.report(now, node.stall_timeout)
        report = self.monitor.report(now, node.stall_timeout, {**context, **synced.values},
                                     output_stall_timeout=node.output_stall_timeout,
                                     min_keypoints=node.min_keypoints)
        for warning in [*synced.warnings, self._pair_problem, self._calibration_problem]:
            report = with_warning(report, warning)
        for error in reversed(synced.errors):
            report = with_error(report, error)
        name = f"{self.get_fully_qualified_name().lstrip('/')}: stereo features"
        self._diagnostics_pub.publish(diagnostic_array(name, str(self.front_end.device), report,
                                                       self.get_clock().now().to_msg()))



def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown (status 0); 1 when it cannot start (one error line says why); threads and the
    interpreter's switch interval as the feature node's (rfnet_ros.ros.node.main says why)."""
    plan_cpu_threads()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return run_node(StereoNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
