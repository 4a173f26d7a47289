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
# Diagnostics warn of falling behind when more than this share of the period's frames was dropped.
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
    jumps: int = 0
    last_jump: str = ""
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGE_NAMES})
    keypoints: list[int] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)


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
        self.last_reject_reason = ""
        self.last_error = ""
        self._last_received: float | None = None

    def on_received(self, now: float) -> None:
        with self._lock:
            self.received += 1
            self._period.received += 1
            self._last_received = now

    def on_dropped(self) -> None:
        """A received frame was replaced by a newer one before it was processed."""
        with self._lock:
            self.dropped += 1
            self._period.dropped += 1

    def on_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self._period.rejected += 1
            self.last_reject_reason = reason

    def on_error(self, error: str) -> None:
        with self._lock:
            self.errors += 1
            self._period.errors += 1
            self.last_error = error

    def on_time_jump(self, description: str) -> None:
        with self._lock:
            self.time_jumps += 1
            self._period.jumps += 1
            self._period.last_jump = description

    def on_processed(self, stage_ms: dict[str, float], keypoints: int, matches: int | None) -> None:
        """A frame went through; ``matches`` is None for a frame without a previous one."""
        with self._lock:
            self.processed += 1
            period = self._period
            period.processed += 1
            for stage, values in period.stage_ms.items():
                if stage in stage_ms:
                    values.append(stage_ms[stage])
            period.keypoints.append(keypoints)
            if matches is not None:
                period.matches.append(matches)

    def report(self, now: float, stall_timeout: float, context: dict[str, str] | None = None) -> Report:
        """Summarise the period since the last report (and start a new one); ``context`` adds fixed keys."""
        with self._lock:
            period, self._period = self._period, _Period(start=now)
            totals = {"frames_received": self.received, "frames_processed": self.processed,
                      "frames_dropped": self.dropped, "frames_rejected": self.rejected,
                      "inference_errors": self.errors, "time_jumps": self.time_jumps}
            last_received, last_reject, last_error = self._last_received, self.last_reject_reason, self.last_error
        elapsed = max(now - period.start, 1e-9)
        values = {
            "input_rate_hz": f"{period.received / elapsed:.2f}",
            "output_rate_hz": f"{period.processed / elapsed:.2f}",
            **{key: str(value) for key, value in totals.items()},
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
        if period.errors:
            errors.append(f"{period.errors} inference failure(s), last: {last_error}")
        if last_received is None:
            warnings.append("no image received yet")
        elif now - last_received > stall_timeout:
            warnings.append(f"input stalled: no image for {now - last_received:.1f} s")
        if period.received >= 2 and period.dropped > DROP_WARN_SHARE * period.received:
            warnings.append(f"falling behind: dropped {period.dropped} of {period.received} frames")
        if period.rejected:
            warnings.append(f"{period.rejected} frame(s) rejected, last: {last_reject}")
        if period.jumps:
            warnings.append(f"{period.jumps} time jump(s), last: {period.last_jump}")
        if errors:
            return Report(ERROR, "; ".join(errors + warnings), values)
        if warnings:
            return Report(WARN, "; ".join(warnings), values)
        return Report(OK, f"processing at {period.processed / elapsed:.1f} Hz", values)
