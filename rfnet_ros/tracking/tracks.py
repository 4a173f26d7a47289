"""Track ids across frames: matched keypoints keep their track, the others start new ones.

A track is one physical point followed from frame to frame. Each frame's keypoints get a track id: a keypoint
matched to a keypoint of the previous frame inherits that keypoint's id, every other keypoint starts a track
with a new id. Ids count up from 0 and are never reused while a :class:`TrackBook` lives, also not across
:meth:`TrackBook.reset` (which ends every track, e.g. after a time jump).

A track's length is the number of consecutive frames it was seen in (1 for a keypoint seen once).

Statistics, over every track since start:

- mean length of the tracks that have ended (a track ends when its keypoint finds no match in the next frame,
  or at a reset); tracks still alive are not in it, but their count and mean length are reported beside it;
- share of tracks alive after ``ALIVE_AFTER`` frames: of the tracks whose fate at that age is known (they have
  reached ``ALIVE_AFTER`` frames, or ended before), the share that reached it. Young tracks still alive are
  left out, so the share does not drop while a sequence starts.

Plain numpy, no ROS.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

# The age (frames seen) in "share of tracks alive after N frames".
ALIVE_AFTER = 10


@dataclass(frozen=True)
class TrackStatistics:
    """Totals since start; ``mean_length`` and ``alive_share`` are 0.0 until something is known."""

    started: int  # tracks started (ids handed out)
    ended: int  # tracks ended
    active: int  # tracks alive in the last frame
    mean_length: float  # frames, over ended tracks
    active_mean_length: float  # frames so far, over the tracks alive in the last frame
    alive_share: float  # share of tracks that reached ALIVE_AFTER frames (of those whose fate is known)
    alive_known: int  # tracks whose fate at ALIVE_AFTER frames is known (the share's denominator)


class TrackBook:
    """Hands out track ids frame by frame and keeps track-length statistics (thread-safe statistics).

    ``update`` is called once per frame from one thread; ``statistics`` may be called from any thread.
    """

    def __init__(self, alive_after: int = ALIVE_AFTER):
        if alive_after < 1:
            raise ValueError(f"alive_after must be at least 1, got {alive_after}")
        self.alive_after = alive_after
        self._lock = threading.Lock()
        self._next_id = 0
        self.ids = np.zeros(0, np.uint64)  # track id of each keypoint of the last frame
        self.lengths = np.zeros(0, np.int64)  # frames seen, of each keypoint's track
        self._ended = 0
        self._ended_length_sum = 0
        self._reached = 0  # tracks that reached alive_after frames
        self._died_young = 0  # tracks that ended before alive_after frames

    def update(self, num_keypoints: int, matches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Track ids (N,) uint64 and lengths (N,) int64 of a new frame's ``num_keypoints`` keypoints.

        ``matches``: (M, 2) integer (index in the previous frame, index in this frame), one-to-one; an empty
        array for a frame that was not matched (every track ends, every keypoint starts one).
        """
        matches = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
        previous, current = matches[:, 0], matches[:, 1]
        if len(matches):
            if previous.min() < 0 or previous.max() >= len(self.ids):
                raise ValueError(f"match index into the previous frame out of range 0..{len(self.ids) - 1}")
            if current.min() < 0 or current.max() >= num_keypoints:
                raise ValueError(f"match index into the current frame out of range 0..{num_keypoints - 1}")
            if len(np.unique(previous)) != len(previous) or len(np.unique(current)) != len(current):
                raise ValueError("matches must be one-to-one (a keypoint matched twice)")
        ids = np.empty(num_keypoints, np.uint64)
        lengths = np.ones(num_keypoints, np.int64)
        ids[current] = self.ids[previous]
        lengths[current] = self.lengths[previous] + 1
        fresh = np.ones(num_keypoints, bool)
        fresh[current] = False
        ended = np.ones(len(self.ids), bool)
        ended[previous] = False
        with self._lock:
            count = int(fresh.sum())
            ids[fresh] = np.arange(self._next_id, self._next_id + count, dtype=np.uint64)
            self._next_id += count
            self._end(self.lengths[ended])
            self._reached += int(np.count_nonzero(lengths == self.alive_after))
            self.ids, self.lengths = ids, lengths
        return ids, lengths

    def reset(self) -> None:
        """End every track (the next frame starts new ones); ids keep counting up."""
        with self._lock:
            self._end(self.lengths)
            self.ids = np.zeros(0, np.uint64)
            self.lengths = np.zeros(0, np.int64)

    def _end(self, lengths: np.ndarray) -> None:
        self._ended += len(lengths)
        self._ended_length_sum += int(lengths.sum())
        self._died_young += int(np.count_nonzero(lengths < self.alive_after))

    def statistics(self) -> TrackStatistics:
        with self._lock:
            known = self._reached + self._died_young
            return TrackStatistics(
                started=self._next_id, ended=self._ended, active=len(self.lengths),
                mean_length=self._ended_length_sum / self._ended if self._ended else 0.0,
                active_mean_length=float(self.lengths.mean()) if len(self.lengths) else 0.0,
                alive_share=self._reached / known if known else 0.0, alive_known=known)
