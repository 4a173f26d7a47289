"""A second, narrow alignment of the refined matches whose windows are wide: wide windows that span a depth edge.

Keypoints of flat, low-texture surroundings have patches of up to a hundred px, and match refinement
(``refine_matches``) aligns windows as wide as the patch, capped at ``refine_max_window``. On a scene with
depth such a window often holds another surface beside the keypoint's own (a nearer panel beside a point of
the far wall), and its alignment follows whichever dominates the window: the keypoint is moved by the other
surface's motion, 3-10 px from its true place and along its flow line, where no epipolar check can see it
(the parallax set, "Front end on a scene with depth" in the README). On a plane the wide window is right, and
narrow windows alone place matches worse (``refine_max_window: 16``: validation MMA@3 0.877 -> 0.834).

So each match whose window is wider than ``NarrowCheck.window`` is aligned again from its refined place, in a
window of that half-width. Where the narrow window aligns (``refine_matches``'s checks: correlation, shift,
scale change) more than ``tolerance`` px away, the surroundings next to the keypoint moved otherwise than
the wide window as a whole, and the narrow window's place is published; elsewhere the wide window's place
stands. Started from the refined place rather than the detector's, the narrow window moves only where the
wide place does not fit the keypoint's own surroundings: started from the detector's place it also moved the
correct matches of low-texture photos, whose narrow windows hold little to align on (validation HA@3 0.990
-> 0.970, four pairs of low-texture photos). The narrow windows are sampled 16 x 16 with 128 compared
samples (2 px per sample over 32 px; the wide windows span up to 96 px, 3 px per sample with the 32 a side of
lite_native.yaml, the file that checks them).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from rfnet_ros.matching.refinement import FramedKeypoints, RefinementSettings, refine_matches, window_half_widths


@dataclass(frozen=True)
class NarrowCheck:
    """window: half-width in px of the narrow windows (matches whose refinement window is not wider are not
    checked); size, samples: the narrow windows' side in samples and the samples each step compares
    (``RefinementSettings``); tolerance: the largest distance in px between the wide and the narrow window's
    places of a match that still counts as agreement."""

    window: float = 16.0
    size: int = 16
    samples: int = 128
    tolerance: float = 1.0


def check_wide_windows(first: FramedKeypoints, second: FramedKeypoints, refined: torch.Tensor,
                       settings: RefinementSettings, check: NarrowCheck = NarrowCheck()) -> torch.Tensor:
    """The places (M, 2) of M matches that ``refine_matches(first, second, settings)`` placed at ``refined``
    (M, 2), each whose window is wider than ``check.window`` aligned again in a narrow window from there,
    and moved to the narrow window's place where that aligned more than ``check.tolerance`` px away."""
    places = refined.clone()
    index = (window_half_widths(first.radius, settings) > check.window).nonzero().squeeze(1)
    if index.numel() == 0:
        return places
    narrow = dataclasses.replace(settings, max_window=check.window, size=check.size, samples=check.samples)
    start = second.take(index)
    start = dataclasses.replace(start, xy=refined[index].to(start.xy.dtype))
    narrow_places, aligned = refine_matches(first.take(index), start, narrow)
    moved = aligned & ((narrow_places - refined[index]).norm(dim=1) > check.tolerance)
    places[index[moved]] = narrow_places[moved].to(places.dtype)
    return places
