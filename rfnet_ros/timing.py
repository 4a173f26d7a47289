"""Per-stage wall-clock timing: CUDA events on a GPU (one synchronisation per frame), perf_counter on a CPU."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class StageTimer:
    """Collects named stage durations in milliseconds for one frame."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        # (name, start, end): CUDA events or perf_counter seconds; (name, None, ms) for a stage added in ms.
        self._events: list[tuple[str, object, object]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
        else:
            start = time.perf_counter()
            yield
            end = time.perf_counter()
        self._events.append((name, start, end))

    def add(self, name: str, ms: float) -> None:
        """A stage timed elsewhere (e.g. on another thread before this frame reached the pipeline), in ms."""
        self._events.append((name, None, ms))

    def results(self) -> dict[str, float]:
        """Stage -> ms (stages run more than once add up); synchronises the GPU once when it timed a stage."""
        if self.cuda and any(start is not None for _, start, _ in self._events):
            torch.cuda.synchronize()
        out: dict[str, float] = {}
        for name, start, end in self._events:
            if start is None:  # added in ms
                ms = end
            else:
                ms = start.elapsed_time(end) if self.cuda else (end - start) * 1e3
            out[name] = out.get(name, 0.0) + ms
        return out
