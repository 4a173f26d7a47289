"""The newest-frame slot and the worker thread that empties it (plain Python: no rclpy, unit-tested alone).

Frames are processed newest-first: a producer (the node's image callback) puts each frame in a one-frame slot,
replacing a frame the worker has not taken yet (``offer`` says so, and the caller counts it as dropped); so a
slow consumer never builds a queue and latency stays bounded. One worker thread takes the newest frame and
hands it to the consumer together with the requests made since the last frame: restart matching (``reset``),
use new settings (``settings``). The consumer alone runs on the worker thread, so what it drives (the front
end) is never run concurrently.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Frame = TypeVar("Frame")


@dataclass(frozen=True)
class Requests:
    """What was asked since the last frame: forget the previous frame first; new settings (None: unchanged)."""

    reset: bool = False
    settings: Any = None


class NewestFrameWorker(Generic[Frame]):
    """A one-frame slot and its worker thread, which calls ``consume(frame, requests)`` for each frame it takes.

    ``consume`` should handle its own errors; one it raises ends the worker.
    """

    def __init__(self, consume: Callable[[Frame, Requests], None], name: str = "newest_frame_worker"):
        self._consume = consume
        self._lock = threading.Condition()
        self._frame: Frame | None = None
        self._reset = False
        self._settings: Any = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def offer(self, frame: Frame) -> bool:
        """Put ``frame`` in the slot; True when it replaced a frame the worker had not taken (a dropped frame)."""
        with self._lock:
            dropped = self._frame is not None
            self._frame = frame
            self._lock.notify()
        return dropped

    def request_reset(self) -> None:
        """Make the worker pass ``reset=True`` with the next frame it takes."""
        with self._lock:
            self._reset = True

    def request_settings(self, settings: Any) -> None:
        """Make the worker pass ``settings`` with the next frame it takes (a later request replaces it)."""
        with self._lock:
            self._settings = settings

    def stop(self, timeout: float) -> bool:
        """Stop taking frames and wait up to ``timeout`` s for the frame being consumed; False when it is still
        running then (it is abandoned: the thread is a daemon)."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._frame is None and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                frame, self._frame = self._frame, None
                requests = Requests(self._reset, self._settings)
                self._reset, self._settings = False, None
            self._consume(frame, requests)
