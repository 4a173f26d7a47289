"""The ``detector`` stage of rfnet-train: the detector alone, for repeatable, precisely placed keypoints.

Pairs are rendered at twice the model resolution and the detector sees them area-downsampled, as it sees a
480x640 camera frame at 240x320, so it learns from the sub-pixel content that downsampling keeps. Losses:

- score-map loss (RF-Net): each map's top-k peaks, blurred, against the other map's warped into it;
- repeatability loss (R2D2): co-located windows of the two maps agree (cosine), a signal for every region;
- reprojection loss (ALIKE): each peak, refined by a window soft-argmax and carried through the warp, lands on
  the other map's soft-argmax peak, to a fraction of a pixel;
- equivariance loss: the learned orientation and scale at a peak follow the warp's local rotation and zoom
  (warps of any rotation angle train orientations for a rolling robot).

The descriptor is not touched (it is trained by the descriptor and distill stages).
"""
from __future__ import annotations

import torch

from rfnet_ros.model.detector import learned_frames
from rfnet_ros.model.keypoints import select_keypoints
from rfnet_ros.model.rfnet import RFNet, model_input
from rfnet_ros.training.homography import warp_frames
from rfnet_ros.training.losses import equivariance_loss, repeatability_loss, reprojection_loss, score_map_loss

MARGIN = 8.0  # model px: peaks whose warp lands closer than this to the other image's edge are not used


def half_resolution(homography: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) homographies between full-resolution images -> between their 2x area-downsampled copies
    (pixel centres: x_half = (x + 0.5) / 2 - 0.5)."""
    scale = homography.new_tensor([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])
    return scale @ homography @ torch.linalg.inv(scale)


def _inside(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return ((xy[..., 0] >= MARGIN) & (xy[..., 0] <= width - 1 - MARGIN)
            & (xy[..., 1] >= MARGIN) & (xy[..., 1] <= height - 1 - MARGIN))


def detector_step(model: RFNet, batch, keypoints: int, score_top_k: int, weights: dict[str, float]
                  ) -> dict[str, torch.Tensor]:
    """Losses of one batch of pairs (rfnet_ros.training.pairs.PairBatch, rendered at twice the model size).

    weights: score, repeatability, reprojection, equivariance (a weight of 0 skips that loss's work).
    """
    image0, image1, hom = (torch.from_numpy(x) for x in (batch.image0, batch.image1, batch.homography))
    b, _, h, w = image0.shape
    size = (h // 2, w // 2)
    hom = half_resolution(hom)
    hom_inv = torch.linalg.inv(hom)
    maps = model.detector(model_input(torch.cat([image0, image1]), size))
    score0, score1 = maps.score[:b], maps.score[b:]
    zero = torch.zeros(())
    losses = {name: zero for name in ("score", "repeatability", "reprojection", "equivariance")}
    if weights["score"] > 0:
        losses["score"] = (score_map_loss(score0, score1, hom, score_top_k)
                           + score_map_loss(score1, score0, hom_inv, score_top_k))
    if weights["repeatability"] > 0:
        losses["repeatability"] = 0.5 * (repeatability_loss(score0, score1, hom)
                                         + repeatability_loss(score1, score0, hom_inv))
    peaks0, _, valid0 = select_keypoints(score0.detach(), keypoints)
    peaks1, _, valid1 = select_keypoints(score1.detach(), keypoints)
    landed0 = warp_frames(hom, peaks0, torch.zeros_like(peaks0), torch.ones_like(peaks0[..., 0]))[0]
    landed1 = warp_frames(hom_inv, peaks1, torch.zeros_like(peaks1), torch.ones_like(peaks1[..., 0]))[0]
    keep0 = (valid0 & _inside(landed0, *size)).float()
    keep1 = (valid1 & _inside(landed1, *size)).float()
    if weights["reprojection"] > 0:
        losses["reprojection"] = 0.5 * (reprojection_loss(score0, score1, hom, peaks0, keep0)
                                        + reprojection_loss(score1, score0, hom_inv, peaks1, keep1))
    if weights["equivariance"] > 0:
        maps0 = type(maps)(score0, maps.scale_weights[:b], maps.orientations[:b])
        maps1 = type(maps)(score1, maps.scale_weights[b:], maps.orientations[b:])
        scale0, direction0 = learned_frames(maps0, peaks0)
        _, direction_true, scale_true = warp_frames(hom, peaks0, direction0, scale0)
        scale1, direction1 = learned_frames(maps1, landed0)
        losses["equivariance"] = equivariance_loss(direction1, direction_true.detach(), scale1, scale_true.detach(),
                                                   keep0)
    loss = sum(weights[name] * value for name, value in losses.items())
    return {"loss": loss, **losses, "keypoints": keep0.sum() / b}
