"""Mutual nearest-neighbour matching."""
import torch
import torch.nn.functional as F

from rfnet_ros.matching import descriptor_distances, match_mutual_nn


def _descriptors(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, 128, generator=g), dim=1)


def test_recovers_a_permutation():
    d0 = _descriptors(50)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    d1 = F.normalize(d0[perm] + 0.01 * _descriptors(50, 2), dim=1)
    matches, distances = match_mutual_nn(d0, d1)
    assert len(matches) == 50
    assert torch.equal(perm[matches[:, 1]], matches[:, 0])
    assert (distances < 0.05).all()


def test_only_mutual_pairs_are_kept():
    d0 = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1]]), dim=1)
    d1 = F.normalize(torch.tensor([[1.0, 0.05]]), dim=1)
    matches, _ = match_mutual_nn(d0, d1)
    assert matches.tolist() == [[0, 0]]


def test_distance_threshold_and_ratio_test():
    d0 = _descriptors(20)
    d1 = F.normalize(d0 + 0.3 * _descriptors(20, 3), dim=1)
    all_matches, distances = match_mutual_nn(d0, d1)
    limit = float(distances.median())
    near, near_d = match_mutual_nn(d0, d1, max_distance=limit)
    assert 0 < len(near) < len(all_matches) and (near_d <= limit).all()
    # Two identical candidates make every match ambiguous: the ratio test removes it.
    ambiguous = torch.cat([d1[:1], d1[:1]])
    assert len(match_mutual_nn(d0[:1], ambiguous, ratio=0.9)[0]) == 0


def test_empty_inputs():
    matches, distances = match_mutual_nn(torch.zeros(0, 128), _descriptors(4))
    assert matches.shape == (0, 2) and distances.shape == (0,)


def test_descriptor_hypotheses_match_by_their_closest_pair():
    # Keypoint 0 of image 1 matches keypoint 0 of image 0 only through image 0's second description
    # (a second orientation, say); keypoint 1 matches through its first. 2-D and 3-D inputs mix.
    base = _descriptors(4, 5)
    d0 = torch.stack([torch.stack([base[0], base[1]]), torch.stack([base[2], base[2]])])  # (2, 2, 128)
    d1 = F.normalize(torch.stack([base[1], base[2]]) + 0.01 * _descriptors(2, 6), dim=1)  # (2, 128)
    distances = descriptor_distances(d0, d1)
    brute = torch.stack([torch.stack([(d0[i] - d1[j]).norm(dim=1).min() for j in range(2)]) for i in range(2)])
    assert torch.allclose(distances, brute, atol=1e-5)
    matches, _ = match_mutual_nn(d0, d1)
    assert matches.tolist() == [[0, 0], [1, 1]]
    only_first, _ = match_mutual_nn(d0[:, 0], d1)
    assert [0, 0] not in only_first.tolist()
    assert torch.equal(descriptor_distances(d0[:, :1], d1[:, None]), descriptor_distances(d0[:, 0], d1))


def test_allowed_pairs_limit_the_candidates():
    """Two identical descriptor sets: unrestricted, each finds its copy; where a pair is not allowed, the
    keypoint takes its best allowed partner or none, and no excluded pair is ever returned."""
    d0 = _descriptors(20)
    d1 = d0.clone()
    allowed = torch.ones(20, 20, dtype=torch.bool)
    allowed[3, 3] = False  # 3's copy is outside its window: 3 must not match it
    allowed[7, :] = False  # nothing allowed for 7: no match
    matches, _ = match_mutual_nn(d0, d1, allowed=allowed)
    pairs = matches.tolist()
    assert [3, 3] not in pairs and all(i != 7 for i, _ in pairs)
    assert all(allowed[i, j] for i, j in pairs)
    assert {(i, j) for i, j in pairs if i not in (3, 7)} == {(i, i) for i in range(20) if i not in (3, 7)}
    assert torch.equal(match_mutual_nn(d0, d1, allowed=torch.ones(20, 20, dtype=torch.bool))[0],
                       match_mutual_nn(d0, d1)[0])


def test_three_hypotheses_per_keypoint_on_both_sides_equal_brute_force():
    # Keypoints with one, two or three distinct descriptions (repeats of the first elsewhere, as the pipeline
    # stores them), enough rows for the row blocks that run side by side: the distance of two keypoints is
    # the smallest over all pairs of their descriptions.
    g = torch.Generator().manual_seed(7)

    def hypotheses(n):
        desc = F.normalize(torch.randn(n, 3, 128, generator=g), dim=-1)
        repeated = torch.rand(n, 2, generator=g) < 0.6
        desc[:, 1:][repeated] = desc[:, :1].expand(-1, 2, -1)[repeated]
        return desc

    d0, d1 = hypotheses(300), hypotheses(280)
    brute = torch.cdist(d0.reshape(-1, 128), d1.reshape(-1, 128)).reshape(300, 3, 280, 3).amin(dim=(1, 3))
    assert torch.allclose(descriptor_distances(d0, d1), brute, atol=1e-5)
    matches, distances = match_mutual_nn(d0, d1)
    nearest = brute.argmin(dim=1)
    mutual = brute.argmin(dim=0)[nearest] == torch.arange(300)
    assert matches[:, 0].tolist() == mutual.nonzero().squeeze(1).tolist()
    assert torch.equal(matches[:, 1], nearest[mutual])
    assert torch.allclose(distances, brute[matches[:, 0], matches[:, 1]], atol=1e-5)


def test_unmasked_matching_equals_the_folded_similarity_map():
    # Without a mask or ratio test, matching reads each row's and column's best similarity instead of the
    # map folded per keypoint pair: the same matches and distances as the folded map's (the mask path), on
    # keypoints with up to three descriptions, a noisy permutation of them in the second set, and row blocks
    # on the engines' threads.
    g = torch.Generator().manual_seed(11)
    d0 = F.normalize(torch.randn(400, 3, 128, generator=g), dim=-1)
    repeated = torch.rand(400, 2, generator=g) < 0.7
    d0[:, 1:][repeated] = d0[:, :1].expand(-1, 2, -1)[repeated]
    perm = torch.randperm(400, generator=g)
    d1 = F.normalize(d0[perm] + 0.08 * torch.randn(400, 3, 128, generator=g), dim=-1)
    d1[:, 1:][repeated[perm]] = d1[:, :1].expand(-1, 2, -1)[repeated[perm]]
    matches, distances = match_mutual_nn(d0, d1)
    folded, folded_distances = match_mutual_nn(d0, d1, allowed=torch.ones(400, 400, dtype=torch.bool))
    assert len(matches) > 300
    assert torch.equal(matches, folded)
    assert torch.allclose(distances, folded_distances, atol=1e-6)
    assert torch.equal(perm[matches[:, 1]], matches[:, 0])
