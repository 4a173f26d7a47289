"""The per-frame cost bound of the feature node: settings whose cost the node cannot carry are refused.

Plain Python (no rclpy), unit-tested without a ROS graph. Two rules:

1. ``model_height x model_width`` may not exceed ``max_model_pixels``, at start-up and at run time: the
   detector's activations, and so the node's memory, grow with the model size (about 0.4 GB per million model
   pixels on the CPU), and a 2160x3840 model took several GB.
2. At run time, a change that makes frames dearer is refused when the frame time it predicts exceeds
   ``output_stall_timeout``: the node would stall. The prediction scales the stage times measured with the
   settings of the last processed frames (the median of the last frames), whatever changes were accepted
   since: detect by the model pixel ratio, describe by the ratio of descriptions per frame (top_k, three per
   keypoint with second peaks), match by that ratio squared; the other stages are kept. The true cost grows
   faster than this at large sizes (caches, memory), so it is a lower bound. Before the first frame only
   rule 1 applies.

ROS sets the parameters of one request one at a time, so ``model_height`` and ``model_width`` given together
are judged one after the other, each with the other's value at the time.
"""
from __future__ import annotations

import statistics
from collections import deque

from rfnet_ros.config import FeatureConfig

# Frames whose stage times make up the measurement.
WINDOW = 10
SCALED_STAGES = ("detect", "describe", "match")


def model_pixels(feature: FeatureConfig) -> int:
    return feature.model_height * feature.model_width


def model_size_problem(feature: FeatureConfig, max_model_pixels: int) -> str | None:
    """Rule 1: why the model size is refused (naming the settings), or None."""
    if model_pixels(feature) > max_model_pixels:
        return (f"model_height x model_width: {feature.model_height}x{feature.model_width} = {model_pixels(feature)} "
                f"pixels exceeds max_model_pixels {max_model_pixels}")
    return None


def _descriptions(feature: FeatureConfig) -> int:
    return feature.top_k * feature.descriptions_per_keypoint


class FrameCost:
    """Stage times measured with one set of settings, and what they predict for others (rule 2)."""

    def __init__(self):
        self._settings: FeatureConfig | None = None
        self._frames: deque[dict[str, float]] = deque(maxlen=WINDOW)

    def observe(self, settings: FeatureConfig, stage_ms: dict[str, float]) -> None:
        """Stage times (ms, per pipeline stage) of a frame processed with ``settings``."""
        if settings != self._settings:
            self._settings = settings
            self._frames.clear()
        self._frames.append({stage: ms for stage, ms in stage_ms.items() if stage != "total"})

    def predict_ms(self, settings: FeatureConfig) -> float | None:
        """Predicted ms per frame with ``settings``, from the last measurements (None: none yet)."""
        measured = self._settings
        if measured is None or not self._frames:
            return None
        stages = {stage for frame in self._frames for stage in frame}
        median = {stage: statistics.median(frame.get(stage, 0.0) for frame in self._frames) for stage in stages}
        pixels = model_pixels(settings) / model_pixels(measured)
        descriptions = _descriptions(settings) / _descriptions(measured)
        scale = {"detect": pixels, "describe": descriptions, "match": descriptions ** 2}
        return sum(ms * scale.get(stage, 1.0) for stage, ms in median.items())

    def change_problem(self, current: FeatureConfig, new: FeatureConfig, output_stall_timeout: float) -> str | None:
        """Rule 2: why the change from ``current`` to ``new`` is refused, or None."""
        predicted = self.predict_ms(new)
        if predicted is None or predicted <= output_stall_timeout * 1e3:
            return None
        before = self.predict_ms(current)
        if predicted <= before:
            return None  # not dearer than now: refusing it would not help
        return (f"predicted {predicted / 1e3:.1f} s per frame with these settings ({before / 1e3:.2f} s with the "
                f"current ones) exceeds output_stall_timeout {output_stall_timeout:g} s")
