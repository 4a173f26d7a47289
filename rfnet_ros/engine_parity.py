"""How closely an engine reproduces the PyTorch reference on real frames: keypoints, descriptors and matches.

It runs whole pipelines, so it sits a floor above them (not in engines/). Used by the parity tests and by
``rfnet-export --check``; the bounds live with the callers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rfnet_ros.config import FeatureConfig
from rfnet_ros.pipeline import FeaturePipeline


@dataclass
class Parity:
    """Agreement of an engine with the torch engine in fp32 (detector and descriptor) on a pair of frames.

    keypoints_matched: share of reference keypoints with an engine keypoint within 0.05 px; max_shift: the
    largest such distance (px) among them; keypoints_near: the share with one within 1 px (a detector in bf16
    moves sub-pixel places by more than 0.05 px); descriptor_cosine_min / _median: cosine of the engine's descriptor
    to the reference's, over the keypoints both found; match_agreement: |shared matches| / |union| of the
    mutual-nearest-neighbour matches of the two frames (as index pairs of the common keypoints).
    """

    keypoints: int
    keypoints_matched: float
    max_shift: float
    keypoints_near: float
    descriptor_cosine_min: float
    descriptor_cosine_median: float
    match_agreement: float

    def lines(self) -> list[str]:
        return [f"keypoints within 0.05 px: {self.keypoints_matched:.4f} of {self.keypoints} "
                f"(largest shift {self.max_shift:.2e} px); within 1 px: {self.keypoints_near:.4f}",
                f"descriptor cosine: min {self.descriptor_cosine_min:.5f}, median {self.descriptor_cosine_median:.6f}",
                f"match agreement: {self.match_agreement:.4f}"]


def _correspondence(reference: np.ndarray, other: np.ndarray, tolerance: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """For each reference keypoint the index of the nearest other keypoint (-1 beyond ``tolerance`` px) and the
    distance."""
    if len(reference) == 0 or len(other) == 0:
        return np.full(len(reference), -1), np.full(len(reference), np.inf)
    distance = np.linalg.norm(reference[:, None] - other[None], axis=2)
    nearest = distance.argmin(axis=1)
    best = distance[np.arange(len(reference)), nearest]
    return np.where(best <= tolerance, nearest, -1), best


def compare(config: FeatureConfig, frames: list[np.ndarray]) -> Parity:
    """Run ``config`` and the same settings on the torch engine in fp32 over two frames and compare."""
    reference = FeaturePipeline(dataclasses.replace(config, engine="torch", precision="fp32",
                                                    detector_precision="fp32"))
    candidate = FeaturePipeline(config)
    matched, near, shifts, cosines, agreements, total = [], [], [], [], [], 0
    results = []
    for frame in frames:
        ref, out = reference.process(frame), candidate.process(frame)
        index, distance = _correspondence(ref.features.keypoints, out.features.keypoints)
        found = index >= 0
        total += len(index)
        matched.append(found.sum())
        near.append((distance <= 1.0).sum())
        shifts.extend(distance[found].tolist())
        cosines.extend((ref.features.descriptors[found] * out.features.descriptors[index[found]]).sum(1).tolist())
        results.append((ref, out, index))
    for (_, _, index0), (ref1, out1, index1) in zip(results, results[1:]):
        reference_pairs = {(int(a), int(b)) for a, b in ref1.matches if index0[a] >= 0 and index1[b] >= 0}
        inverse0 = {int(j): i for i, j in enumerate(index0) if j >= 0}
        inverse1 = {int(j): i for i, j in enumerate(index1) if j >= 0}
        engine_pairs = {(inverse0[int(a)], inverse1[int(b)]) for a, b in out1.matches
                        if int(a) in inverse0 and int(b) in inverse1}
        union = reference_pairs | engine_pairs
        agreements.append(len(reference_pairs & engine_pairs) / len(union) if union else 1.0)
    cos = np.array(cosines) if cosines else np.array([1.0])
    return Parity(keypoints=total, keypoints_matched=float(np.sum(matched) / max(total, 1)),
                  max_shift=float(max(shifts, default=0.0)), keypoints_near=float(np.sum(near) / max(total, 1)),
                  descriptor_cosine_min=float(cos.min()),
                  descriptor_cosine_median=float(np.median(cos)), match_agreement=float(np.mean(agreements)))
