"""Pairing the two cameras' images of a stereo node by header stamp, and what to report about each camera.

Plain Python (no rclpy), unit-tested with a fake clock. Each camera's accepted images are offered with their
stamp; an image whose stamp lies within ``tolerance`` seconds of a waiting image of the other camera makes a
pair with the nearest such one (``tolerance`` 0: equal stamps only). Pairs come out oldest stamp first and
never go back in time: waiting images older than a pair's stamp can no longer pair and are dropped, counted
per camera as without a partner, and so is the oldest waiting image when more than ``WAITING`` wait.

``report`` says, per camera: received, rejected (with the last reason), without a partner, seconds since its
last image; and what is wrong:

- one camera silent while the other's images arrive (at least ``SILENT_AFTER`` of them since its last image):
  WARN naming the silent camera, ERROR once it has been silent for ``stall_timeout`` (no stereo output);
- both cameras sending but their stamps not pairing within the tolerance: WARN with the nearest gap seen.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SIDES = ("left", "right")
# Images of one camera kept waiting for a partner.
WAITING = 10
# Images of the other camera received since a camera's last image that make it "silent".
SILENT_AFTER = 2


@dataclass
class _Camera:
    """One camera's waiting images (stamp ns, image) and counters."""

    waiting: deque = field(default_factory=lambda: deque())
    received: int = 0
    rejected: int = 0
    unpaired: int = 0
    last_reject: str = ""
    last_arrival: float | None = None
    since_other: int = 0  # images of the other camera since this camera's last image
    period_unpaired: int = 0


@dataclass(frozen=True)
class Pair:
    """Two images of one stamp: the left's stamp (ns), and the items offered for each camera."""

    stamp_ns: int
    left: Any
    right: Any


@dataclass
class SyncReport:
    """Errors and warnings (one line each) and key -> value strings for diagnostics."""

    errors: list[str]
    warnings: list[str]
    values: dict[str, str]


class StereoSync:
    """Pairs left and right images by stamp (module docstring); thread-safe."""

    def __init__(self, tolerance: float, now: float):
        self.tolerance = tolerance
        self._lock = threading.Lock()
        self._cameras = {side: _Camera() for side in SIDES}
        self._start = now
        self._pairs = 0
        self._period_pairs = 0
        self._nearest_gap_ns: int | None = None  # the nearest stamps of the two cameras that did not pair

    def on_rejected(self, side: str, reason: str, now: float) -> None:
        """An image of ``side`` was received but could not be converted."""
        with self._lock:
            camera = self._arrived(side, now)
            camera.rejected += 1
            camera.last_reject = reason

    def offer(self, side: str, stamp_ns: int, item: Any, now: float) -> Pair | None:
        """An accepted image of ``side``; returns the pair it completes, or None while it waits."""
        with self._lock:
            camera = self._arrived(side, now)
            other = self._cameras[SIDES[1 - SIDES.index(side)]]
            tolerance_ns = round(self.tolerance * 1e9)
            nearest = min(other.waiting, key=lambda waiting: abs(waiting[0] - stamp_ns), default=None)
            if nearest is not None and abs(nearest[0] - stamp_ns) <= tolerance_ns:
                while other.waiting[0] is not nearest:
                    self._drop(other)
                other.waiting.popleft()
                while camera.waiting and camera.waiting[0][0] <= stamp_ns:
                    self._drop(camera)
                self._pairs += 1
                self._period_pairs += 1
                left, right = (item, nearest[1]) if side == "left" else (nearest[1], item)
                return Pair(stamp_ns if side == "left" else nearest[0], left, right)
            if nearest is not None:
                gap = abs(nearest[0] - stamp_ns)
                self._nearest_gap_ns = gap if self._nearest_gap_ns is None else min(self._nearest_gap_ns, gap)
            camera.waiting.append((stamp_ns, item))
            if len(camera.waiting) > WAITING:
                self._drop(camera)
            return None

    def _arrived(self, side: str, now: float) -> _Camera:
        camera = self._cameras[side]
        camera.received += 1
        camera.last_arrival = now
        camera.since_other = 0
        self._cameras[SIDES[1 - SIDES.index(side)]].since_other += 1
        return camera

    @staticmethod
    def _drop(camera: _Camera) -> None:
        camera.waiting.popleft()
        camera.unpaired += 1
        camera.period_unpaired += 1

    def report(self, now: float, stall_timeout: float) -> SyncReport:
        """What to report since the last call (module docstring)."""
        errors, warnings, values = [], [], {"pairs": str(self._pairs), "sync_tolerance_s": f"{self.tolerance:g}"}
        with self._lock:
            cameras = {side: (camera.received, camera.rejected, camera.unpaired, camera.last_reject,
                              camera.last_arrival, camera.since_other, camera.period_unpaired)
                       for side, camera in self._cameras.items()}
            period_pairs, nearest_gap = self._period_pairs, self._nearest_gap_ns
            self._period_pairs, self._nearest_gap_ns = 0, None
            for camera in self._cameras.values():
                camera.period_unpaired = 0
        for index, (side, (received, rejected, unpaired, last_reject, last, since_other, _)) in \
                enumerate(cameras.items()):
            other = SIDES[1 - index]
            silent_for = now - (last if last is not None else self._start)
            values.update({f"{side}_frames_received": str(received), f"{side}_frames_rejected": str(rejected),
                           f"{side}_frames_without_partner": str(unpaired),
                           f"{side}_last_reject_reason": last_reject,
                           f"{side}_last_image_age_s": f"{silent_for:.2f}" if last is not None else "never"})
            other_last = cameras[other][4]
            if since_other >= SILENT_AFTER and other_last is not None and now - other_last <= stall_timeout:
                what = f"{side} camera silent: no image for {silent_for:.1f} s while {other} images arrive"
                if silent_for > stall_timeout:
                    errors.append(f"{what} (stall_timeout {stall_timeout:g} s): no stereo output")
                else:
                    warnings.append(f"{what} ({since_other} without a partner)")
        unpaired = {side: values[6] for side, values in cameras.items()}
        if not errors and not warnings and period_pairs == 0 and all(unpaired.values()):
            gap = f"; nearest stamps {nearest_gap * 1e-9:.4f} s apart" if nearest_gap is not None else ""
            warnings.append(f"left and right stamps do not pair: {unpaired['left']} left and {unpaired['right']} "
                            f"right images without a partner (sync_tolerance {self.tolerance:g} s{gap})")
        return SyncReport(errors, warnings, values)
