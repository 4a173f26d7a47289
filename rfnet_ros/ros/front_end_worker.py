"""What the feature node and the stereo node do alike around their front end's worker thread.

A mixin of the two rclpy node classes: starting the worker with the gyro input and the diagnostics timer,
applying what was requested since the last input (new settings, a restart), processing one input so that no
error stops the worker, time jumps of the input stamps, and stopping the worker when the node is destroyed.
The node class defines ``front_end`` (``configure``, ``reset``, ``config``, ``add_angular_velocity``),
``monitor`` (FrameMonitor), ``cost`` and ``_cost_lock`` (FrameCost), ``stamps`` (StampMonitor),
``_publish_diagnostics()`` and ``_process(frame)``, which publishes the outputs and returns the stage times
(ms); ``_start_worker`` creates ``_worker`` (a NewestFrameWorker calling ``_consume``).
"""
from __future__ import annotations

from typing import Any

from rclpy.callback_groups import CallbackGroup
from sensor_msgs.msg import Imu

from rfnet_ros.ros.frame_slot import NewestFrameWorker, Requests
from rfnet_ros.ros.qos import IMU_QOS
from rfnet_ros.stamps import to_nanoseconds

# Seconds between repeats of the same warning (rejected frames, time jumps, inference errors).
WARN_THROTTLE = 5.0
# Seconds destroy_node waits for the frame in the model to finish; a longer frame is abandoned (main() then
# ends the process without waiting for it), so shutdown takes well under 2 s however long frames are.
WORKER_JOIN_TIMEOUT = 0.5


class FrontEndWorker:
    """The worker side of a node around one front end (module docstring)."""

    def _start_worker(self, name: str, match_prediction: str, diagnostics_period: float,
                      input_group: CallbackGroup, diagnostics_group: CallbackGroup) -> None:
        """Subscribe ``imu`` when the front end predicts matches with the gyro, start the diagnostics timer
        (``_publish_diagnostics``) and the worker thread ``name``."""
        self._imu_received = self._imu_rejected = 0
        self._imu_sub = (self.create_subscription(Imu, "imu", self._on_imu, IMU_QOS, callback_group=input_group)
                         if match_prediction == "imu" else None)
        self._diagnostics_timer = self.create_timer(diagnostics_period, self._publish_diagnostics,
                                                    callback_group=diagnostics_group)
        self._worker = NewestFrameWorker(self._consume, name=name)
        self._worker.start()

    def _on_imu(self, msg: Imu) -> None:
        self._imu_received += 1
        rate = msg.angular_velocity
        refused = self.front_end.add_angular_velocity(to_nanoseconds(msg.header.stamp), (rate.x, rate.y, rate.z))
        if refused:
            self._imu_rejected += 1
            self.get_logger().warning(f"imu sample rejected: {refused}", throttle_duration_sec=WARN_THROTTLE)

    def _imu_values(self) -> dict[str, str]:
        """Diagnostic values of the gyro input: samples received and refused (none without ``imu``)."""
        if self._imu_sub is None:
            return {}
        return {"imu_samples_received": str(self._imu_received), "imu_samples_rejected": str(self._imu_rejected)}

    def _apply_settings(self, settings: Any) -> None:
        """Hand settings requested at run time to the front end (the stereo node passes two objects)."""
        self.front_end.configure(settings)

    def _check_stamp(self, stamp_ns: int) -> None:
        """Report time jumps of accepted inputs; going backwards makes the worker restart matching."""
        jump = self.stamps.update(stamp_ns)
        if jump is None:
            return
        kind, description = jump
        self.monitor.on_time_jump(description)
        if kind == "backwards":
            self._worker.request_reset()
            description += "; matching restarts"
        self.get_logger().warning(f"time jump: {description}", throttle_duration_sec=WARN_THROTTLE)

    def _consume(self, frame: Any, requests: Requests) -> None:
        """Apply what was requested since the last input, then process ``frame``; no error stops the worker."""
        if requests.settings is not None:
            try:
                self._apply_settings(requests.settings)
            except Exception as exc:  # noqa: BLE001 - an engine that cannot be built: keep the old one
                self.monitor.on_error(f"applying the parameters failed: {type(exc).__name__}: {exc}",
                                      frame_left=False)
                self.get_logger().error(f"applying the parameters failed, keeping the previous ones: "
                                        f"{type(exc).__name__}: {exc}")
        config = self.front_end.config
        if requests.reset:
            self.front_end.reset()
        try:
            stage_ms = self._process(frame)
            with self._cost_lock:
                self.cost.observe(config, stage_ms)
        except Exception as exc:  # noqa: BLE001 - a failing frame must not stop the node
            if self._worker.stopping or not self.context.ok():
                return  # shut down while the frame was in the model: nothing left to publish to
            self.monitor.on_error(f"{type(exc).__name__}: {exc}")
            self.get_logger().error(f"processing a frame failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=WARN_THROTTLE)

    def destroy_node(self) -> None:
        """Stop the worker (waiting WORKER_JOIN_TIMEOUT for the frame in the model, if any) and destroy the node.

        A frame still in the model then finds its publishers gone and is dropped (see _consume).
        """
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.stop(WORKER_JOIN_TIMEOUT)
        super().destroy_node()
