"""Mutual nearest-neighbour matching of L2-normalised descriptors, on the descriptors' device."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rfnet_ros.threads import parallel_map, thread_blocks

MIN_BLOCK = 256  # fewest rows or columns worth a thread of their own (descriptor_similarity, match_mutual_nn)


def _distinct_rows(desc: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(N, H, D) descriptions -> (N + R, D) rows and, per further hypothesis h = 1..H-1, the keypoints (in
    order) whose description h is among the rows: each keypoint's first description, then hypothesis 1's
    that differ from their first, then hypothesis 2's, ... (the pipeline repeats the first description where
    a keypoint has no second peak). Within one hypothesis each keypoint appears at most once."""
    n, hypotheses = desc.shape[:2]
    if hypotheses == 1:
        return desc[:, 0], []
    distinct = (desc[:, 1:] != desc[:, :1]).any(dim=-1)  # (N, H - 1)
    owners = [distinct[:, h].nonzero().squeeze(1) for h in range(hypotheses - 1)]
    return torch.cat([desc[:, 0], *(desc[owner, h + 1] for h, owner in enumerate(owners))]), owners


def _fold_hypotheses(similarity: torch.Tensor, count: int, owners: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Similarities with ``count`` first descriptions then further ones (``_distinct_rows``' owners) along
    ``dim`` -> the largest over each keypoint's descriptions (``count`` along ``dim``)."""
    best = similarity.narrow(dim, 0, count)
    if not any(len(owner) for owner in owners):
        return best
    best = best.clone()  # written below; the first block of similarity stays as it was
    start = count
    for owner in owners:
        further = similarity.narrow(dim, start, len(owner))
        best.index_copy_(dim, owner, torch.maximum(best.index_select(dim, owner), further))
        start += len(owner)
    return best


def _argmax(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Index of the largest value along ``dim`` (the first of equal ones) of a 2-D map. On the CPU NumPy's:
    several times faster than PyTorch's on one thread here (a 491 x 488 map: 0.03 against 0.23 ms along the
    rows, 0.11 against 0.36 down the columns)."""
    if values.device.type == "cpu" and values.dtype == torch.float32:
        return torch.from_numpy(values.numpy().argmax(axis=dim))
    return values.argmax(dim=dim)


def descriptor_distances(desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
    """L2 distances (N0, N1) between unit descriptors (N0, D) or (N0, H0, D) and (N1, D) or (N1, H1, D).

    With several descriptions per keypoint (H > 1: one per frame hypothesis, rfnet_ros.model.frames), the
    distance of two keypoints is the smallest over all pairs of their descriptions (``descriptor_similarity``).
    """
    return _distance(descriptor_similarity(desc0, desc1))


def descriptor_similarity(desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (N0, N1) of unit descriptors (N0, D) or (N0, H0, D) and (N1, D) or (N1, H1, D): for
    keypoints with several descriptions the largest over all pairs of them.

    Repeated descriptions (a keypoint without a second peak carries copies of its first) are compared once:
    most keypoints have one distinct description, so this takes about a quarter of the products of all
    H0 x H1 pairs.
    """
    n0, n1 = desc0.shape[0], desc1.shape[0]
    rows0, owners0 = _distinct_rows(desc0.float().reshape(n0, -1, desc0.shape[-1]))
    rows1, owners1 = _distinct_rows(desc1.float().reshape(n1, -1, desc1.shape[-1]))

    # Blocks of rows side by side on the engines' threads (rfnet_ros.threads): the product and the
    # column-wise reduction take most of the matching's time, each on one thread.
    best = _in_blocks(lambda rows: _fold_hypotheses(rows0[rows] @ rows1.T, n1, owners1, 1), len(rows0))
    return _fold_hypotheses(best, n0, owners0, 0)


def _in_blocks(function: Callable[[slice], torch.Tensor], length: int) -> torch.Tensor:
    """``function`` of ``length`` rows (or columns) in blocks side by side (``thread_blocks``, none under
    ``MIN_BLOCK``), its results joined along the first axis; one call on all of them when one block."""
    blocks = thread_blocks(length, MIN_BLOCK)
    return torch.cat(parallel_map(function, blocks)) if len(blocks) > 1 else function(slice(None))


def _distance(similarity: torch.Tensor) -> torch.Tensor:
    """L2 distance of unit vectors from their cosine similarity."""
    return (2.0 - 2.0 * similarity).clamp_min(0.0).sqrt()


def _owners(count: int, owners: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The keypoint of each of ``_distinct_rows``' rows: 0..count-1, then each further hypothesis' owners."""
    return torch.cat([torch.arange(count, device=device), *owners])


def _best_of_keypoints(values: torch.Tensor, partners: torch.Tensor, count: int, owners: list[torch.Tensor]
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per keypoint (``count``) the largest of its rows' ``values`` and the ``partners`` entry of that row, rows
    in ``_distinct_rows``' order; of equal values the first hypothesis's."""
    best, partner = values[:count].clone(), partners[:count].clone()
    start = count
    for owner in owners:
        further, their = values[start:start + len(owner)], partners[start:start + len(owner)]
        better = further > best[owner]
        best[owner[better]], partner[owner[better]] = further[better], their[better]
        start += len(owner)
    return best, partner


def _mutual_nearest(desc0: torch.Tensor, desc1: torch.Tensor, max_distance: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``match_mutual_nn`` without a mask or ratio test, from the similarities of the distinct descriptions
    without folding them per keypoint pair: a keypoint's nearest neighbour is the owner of the best column of
    its best row (the largest over a union of rows is the largest of their largest), so each row's and each
    column's largest similarity (row blocks on the engines' threads, each also giving its columns' largest)
    and a fold of those vectors replace ``descriptor_similarity``'s folds of the whole map: the same matches,
    ties aside, in 4.1 instead of 4.5 ms for a 512-keypoint frame pair (488 x 491 keypoints, 711 x 719
    descriptions) and 6.1 instead of 8.0 ms at 1024 (2-core AMD EPYC of the Zen 4 generation, medians of 200
    interleaved calls)."""
    n0, n1 = desc0.shape[0], desc1.shape[0]
    rows0, owners0 = _distinct_rows(desc0.float().reshape(n0, -1, desc0.shape[-1]))
    rows1, owners1 = _distinct_rows(desc1.float().reshape(n1, -1, desc1.shape[-1]))

    def block(rows: slice) -> tuple[torch.Tensor, ...]:
        similarity = rows0[rows] @ rows1.T
        along, down = _argmax(similarity, 1), _argmax(similarity, 0)
        along, down = along.to(similarity.device), down.to(similarity.device)
        return (similarity.gather(1, along[:, None]).squeeze(1), along,
                similarity.gather(0, down[None]).squeeze(0), down + (rows.start or 0))

    blocks = parallel_map(block, thread_blocks(len(rows0), MIN_BLOCK))
    row_best, row_column = torch.cat([b[0] for b in blocks]), torch.cat([b[1] for b in blocks])
    column_best, column_row = blocks[0][2], blocks[0][3]
    for _, _, best, row in blocks[1:]:  # the first block's of equal values, as one argmax down all rows
        better = best > column_best
        column_best, column_row = torch.where(better, best, column_best), torch.where(better, row, column_row)
    best0, column = _best_of_keypoints(row_best, row_column, n0, owners0)
    _, row = _best_of_keypoints(column_best, column_row, n1, owners1)
    nn01, nn10 = _owners(n1, owners1, rows1.device)[column], _owners(n0, owners0, rows0.device)[row]
    index0 = torch.arange(n0, device=rows0.device)
    best = _distance(best0)
    keep = (nn10[nn01] == index0) & (best <= max_distance)
    return torch.stack([index0[keep], nn01[keep]], dim=1), best[keep]


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
    if allowed is None and ratio >= 1.0:
        return _mutual_nearest(desc0, desc1, max_distance)
    # Nearest neighbours by similarity (distance falls as similarity rises); distances only of the few needed.
    similarity = descriptor_similarity(desc0, desc1)
    if allowed is not None:
        similarity = similarity.masked_fill(~allowed, float("-inf"))
    nn01 = _argmax(similarity, 1)
    # Down the columns is a strided read, several times slower than along the rows: blocks side by side.
    nn10 = _in_blocks(lambda columns: _argmax(similarity[:, columns], 0), similarity.shape[1])
    index0 = torch.arange(desc0.shape[0], device=desc0.device)
    keep = nn10[nn01] == index0
    best = _distance(similarity[index0, nn01])
    keep &= best <= max_distance
    if ratio < 1.0:
        # Each direction's test needs a second candidate on that side.
        if similarity.shape[1] > 1:
            keep &= best < ratio * _distance(similarity.topk(2, dim=1).values[:, 1])
        if similarity.shape[0] > 1:
            keep &= best < ratio * _distance(similarity.topk(2, dim=0).values[1][nn01])
    matches = torch.stack([index0[keep], nn01[keep]], dim=1)
    return matches, best[keep]


def match_mutual_nn_among(desc0: torch.Tensor, desc1: torch.Tensor, pairs: torch.Tensor, max_distance: float = 2.0,
                          ratio: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``match_mutual_nn`` with ``allowed`` given as its few allowed pairs (K, 2) int64 (index into desc0, index
    into desc1): only those pairs' distances are computed, so a sparse mask (a stereo pair's row band) costs K
    instead of N0 x N1 distances. Same matches as ``match_mutual_nn`` with the equivalent mask (ties aside)."""
    empty = desc0.new_zeros((0, 2), dtype=torch.long), desc0.new_zeros((0,), dtype=torch.float32)
    if len(pairs) == 0:
        return empty
    n0, n1, size = desc0.shape[0], desc1.shape[0], desc0.shape[-1]
    a = desc0.float().reshape(n0, -1, size)[pairs[:, 0]]
    b = desc1.float().reshape(n1, -1, size)[pairs[:, 1]]
    distance = (2.0 - 2.0 * torch.einsum("khd,kgd->khg", a, b).amax(dim=(1, 2))).clamp_min(0.0).sqrt()

    def smallest(index: torch.Tensor, count: int, values: torch.Tensor) -> torch.Tensor:
        return values.new_full((count,), float("inf")).scatter_reduce(0, index, values, "amin")

    best0, best1 = smallest(pairs[:, 0], n0, distance), smallest(pairs[:, 1], n1, distance)
    keep = (distance == best0[pairs[:, 0]]) & (distance == best1[pairs[:, 1]]) & (distance <= max_distance)
    if ratio < 1.0:
        # The second nearest on each side: the smallest distance that is not the nearest's own.
        for side, best, count in ((0, best0, n0), (1, best1, n1)):
            others = distance.masked_fill(distance == best[pairs[:, side]], float("inf"))
            keep &= distance < ratio * smallest(pairs[:, side], count, others)[pairs[:, side]]
    kept = keep.nonzero().squeeze(1)
    # Equal distances could make a keypoint the nearest of two: each keypoint keeps its first pair.
    for side in (0, 1):
        _, first = np.unique(pairs[kept, side].cpu().numpy(), return_index=True)
        kept = kept[torch.as_tensor(np.sort(first), device=kept.device)]
    return pairs[kept], distance[kept]
