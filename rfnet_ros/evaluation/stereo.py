"""rfnet-eval's stereo set: left-right matching on rectified pairs with known disparity.

Each photo of the split gives one rectified pair at 480x640 (grey): the photo is a far wall at disparity
``FAR`` px and, in front of it, a board cut from the next photo of the split at disparity ``NEAR`` px, at a
place drawn with the seed; in the right image each layer lies its disparity to the left, on the same row. A
left keypoint's true disparity is its layer's.

Methods: a configuration file runs the stereo front end as stereo_node does
(:class:`rfnet_ros.tracking.stereo.StereoFrontEnd`: row and disparity constraint, mutual nearest neighbours
among the allowed pairs, sub-pixel disparity along the row); every other method (sift, orb, xfeat) extracts
both images and is matched by mutual nearest neighbours of its descriptors (L2, Hamming for ORB) among the
pairs the same constraint allows (``StereoConfig``'s row tolerance and disparity range), at its own keypoints.

Per pair: matches, correct matches (disparity within ``TOLERANCE`` px of the truth and rows within
``TOLERANCE`` px), their share, and the median absolute disparity error of all matches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rfnet_ros.config import StereoConfig
from rfnet_ros.evaluation.extractors import Extractor, RFNetExtractor
from rfnet_ros.evaluation.pairs import SIZE, cover_crop, photo_paths, read_gray
from rfnet_ros.tracking.stereo import StereoFrontEnd, stereo_candidates

FAR, NEAR = 16, 40
TOLERANCE = 1.0
_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)  # set bits of each byte


@dataclass
class StereoPair:
    """left, right: (H, W) uint8; disparity: (H, W) float32, the true disparity of each left pixel."""

    name: str
    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray


def _centre_crop(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo resized to cover ``size`` (h, w) and cropped to it at its centre."""
    resized, to_crop = cover_crop(photo, size)
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    return resized[y0:y0 + size[0], x0:x0 + size[1]]


def stereo_pair(name: str, wall: np.ndarray, board: np.ndarray, rng: np.random.Generator,
                size: tuple[int, int] = SIZE) -> StereoPair:
    """The two-layer pair of one photo (``wall``) and a board cut from ``board`` (both grey photos)."""
    height, width = size
    wide = _centre_crop(wall, (height, width + FAR))
    left, right = wide[:, :width].copy(), wide[:, FAR:].copy()  # right x = left x - FAR
    bh, bw = int(rng.integers(height // 3, height // 2)), int(rng.integers(width // 4, width // 3))
    texture = _centre_crop(board, (bh, bw))
    by, bx = int(rng.integers(0, height - bh)), int(rng.integers(NEAR, width - bw))
    left[by:by + bh, bx:bx + bw] = texture
    right[by:by + bh, bx - NEAR:bx - NEAR + bw] = texture
    disparity = np.full(size, FAR, np.float32)
    disparity[by:by + bh, bx:bx + bw] = NEAR
    return StereoPair(name, np.ascontiguousarray(left), np.ascontiguousarray(right), disparity)


def stereo_pairs(folder: Path, seed: int, size: tuple[int, int] = SIZE, max_photos: int | None = None
                 ) -> list[StereoPair]:
    """One pair per photo of ``folder``, the board cut from the next photo."""
    paths = photo_paths(folder, max_photos)
    rng = np.random.default_rng(seed)
    return [stereo_pair(path.stem, read_gray(path), read_gray(paths[(i + 1) % len(paths)]), rng, size)
            for i, path in enumerate(paths)]


def _constrained_mutual_nn(desc0: np.ndarray, desc1: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Mutual nearest neighbours (M, 2) among the ``allowed`` pairs: Hamming distance for binary (uint8)
    descriptors, L2 distance of the unit descriptors otherwise."""
    if len(desc0) == 0 or len(desc1) == 0:
        return np.zeros((0, 2), np.int64)
    if desc0.dtype == np.uint8:
        distance = _BITS[desc0[:, None, :] ^ desc1[None, :, :]].sum(axis=2, dtype=np.float64)
    else:
        a = desc0.reshape(len(desc0), -1).astype(np.float64)
        b = desc1.reshape(len(desc1), -1).astype(np.float64)
        a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-12
        b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-12
        distance = np.sqrt(np.clip(2.0 - 2.0 * a @ b.T, 0.0, None))
    distance[~allowed] = np.inf
    nearest01, nearest10 = distance.argmin(axis=1), distance.argmin(axis=0)
    index0 = np.arange(len(desc0))
    keep = (nearest10[nearest01] == index0) & np.isfinite(distance[index0, nearest01])
    return np.stack([index0[keep], nearest01[keep]], axis=1)


def match_pair(extractor: Extractor, pair: StereoPair, stereo: StereoConfig, front_end: StereoFrontEnd | None
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """(left points (M, 2), right points (M, 2) of the method's matches, ms for the pair)."""
    start = time.perf_counter()
    if front_end is not None:
        front_end.reset()
        frame = front_end.process(pair.left, pair.right, "bgr")
        left = frame.left.features.keypoints[frame.stereo_matches[:, 0]]
        right = frame.right.keypoints[frame.stereo_matches[:, 1]]
    else:
        features = [extractor.extract(image) for image in (pair.left, pair.right)]
        allowed = stereo_candidates(features[0].keypoints, features[1].keypoints, stereo.stereo_row_tolerance,
                                    stereo.min_disparity, stereo.max_disparity)
        matches = _constrained_mutual_nn(features[0].descriptors, features[1].descriptors, allowed)
        left, right = features[0].keypoints[matches[:, 0]], features[1].keypoints[matches[:, 1]]
    return np.asarray(left, np.float64), np.asarray(right, np.float64), (time.perf_counter() - start) * 1e3


def score_pair(pair: StereoPair, left: np.ndarray, right: np.ndarray) -> dict[str, Any]:
    height, width = pair.disparity.shape
    x = np.clip(np.rint(left[:, 0]).astype(int), 0, width - 1)
    y = np.clip(np.rint(left[:, 1]).astype(int), 0, height - 1)
    error = np.abs(left[:, 0] - right[:, 0] - pair.disparity[y, x])
    correct = (error <= TOLERANCE) & (np.abs(left[:, 1] - right[:, 1]) <= TOLERANCE)
    return {"matches": int(len(left)), "correct": int(correct.sum()),
            "correct_ratio": float(correct.mean()) if len(left) else 0.0,
            "median_disparity_error": float(np.median(error)) if len(left) else float("nan")}


def evaluate_stereo(extractors: list[Extractor], pairs: list[StereoPair], stereo: StereoConfig | None = None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(one record per method and pair, one summary row per method)."""
    stereo = stereo or StereoConfig()
    records, rows = [], []
    for extractor in extractors:
        front_end = StereoFrontEnd(extractor.config, stereo) if isinstance(extractor, RFNetExtractor) else None
        method_records, times = [], []
        for pair in pairs:
            left, right, ms = match_pair(extractor, pair, stereo, front_end)
            method_records.append({"method": extractor.name, "pair": pair.name, **score_pair(pair, left, right)})
            times.append(ms)
        matches = sum(r["matches"] for r in method_records)
        correct = sum(r["correct"] for r in method_records)
        rows.append({"method": extractor.name, "pairs": len(pairs),
                     "matches_per_pair": matches / max(len(pairs), 1),
                     "correct_per_pair": correct / max(len(pairs), 1),
                     "correct_ratio": correct / matches if matches else 0.0,
                     "median_disparity_error": float(np.nanmedian([r["median_disparity_error"]
                                                                   for r in method_records])),
                     "ms_per_pair": float(np.median(times)) if times else 0.0})
        records += method_records
    return records, rows


def format_stereo(rows: list[dict[str, Any]]) -> str:
    """The stereo set's table."""
    header = ["method", "pairs", "matches/pair", "correct/pair", "correct ratio", "median |d error| px", "ms/pair"]
    body = [[r["method"], str(r["pairs"]), f"{r['matches_per_pair']:.1f}", f"{r['correct_per_pair']:.1f}",
             f"{r['correct_ratio']:.3f}", f"{r['median_disparity_error']:.3f}", f"{r['ms_per_pair']:.0f}"]
            for r in rows]
    widths = [max(len(c) for c in column) for column in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
             for cells in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"stereo ({FAR} and {NEAR} px layers, correct within {TOLERANCE:g} px)\n" + "\n".join(lines)
