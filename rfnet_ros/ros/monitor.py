"""Frame bookkeeping behind the node's diagnostics: time-jump detection, counters and per-period statistics.

Plain Python (no rclpy, no torch), so it is unit-tested with a fake clock. The node feeds it from its image
callbacks and its worker thread and turns :meth:`FrameMonitor.report` into a diagnostic_msgs/DiagnosticStatus.
"""
from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass, field

# Stages timed per frame: the pipeline's (rfnet_ros.pipeline.STAGES), then the node's own.
STAGE_NAMES = ("convert", "preprocess", "detect", "describe", "match", "publish", "total")

# diagnostic_msgs/DiagnosticStatus levels.
OK, WARN, ERROR = 0, 1, 2

# A frame-to-frame stamp gap above GAP_FACTOR expected periods is reported as a time jump.
GAP_FACTOR = 5.0
# The learned period is the median of the last PERIOD_WINDOW positive stamp gaps, used from MIN_PERIODS on.
PERIOD_WINDOW = 50
MIN_PERIODS = 5
# Diagnostics warn of falling behind when more than this share of the period's frames was dropped, of input
# loss when more than this share of the frames sent was lost, and of no texture when more than this share of
# the frames processed gave too few keypoints.
DROP_WARN_SHARE = 0.5


class StampMonitor:
    """Detects time jumps in a stream of header stamps: going backwards, or a gap far above the period.

    The expected period is ``1 / expected_rate`` when a rate is given, else the median of recent gaps.
    Equal stamps are neither jumps nor period samples.
    """

    def __init__(self, expected_rate: float = 0.0):
        self.expected_rate = expected_rate
        self._last_ns: int | None = None
        self._gaps: deque[int] = deque(maxlen=PERIOD_WINDOW)

    @property
    def expected_period(self) -> float | None:
        """Seconds between frames: from ``expected_rate``, else learned (None until enough frames)."""
        if self.expected_rate > 0:
            return 1.0 / self.expected_rate
        if len(self._gaps) < MIN_PERIODS:
            return None
        return statistics.median(self._gaps) * 1e-9

    def update(self, stamp_ns: int) -> tuple[str, str] | None:
        """Record a stamp; returns ("backwards" | "gap", description) on a time jump, else None."""
        last, self._last_ns = self._last_ns, stamp_ns
        if last is None:
            return None
        delta = stamp_ns - last
        if delta < 0:
            return "backwards", f"stamp went back by {-delta * 1e-9:.3f} s"
        if delta == 0:
            return None
        period = self.expected_period
        if period is not None and delta * 1e-9 > GAP_FACTOR * period:
            return "gap", f"stamp gap of {delta * 1e-9:.3f} s, expected period {period:.3f} s"
        self._gaps.append(delta)
        return None


class InputLossEstimator:
    """Frames lost before the node's callback saw them (overwritten in the subscription's queue, or lost by the
    middleware): gaps in the publisher's sequence numbers where the middleware reports them, else gaps in the
    header stamps against the expected period.

    Sequence numbers are counted per publisher (a restarted publisher starts again: no loss). A stamp gap of
    ``n`` periods counts ``round(n) - 1`` lost frames; gaps beyond GAP_FACTOR periods are time jumps (a paused
    camera), not loss. Feed every received message, rejected ones included.
    """

    def __init__(self):
        self.by_sequence = self.by_stamps = 0
        self.has_sequence = False
        self._last_sequence: dict[object, int] = {}
        self._last_stamp_ns: int | None = None

    @property
    def lost(self) -> int:
        """The estimate in use: from sequence numbers once any were seen, else from stamps."""
        return self.by_sequence if self.has_sequence else self.by_stamps

    @property
    def source(self) -> str:
        return "sequence numbers" if self.has_sequence else "header stamps"

    def update(self, stamp_ns: int, period_s: float | None, sequence: int | None = None,
               publisher: object = None) -> int:
        """Record a received message; returns how many frames the estimate in use says were lost before it."""
        lost_by_sequence = 0
        if sequence:  # None or 0: the middleware does not report them
            last = self._last_sequence.get(publisher)
            self._last_sequence[publisher] = sequence
            if last is not None and sequence > last + 1:
                lost_by_sequence = sequence - last - 1
            self.by_sequence += lost_by_sequence
            self.has_sequence = True
        last_stamp, self._last_stamp_ns = self._last_stamp_ns, stamp_ns
        lost_by_stamps = 0
        if last_stamp is not None and period_s and stamp_ns > last_stamp:
            periods = (stamp_ns - last_stamp) * 1e-9 / period_s
            if periods <= GAP_FACTOR:
                lost_by_stamps = max(0, round(periods) - 1)
        self.by_stamps += lost_by_stamps
        return lost_by_sequence if self.has_sequence else lost_by_stamps


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class _Period:
    """What happened since the last report."""

    start: float
    received: int = 0
    processed: int = 0
    dropped: int = 0
    rejected: int = 0
    errors: int = 0
    lost: int = 0
    jumps: int = 0
    last_jump: str = ""
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGE_NAMES})
    keypoints: list[int] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)
    longest_wait: float = 0.0  # seconds: the longest receive-to-output time of the frames processed


@dataclass
class Report:
    """One diagnostics report: level (OK/WARN/ERROR), a message saying why, and key -> value strings."""

    level: int
    message: str
    values: dict[str, str]


class FrameMonitor:
    """Thread-safe frame counters (totals since start) and statistics over the current report period.

    ``now`` arguments are monotonic seconds (time.monotonic() in the node).
    """

    def __init__(self, now: float):
        self._lock = threading.Lock()
        self._period = _Period(start=now)
        self.received = self.processed = self.dropped = self.rejected = self.errors = self.time_jumps = 0
        self.lost = 0
        self.lost_source = "header stamps"
        self.last_reject_reason = ""
        self.last_error = ""
        self._last_received: float | None = None
        # When each frame without outputs yet was accepted, oldest first: the frame in the model, then the one
        # in the slot (and, for a moment, a newer one about to replace it). Outputs, or a failure, end the
        # oldest wait; a drop ends the slot's.
        self._waiting: deque[float] = deque()

    def on_received(self, now: float) -> None:
        with self._lock:
            self.received += 1
            self._period.received += 1
            self._last_received = now

    def on_accepted(self, now: float) -> None:
        """A received frame passed conversion and waits for the worker."""
        with self._lock:
            self._waiting.append(now)

    def on_lost(self, count: int, total: int, source: str) -> None:
        """``count`` more frames were lost before reaching the node (``total`` since start, estimated from
        ``source``)."""
        with self._lock:
            self._period.lost += count
            self.lost, self.lost_source = total, source

    def on_dropped(self) -> None:
        """A received frame was replaced by a newer one before it was processed."""
        with self._lock:
            # The replaced frame is the newest but one. When that one is also the oldest, it may be the frame in
            # the model (the monitor cannot tell): its time is kept, and the newest frame's wait goes instead.
            if len(self._waiting) >= 3:
                del self._waiting[-2]
            elif len(self._waiting) == 2:
                self._waiting.pop()
            self.dropped += 1
            self._period.dropped += 1

    def on_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self._period.rejected += 1
            self.last_reject_reason = reason

    def on_error(self, error: str, frame_left: bool = True) -> None:
        """An error: processing a frame failed, so it has left the model without outputs (``frame_left``), or,
        with ``frame_left`` False, one that took no frame with it (new parameters that could not be applied)."""
        with self._lock:
            if frame_left and self._waiting:
                self._waiting.popleft()
            self.errors += 1
            self._period.errors += 1
            self.last_error = error

    def on_time_jump(self, description: str) -> None:
        with self._lock:
            self.time_jumps += 1
            self._period.jumps += 1
            self._period.last_jump = description

    def on_processed(self, stage_ms: dict[str, float], keypoints: int, matches: int | None) -> None:
        """A frame went through and its outputs left; ``matches`` is None for a frame without a previous one.

        ``stage_ms["total"]`` is the frame's time from its reception to its outputs: its wait.
        """
        with self._lock:
            if self._waiting:
                self._waiting.popleft()
            self.processed += 1
            period = self._period
            period.processed += 1
            period.longest_wait = max(period.longest_wait, stage_ms.get("total", 0.0) * 1e-3)
            for stage, values in period.stage_ms.items():
                if stage in stage_ms:
                    values.append(stage_ms[stage])
            period.keypoints.append(keypoints)
            if matches is not None:
                period.matches.append(matches)

    def report(self, now: float, stall_timeout: float, context: dict[str, str] | None = None, *,
               output_stall_timeout: float | None = None, min_keypoints: int = 0) -> Report:
        """Summarise the period since the last report (and start a new one); ``context`` adds fixed keys.

        ERROR when, during the period, a frame waited for its outputs (in the slot or in the model) longer than
        ``output_stall_timeout``: one still waiting now, or one whose outputs left since the last report (however
        short its stay across report times); WARN of no texture when most frames gave fewer than
        ``min_keypoints``.
        """
        with self._lock:
            period, self._period = self._period, _Period(start=now)
            totals = {"frames_received": self.received, "frames_processed": self.processed,
                      "frames_dropped": self.dropped, "frames_rejected": self.rejected,
                      "frames_lost": self.lost, "inference_errors": self.errors, "time_jumps": self.time_jumps}
            last_received, last_reject, last_error = self._last_received, self.last_reject_reason, self.last_error
            waiting_since = self._waiting[0] if self._waiting else None
            lost_source = self.lost_source
        elapsed = max(now - period.start, 1e-9)
        wait = now - waiting_since if waiting_since is not None else 0.0
        values = {
            "input_rate_hz": f"{period.received / elapsed:.2f}",
            "output_rate_hz": f"{period.processed / elapsed:.2f}",
            **{key: str(value) for key, value in totals.items()},
            "frames_lost_from": lost_source,
            "output_wait_s": f"{wait:.2f}",
            "output_wait_max_s": f"{max(wait, period.longest_wait):.2f}",
            "last_reject_reason": last_reject,
            "last_error": last_error,
            "keypoints_mean": f"{_mean(period.keypoints):.1f}",
            "matches_mean": f"{_mean(period.matches):.1f}",
        }
        for stage, ms in period.stage_ms.items():
            values[f"{stage}_ms_mean"] = f"{_mean(ms):.2f}"
            values[f"{stage}_ms_max"] = f"{max(ms, default=0.0):.2f}"
        values.update(context or {})

        errors, warnings = [], []
        if output_stall_timeout is not None and wait > output_stall_timeout:
            errors.append(f"output stalled: no output for {wait:.1f} s while a frame waits "
                          f"(output_stall_timeout {output_stall_timeout:g} s)")
        elif output_stall_timeout is not None and period.longest_wait > output_stall_timeout:
            errors.append(f"output stalled: no output for {period.longest_wait:.2f} s while a frame waited "
                          f"(output_stall_timeout {output_stall_timeout:g} s); its outputs have left since")
        if period.errors:
            errors.append(f"{period.errors} inference failure(s), last: {last_error}")
        if last_received is None:
            warnings.append("no image received yet")
        elif now - last_received > stall_timeout:
            warnings.append(f"input stalled: no image for {now - last_received:.1f} s")
        if period.received >= 2 and period.dropped > DROP_WARN_SHARE * period.received:
            warnings.append(f"falling behind: dropped {period.dropped} of {period.received} frames")
        if period.lost and period.lost > DROP_WARN_SHARE * (period.lost + period.received):
            warnings.append(f"input loss: {period.lost} frame(s) never reached the node, {period.received} did "
                            f"(from {lost_source})")
        few = sum(1 for k in period.keypoints if k < min_keypoints)
        if few and few > DROP_WARN_SHARE * len(period.keypoints):
            warnings.append(f"no texture: {few} of {len(period.keypoints)} frames gave fewer than {min_keypoints} "
                            f"keypoints (blank, covered or defocused view?)")
        if period.rejected:
            warnings.append(f"{period.rejected} frame(s) rejected, last: {last_reject}")
        if period.jumps:
            warnings.append(f"{period.jumps} time jump(s), last: {period.last_jump}")
        if errors:
            return Report(ERROR, "; ".join(errors + warnings), values)
        if warnings:
            return Report(WARN, "; ".join(warnings), values)
        return Report(OK, f"processing at {period.processed / elapsed:.1f} Hz", values)
