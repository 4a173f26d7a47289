"""Training losses, frame warping and the sub-pixel peak refinement on cases with a known answer."""
import math

import pytest
import torch

from rfnet_ros.model.keypoints import refine_peaks
from rfnet_ros.training.detection import half_resolution
from rfnet_ros.training.homography import warp_frames, warp_points
from rfnet_ros.training.losses import (
    equivariance_loss,
    hardnet_triplet_loss,
    repeatability_loss,
    reprojection_loss,
    score_map_loss,
)


def similarity(angle_deg: float, scale: float, centre=(50.0, 40.0), shift=(0.0, 0.0)) -> torch.Tensor:
    """(1, 3, 3) rotation by ``angle_deg`` and zoom ``scale`` about ``centre``, then ``shift``."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    cx, cy = centre
    return torch.tensor([[[c, -s, cx - c * cx + s * cy + shift[0]],
                          [s, c, cy - s * cx - c * cy + shift[1]],
                          [0.0, 0.0, 1.0]]])


def peaks(points, height=48, width=64, sigma=1.2) -> torch.Tensor:
    """(1, 1, H, W) map of Gaussian bumps centred on sub-pixel (x, y) points."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    out = torch.zeros(height, width)
    for x, y in points:
        out = torch.maximum(out, torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)))
    return out[None, None]


@pytest.mark.parametrize("angle,scale", [(0, 1.0), (30, 1.0), (90, 1.0), (180, 1.0), (-135, 1.0), (0, 0.5),
                                         (45, 2.0)])
def test_warp_frames_rotates_directions_and_scales_radii(angle, scale):
    hom = similarity(angle, scale)
    xy = torch.tensor([[[50.0, 40.0], [10.0, 70.0]]])
    direction = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    radius = torch.tensor([[5.0, 12.0]])
    warped, new_direction, new_radius = warp_frames(hom, xy, direction, radius)
    assert torch.allclose(warped[0, 0], xy[0, 0], atol=1e-4), "the centre stays"
    turn = math.radians(angle)
    expected = torch.stack([direction[..., 0] * math.cos(turn) - direction[..., 1] * math.sin(turn),
                            direction[..., 0] * math.sin(turn) + direction[..., 1] * math.cos(turn)], dim=-1)
    assert torch.allclose(new_direction, expected, atol=1e-4)
    assert torch.allclose(new_radius, radius * scale, rtol=1e-4)


def test_warp_frames_under_perspective_uses_the_local_jacobian():
    hom = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.002, 0.0, 1.0]]])
    xy = torch.tensor([[[100.0, 30.0]]])
    warped, direction, radius = warp_frames(hom, xy, torch.tensor([[[1.0, 0.0]]]), torch.tensor([[4.0]]))
    # x' = x / (1 + 0.002 x), y' = y / (1 + 0.002 x): at x = 100, dx'/dx = 1/1.2^2, dy'/dx = -0.002 y / 1.2^2,
    # dy'/dy = 1/1.2; |det J| = 1 / 1.2^3.
    assert torch.allclose(warped, torch.tensor([[[100 / 1.2, 30 / 1.2]]]), atol=1e-4)
    expected = torch.nn.functional.normalize(torch.tensor([1 / 1.44, -0.06 / 1.44]), dim=0)
    assert torch.allclose(direction[0, 0], expected, atol=2e-3)
    assert float(radius) == pytest.approx(4.0 / 1.2**1.5, rel=2e-3)


def test_half_resolution_homography_maps_pixel_centres():
    hom = similarity(20, 1.3, shift=(5.0, -3.0))
    half = half_resolution(hom)
    xy = torch.tensor([[[30.0, 20.0], [7.0, 61.0]]])
    full = warp_points(hom, (xy + 0.5) * 2 - 0.5)
    assert torch.allclose(warp_points(half, xy), (full + 0.5) / 2 - 0.5, atol=1e-4)


def test_triplet_loss_known_values():
    # Anchors and positives equal, negatives at distance sqrt(2) (orthogonal unit vectors): with margin 1 the
    # loss is relu(1 + 0 - sqrt 2) = 0; with margin 2 it is 2 - sqrt 2.
    eye = torch.eye(4)
    ids = torch.arange(4)
    xy = torch.rand(4, 2) * 100
    assert float(hardnet_triplet_loss(eye, eye, ids, xy)) == pytest.approx(0.0)
    assert float(hardnet_triplet_loss(eye, eye, ids, xy, margin=2.0)) == pytest.approx(2 - math.sqrt(2), rel=1e-5)
    # Positives as far as the negatives (all orthogonal): loss = margin.
    anchors, positives = torch.eye(8)[:4], torch.eye(8)[4:]
    assert float(hardnet_triplet_loss(anchors, positives, ids, xy)) == pytest.approx(1.0, abs=1e-5)
    # Candidates of the same image within 5 px are not negatives: with every other candidate excluded, the
    # hardest negative is the +10 padding and the loss is 0 even for a bad positive.
    near = torch.zeros(4, 2)
    same = torch.zeros(4, dtype=torch.long)
    assert float(hardnet_triplet_loss(anchors, positives, same, near)) == pytest.approx(0.0)
    # Invalid pairs (weight 0) count neither as pairs nor as negatives: a bad pair left out changes nothing,
    # and an anchor whose every candidate is invalid has no negative (loss 0).
    anchors8 = torch.eye(8)[:4]
    bad = torch.cat([anchors8[:3], torch.eye(8)[7:]])  # the fourth positive is far from its anchor
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert float(hardnet_triplet_loss(anchors8, bad, ids, xy, margin=2.0, weight=weight)) == pytest.approx(
        2 - math.sqrt(2), rel=1e-5)
    alone = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert float(hardnet_triplet_loss(eye, eye, ids, xy, margin=2.0, weight=alone)) == pytest.approx(0.0)


def test_score_and_repeatability_losses_vanish_for_maps_that_follow_the_warp():
    points = [(20.0, 15.0), (40.0, 30.0), (12.0, 35.0), (50.0, 12.0)]
    shift = torch.tensor([[[1.0, 0.0, 3.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]]])
    score0 = peaks(points)
    score1 = peaks([(x + 3, y + 2) for x, y in points])
    assert float(score_map_loss(score0, score1, shift, top_k=4)) < 1e-4
    assert float(repeatability_loss(score0, score1, shift)) < 1e-3
    wrong = peaks([(x + 7, y - 5) for x, y in points])
    assert float(score_map_loss(score0, wrong, shift, top_k=4)) > 1e-3
    assert float(repeatability_loss(score0, wrong, shift)) > 0.3


@pytest.mark.parametrize("x,y", [(20.0, 15.0), (20.3, 15.0), (19.6, 15.45), (21.2, 14.1)])
def test_refine_peaks_finds_a_bump_to_a_tenth_of_a_pixel(x, y):
    # The window's maximum (searched 2 px around the start) refined by a parabola through its neighbours.
    refined = refine_peaks(peaks([(x, y)], sigma=1.0), torch.tensor([[[20.0, 15.0]]]))
    assert torch.allclose(refined, torch.tensor([[[x, y]]]), atol=0.1)


def test_reprojection_loss_measures_subpixel_disagreement():
    points = [(20.0, 15.0), (40.0, 30.0), (30.0, 20.0)]
    peaks0 = torch.tensor([points])
    weight = torch.ones(1, 3)
    shift = torch.tensor([[[1.0, 0.0, 3.5], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]]])
    score0 = peaks(points, sigma=0.8)
    agreeing = peaks([(x + 3.5, y - 2.0) for x, y in points], sigma=0.8)
    off = peaks([(x + 4.5, y - 2.0) for x, y in points], sigma=0.8)
    assert float(reprojection_loss(score0, agreeing, shift, peaks0, weight)) < 0.1
    assert float(reprojection_loss(score0, off, shift, peaks0, weight)) > 0.8
    # A peak with no counterpart within max_distance adds max_distance and no gradient.
    far = peaks([(x + 5.5, y - 2.0) for x, y in points], sigma=0.8)
    assert float(reprojection_loss(score0, far, shift, peaks0, weight, max_distance=1.5)) == pytest.approx(1.5)
    # It is differentiable in both maps.
    a, b = score0.clone().requires_grad_(True), off.clone().requires_grad_(True)
    reprojection_loss(a, b, shift, peaks0, weight).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_equivariance_loss_known_values():
    direction = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    radius = torch.tensor([[4.0, 8.0]])
    weight = torch.ones(1, 2)
    assert float(equivariance_loss(direction, direction, radius, radius, weight)) == pytest.approx(0.0)
    # 90 degrees off: 1 - cos 90 = 1 per keypoint; a factor 2 in radius adds (ln 2)^2.
    turned = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
    assert float(equivariance_loss(turned, direction, radius, radius, weight)) == pytest.approx(1.0, abs=1e-6)
    assert float(equivariance_loss(direction, direction, 2 * radius, radius, weight)) == pytest.approx(
        math.log(2) ** 2, rel=1e-5)
