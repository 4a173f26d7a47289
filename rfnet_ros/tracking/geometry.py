"""Geometric check of frame-to-frame matches: RANSAC (OpenCV) keeps the matches one two-view model explains.

- ``fundamental``: the epipolar geometry of a moving camera in a static scene (cv2.findFundamentalMat).
  The general model for visual odometry. A match is kept when its points lie within ``threshold`` px of
  their epipolar lines. It cannot reject a wrong match that happens to lie along its epipolar line, and on
  a flat scene (one plane) the epipole is free, so RANSAC may place it where a group of wrong matches that
  move together fits too: use ``homography`` for such scenes.
- ``homography``: one plane, or a camera that only rotates (cv2.findHomography). Stricter: a match is kept
  when the homography maps it within ``threshold`` px (reprojection error in the current frame).
- ``off``: every match is kept.

Both use OpenCV's USAC framework (cv2.USAC_DEFAULT: RANSAC with local optimisation and a degeneracy
check) where the OpenCV has it (4.5 and later), else classic RANSAC. Classic RANSAC keeps the consensus of
a model fitted to a minimal sample: on synthetic two-view data with 0.3 px noise it dropped up to 8% of the
correct matches at a 2 px threshold, where USAC dropped none. USAC fails (an OpenCV assertion) on some
frames of a camera that does not move, where most matches move by hundredths of a pixel and the epipolar
geometry is undefined (frame 94 of vtest.avi): those frames are checked with classic RANSAC instead.

Points are pixel coordinates; where the camera is calibrated they should be undistorted pixels (the models
hold for a pinhole camera), which is what :class:`~rfnet_ros.tracking.tracker.FeatureTracker` passes.

Too few matches: with fewer than ``min_matches`` matches (and never fewer than the model's minimal sample,
8 for the fundamental matrix, 4 for a homography) no model is fitted and **every match is rejected**. A
handful of matches without geometric support is more often wrong than right, and a wrong match that passes
would hand a track id to another physical point; rejecting them only starts new tracks. OpenCV itself
silently switches from RANSAC to least-median fitting below 15 points for the fundamental matrix, which is
why the default minimum is 15.

Deterministic: OpenCV seeds its RANSAC sampling with a fixed state, so the same matches give the same result.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rfnet_ros.config import GEOMETRIC_CHECKS as MODELS

# The smallest sample each model can be fitted to.
MINIMAL_SAMPLE = {"fundamental": 8, "homography": 4}
MAX_ITERATIONS = 2000
# RANSAC flavours, first choice first: USAC with local optimisation (OpenCV 4.5 and later), classic RANSAC.
FUNDAMENTAL_METHODS = tuple(m for m in (getattr(cv2, "USAC_DEFAULT", None), cv2.FM_RANSAC) if m is not None)
HOMOGRAPHY_METHODS = tuple(m for m in (getattr(cv2, "USAC_DEFAULT", None), cv2.RANSAC) if m is not None)


@dataclass(frozen=True)
class CheckResult:
    """inliers: (M,) bool, which matches pass; status: "checked", "too few" or "off"."""

    inliers: np.ndarray
    status: str

    @property
    def ratio(self) -> float:
        """Share of matches kept (0.0 when there were none)."""
        return float(self.inliers.mean()) if len(self.inliers) else 0.0


def check_matches(points0: np.ndarray, points1: np.ndarray, model: str = "fundamental", threshold: float = 2.0,
                  confidence: float = 0.999, min_matches: int = 15) -> CheckResult:
    """Which of the matches ``points0[i] <-> points1[i]`` ((M, 2) float, (x, y) px) one ``model`` explains."""
    if model not in MODELS:
        raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
    points0 = np.ascontiguousarray(points0, dtype=np.float64).reshape(-1, 2)
    points1 = np.ascontiguousarray(points1, dtype=np.float64).reshape(-1, 2)
    if len(points0) != len(points1):
        raise ValueError(f"{len(points0)} points in the first frame but {len(points1)} in the second")
    count = len(points0)
    if model == "off":
        return CheckResult(np.ones(count, bool), "off")
    if count < max(min_matches, MINIMAL_SAMPLE[model]):
        return CheckResult(np.zeros(count, bool), "too few")
    for method in FUNDAMENTAL_METHODS if model == "fundamental" else HOMOGRAPHY_METHODS:
        try:
            if model == "fundamental":
                _, mask = cv2.findFundamentalMat(points0, points1, method, threshold, confidence, MAX_ITERATIONS)
            else:
                _, mask = cv2.findHomography(points0, points1, method, threshold, maxIters=MAX_ITERATIONS,
                                             confidence=confidence)
            break
        except cv2.error:  # USAC on a degenerate frame (see above): the next method
            mask = None
    if mask is None:  # degenerate sample set: no model found
        return CheckResult(np.zeros(count, bool), "checked")
    return CheckResult(mask.ravel().astype(bool), "checked")
