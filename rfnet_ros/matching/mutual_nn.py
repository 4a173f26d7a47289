"""Mutual nearest-neighbour matching of L2-normalised descriptors, on the descriptors' device."""
from __future__ import annotations

import torch


def match_mutual_nn(desc0: torch.Tensor, desc1: torch.Tensor, max_distance: float = 2.0,
                    ratio: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Match (N0, D) against (N1, D) unit descriptors.

    A pair (i, j) is kept when j is i's nearest neighbour and i is j's, their L2 distance is at most
    ``max_distance`` and, if ``ratio`` < 1, the nearest distance is below ``ratio`` times the second nearest
    (in both directions). Returns indices (M, 2) int64 (index into desc0, index into desc1) and distances (M,).
    """
    if desc0.shape[0] == 0 or desc1.shape[0] == 0:
        return desc0.new_zeros((0, 2), dtype=torch.long), desc0.new_zeros((0,), dtype=torch.float32)
    similarity = desc0.float() @ desc1.float().T
    distance = (2.0 - 2.0 * similarity).clamp_min(0.0).sqrt()
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
