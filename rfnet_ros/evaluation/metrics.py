"""Matching metrics of one image pair under a known homography (pure numpy, plus cv2 for RANSAC).

Definitions (the design notes' evaluation vocabulary):

- Coordinates are (x, y) pixels with pixel centres at integers; an image of size (h, w) covers
  0 <= x <= w - 1, 0 <= y <= h - 1.
- Shared region: keypoints of image0 whose projection by H lands inside image1, and keypoints of image1
  whose projection by H^-1 lands inside image0 (points projected behind the camera, w <= 0, are outside).
- A match (i, j) is correct at t px when ||H(x0_i) - x1_j|| <= t.
- MMA@t = correct@t / matches over all matches (0 for a pair without matches), t = 1..10.
- Matching score = correct@3 matches with both keypoints in the shared region / keypoints in the shared
  region, the latter taken as the mean of both images' shared counts, (shared0 + shared1) / 2.
- Repeatability@3 = (shared keypoints of image0 with a shared keypoint of image1 within 3 px after projection,
  plus the same from image1 to image0) / (shared0 + shared1): the pooled fraction over both images.
- Homography accuracy@e: H estimated by cv2.findHomography (RANSAC, 3 px reprojection threshold) from the
  matches; the corner error is the mean distance between image0's 4 corners warped by the estimate and by
  the true H; accurate when it is at most e px. Fewer than 4 matches or a failed RANSAC: not accurate
  (corner error inf).
- Frame errors (methods that give each keypoint an orientation and a scale): for every shared keypoint of
  image0 whose nearest image1 keypoint lies within 3 px of its projection, the orientation error is the angle
  between image1's orientation and image0's carried by the local Jacobian J of H, and the scale error is
  |log2(s1 / (s0 * sqrt|det J|))|. Reported as medians (degrees, octaves) over those keypoints.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

MMA_THRESHOLDS = tuple(range(1, 11))
HA_THRESHOLDS = (1, 3, 5, 10)
MATCHING_SCORE_THRESHOLD = 3.0
REPEATABILITY_THRESHOLD = 3.0
RANSAC_THRESHOLD = 3.0


def warp_points(homography: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N, 2) points (x, y) -> (N, 2) projected points; points mapped to w <= 0 become NaN."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    projected = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.asarray(homography, np.float64).T
    w = projected[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = projected[:, :2] / w
    out[(w[:, 0] <= 1e-12)] = np.nan
    return out


def inside(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N,) bool: which (N, 2) points (x, y) lie in an image of ``size`` (height, width); NaN is outside."""
    h, w = size
    x, y = xy[:, 0], xy[:, 1]
    with np.errstate(invalid="ignore"):
        return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def image_corners(size: tuple[int, int]) -> np.ndarray:
    """(4, 2) corner pixel centres (x, y) of an image of ``size`` (height, width), clockwise from (0, 0)."""
    h, w = size
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def nearest_neighbour(points: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of (N, 2) points, the index of the nearest of (K, 2) targets and its distance, both (N,).

    With K = 0 every index is -1 and every distance inf.
    """
    if len(points) == 0 or len(targets) == 0:
        return np.full(len(points), -1, np.int64), np.full(len(points), np.inf)
    squared = ((points[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    index = squared.argmin(axis=1)
    return index, np.sqrt(squared[np.arange(len(points)), index])


def nearest_distance(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,) distance from each of (N, 2) points to the nearest of (K, 2) targets (inf when K = 0)."""
    return nearest_neighbour(points, targets)[1]


def corner_error(estimated: np.ndarray, true: np.ndarray, size0: tuple[int, int]) -> float:
    """Mean distance (px) between image0's 4 corners warped by ``estimated`` and by ``true``."""
    corners = image_corners(size0)
    diff = warp_points(estimated, corners) - warp_points(true, corners)
    error = float(np.linalg.norm(diff, axis=1).mean())
    return error if np.isfinite(error) else float("inf")


def estimate_homography(xy0: np.ndarray, xy1: np.ndarray,
                        threshold: float = RANSAC_THRESHOLD) -> tuple[np.ndarray | None, int]:
    """RANSAC homography from (M, 2) matched points and its inlier count; (None, 0) when it fails."""
    if len(xy0) < 4:
        return None, 0
    estimated, mask = cv2.findHomography(xy0.astype(np.float64), xy1.astype(np.float64), cv2.RANSAC, threshold)
    if estimated is None or estimated.shape != (3, 3):
        return None, 0
    return estimated, int(mask.sum()) if mask is not None else 0


def local_frame_change(homography: np.ndarray, xy: np.ndarray, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The local Jacobian of H at (N, 2) points as (rotation (N,) radians of the x axis, scale (N,) sqrt|det J|)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    base = warp_points(homography, xy)
    jx = (warp_points(homography, xy + [step, 0.0]) - base) / step
    jy = (warp_points(homography, xy + [0.0, step]) - base) / step
    rotation = np.arctan2(jx[:, 1], jx[:, 0])
    scale = np.sqrt(np.abs(jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0]))
    return rotation, scale


def frame_errors(keypoints0: np.ndarray, keypoints1: np.ndarray, orientations0: np.ndarray,
                 orientations1: np.ndarray, scales0: np.ndarray, scales1: np.ndarray, homography: np.ndarray,
                 size1: tuple[int, int], threshold: float = REPEATABILITY_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Orientation errors (degrees) and scale errors (octaves) of image0's repeated keypoints.

    orientations: (N,) radians in image coordinates (x right, y down); scales: (N,) any unit common to both
    images (a radius or a diameter). Returns two (R,) arrays over the repeated keypoints (see the module
    docstring).
    """
    kp0 = np.asarray(keypoints0, np.float64).reshape(-1, 2)
    kp1 = np.asarray(keypoints1, np.float64).reshape(-1, 2)
    projected = warp_points(homography, kp0)
    shared = inside(projected, size1)
    nearest, distance = nearest_neighbour(projected[shared], kp1)
    repeated = distance <= threshold
    index0, index1 = np.flatnonzero(shared)[repeated], nearest[repeated]
    rotation, scale = local_frame_change(homography, kp0[index0])
    angle = np.asarray(orientations1, np.float64)[index1] - np.asarray(orientations0, np.float64)[index0] - rotation
    angle_error = np.degrees(np.abs(np.angle(np.exp(1j * angle))))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(scales1, np.float64)[index1] / (np.asarray(scales0, np.float64)[index0] * scale)
        scale_error = np.abs(np.log2(ratio))
    return angle_error, scale_error


@dataclass
class PairMetrics:
    """Counts and ratios of one image pair (see the module docstring for the definitions).

    correct[t] and mma[t] are keyed by the threshold t in px; ha[e] by the corner-error threshold e in px.
    """

    keypoints0: int
    keypoints1: int
    shared0: int
    shared1: int
    matches: int
    correct: dict[int, int] = field(default_factory=dict)
    mma: dict[int, float] = field(default_factory=dict)
    correct_shared: int = 0
    matching_score: float = 0.0
    repeated: int = 0
    repeatability: float = 0.0
    inliers: int = 0
    corner_error: float = float("inf")
    ha: dict[int, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_pair(keypoints0: np.ndarray, keypoints1: np.ndarray, matches: np.ndarray, homography: np.ndarray,
                  size0: tuple[int, int], size1: tuple[int, int],
                  mma_thresholds: tuple[int, ...] = MMA_THRESHOLDS,
                  ha_thresholds: tuple[int, ...] = HA_THRESHOLDS,
                  matched_keypoints1: np.ndarray | None = None) -> PairMetrics:
    """Metrics of one pair.

    keypoints0: (N0, 2), keypoints1: (N1, 2) pixels (x, y); matches: (M, 2) int indices (into keypoints0,
    into keypoints1); homography: (3, 3) mapping image0 px to image1 px; size0, size1: (height, width).
    matched_keypoints1: (N1, 2), where the matches place image1's keypoints when the method refines them
    (match metrics and the homography use it; repeatability keeps the detections ``keypoints1``).
    """
    kp0 = np.asarray(keypoints0, np.float64).reshape(-1, 2)
    detected1 = np.asarray(keypoints1, np.float64).reshape(-1, 2)
    kp1 = detected1 if matched_keypoints1 is None else np.asarray(matched_keypoints1, np.float64).reshape(-1, 2)
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    homography = np.asarray(homography, np.float64)
    if matches.size and (matches[:, 0].max() >= len(kp0) or matches[:, 1].max() >= len(kp1) or matches.min() < 0):
        raise ValueError("matches: index out of range of the keypoints")

    kp0_in1 = warp_points(homography, kp0)
    kp1_in0 = warp_points(np.linalg.inv(homography), detected1)
    shared0, shared1 = inside(kp0_in1, size1), inside(kp1_in0, size0)
    n_shared0, n_shared1 = int(shared0.sum()), int(shared1.sum())

    error = np.linalg.norm(kp0_in1[matches[:, 0]] - kp1[matches[:, 1]], axis=1)
    error = np.where(np.isfinite(error), error, np.inf)
    n_matches = len(matches)
    correct = {t: int((error <= t).sum()) for t in mma_thresholds}
    mma = {t: correct[t] / n_matches if n_matches else 0.0 for t in mma_thresholds}

    both_shared = shared0[matches[:, 0]] & shared1[matches[:, 1]]
    correct_shared = int(((error <= MATCHING_SCORE_THRESHOLD) & both_shared).sum())
    shared_mean = (n_shared0 + n_shared1) / 2
    matching_score = correct_shared / shared_mean if shared_mean else 0.0

    repeated0 = nearest_distance(kp0_in1[shared0], detected1[shared1]) <= REPEATABILITY_THRESHOLD
    repeated1 = nearest_distance(kp1_in0[shared1], kp0[shared0]) <= REPEATABILITY_THRESHOLD
    repeated = int(repeated0.sum() + repeated1.sum())
    repeatability = repeated / (n_shared0 + n_shared1) if n_shared0 + n_shared1 else 0.0

    estimated, inliers = estimate_homography(kp0[matches[:, 0]], kp1[matches[:, 1]])
    error_corners = corner_error(estimated, homography, size0) if estimated is not None else float("inf")
    ha = {e: bool(error_corners <= e) for e in ha_thresholds}

    return PairMetrics(keypoints0=len(kp0), keypoints1=len(kp1), shared0=n_shared0, shared1=n_shared1,
                       matches=n_matches, correct=correct, mma=mma, correct_shared=correct_shared,
                       matching_score=matching_score, repeated=repeated, repeatability=repeatability,
                       inliers=inliers, corner_error=error_corners, ha=ha)
