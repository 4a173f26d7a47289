"""Mutual nearest-neighbour matching of L2-normalised descriptors, on the descriptors' device."""
from __future__ import annotations

import torch


def descriptor_distances(desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
    """L2 distances (N0, N1) between unit descriptors (N0, D) or (N0, H0, D) and (N1, D) or (N1, H1, D).

    With several descriptions per keypoint (H > 1: one per frame hypothesis, rfnet_ros.model.frames), the
    distance of two keypoints is the smallest over all pairs of their descriptions.
    """
    n0, n1 = desc0.shape[0], desc1.shape[0]
    a = desc0.float().reshape(n0, -1, desc0.shape[-1])
    b = desc1.float().reshape(n1, -1, desc1.shape[-1])
    similarity = (a.flatten(0, 1) @ b.flatten(0, 1).T).view(n0, a.shape[1], n1, b.shape[1]).amax(dim=(1, 3))
    return (2.0 - 2.0 * similarity).clamp_min(0.0).sqrt()


def match_mutual_nn(desc0: torch.Tensor, desc1: torch.Tensor, max_distance: float = 2.0,
                    ratio: float = 1.0, allowed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Match (N0, D) or (N0, H0, D) against (N1, D) or (N1, H1, D) unit descriptors (``descriptor_distances``).

    A pair (i, j) is kept when j is i's nearest neighbour and i is j's, their L2 distance is at most
    ``max_distance`` and, if ``ratio`` < 1, the nearest distance is below ``ratio`` times the second nearest
    (in both directions). ``allowed`` (N0, N1) bool, when given, limits the candidates (e.g. to a search
    window around a predicted position, or to a stereo pair's epipolar row): a pair it excludes is neither a
    match nor anyone's nearest neighbour. Returns indices (M, 2) int64 (index into desc0, index into desc1)
    and distances (M,).
    """
    if desc0.shape[0] == 0 or desc1.shape[0] == 0:
        return desc0.new_zeros((0, 2), dtype=torch.long), desc0.new_zeros((0,), dtype=torch.float32)
    distance = descriptor_distances(desc0, desc1)
    if allowed is not None:
        distance = distance.masked_fill(~allowed, float("inf"))
    nn01 = distance.argmin(dim=1)
    nn10 = distance.argmin(dim=0)
    index0 = torch.arange(desc0.shape[0], device=desc0.device)
    keep = nn10[nn01] == index0
    best = distance[index0, nn01]
    keep &= best <= max_distance
    if ratio < 1.0:
        # Each direction's test needs a second candidate on that side.
        if distance.shape[1] > 1:
            keep &= best < ratio * distance.topk(2, dim=1, largest=False).values[:, 1]
        if distance.shape[0] > 1:
            keep &= best < ratio * distance.topk(2, dim=0, largest=False).values[1][nn01]
    matches = torch.stack([index0[keep], nn01[keep]], dim=1)
    return matches, best[keep]
