"""Training losses: HardNet triplet margin loss, RF-Net score-map loss through the warp, frame equivariance."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rfnet_ros.model.keypoints import nms, refine_peaks, suppress_border
from rfnet_ros.training.homography import warp_points


def hardnet_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, image_id: torch.Tensor,
                         anchor_xy: torch.Tensor, margin: float = 1.0, min_distance_px: float = 5.0,
                         weight: torch.Tensor | None = None) -> torch.Tensor:
    """Triplet margin loss with the hardest in-batch negative (HardNet).

    anchor, positive: (N, D) unit descriptors of corresponding patches; image_id: (N,) which image each pair
    comes from; anchor_xy: (N, 2) anchor positions. Candidates from the same image closer than
    ``min_distance_px`` are not negatives (they may show the same structure). weight: (N,) 0/1 validity.
    """
    distance = torch.cdist(anchor.float(), positive.float())
    positive_distance = distance.diagonal()
    same_image = image_id[:, None] == image_id[None, :]
    near = torch.cdist(anchor_xy.float(), anchor_xy.float()) < min_distance_px
    excluded = (same_image & near) | torch.eye(len(anchor), dtype=torch.bool, device=anchor.device)
    if weight is not None:
        excluded = excluded | (weight[None, :] <= 0) | (weight[:, None] <= 0)
    masked = distance + excluded.float() * 10.0
    hardest = torch.minimum(masked.min(dim=1).values, masked.min(dim=0).values)
    losses = F.relu(margin + positive_distance - hardest)
    if weight is None:
        return losses.mean()
    return (losses * weight).sum() / weight.sum().clamp_min(1.0)


def gaussian_kernel(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    t = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    g = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    return g[None, None]


def process_score(score: torch.Tensor, top_k: int, border: int = 8, nms_size: int = 5,
                  gauss_size: int = 15, gauss_sigma: float = 0.5) -> torch.Tensor:
    """Border, NMS, top-k and a Gaussian: the sparse, blurred map the score loss compares (B, 1, H, W)."""
    peaks = nms(suppress_border(score, border), nms_size)
    flat = peaks.flatten(1)
    kth = flat.topk(top_k, dim=1).values[:, -1:]
    sparse = (flat * (flat >= kth)).view_as(score)
    blurred = F.conv2d(sparse, gaussian_kernel(gauss_size, gauss_sigma, score.device), padding=gauss_size // 2)
    return blurred.clamp(0.0, 1.0)


def warp_map(values: torch.Tensor, homography: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a (B, C, H, W) map of image 1 onto image 0's pixel grid; ``homography`` maps 0 -> 1.

    Returns the warped map and a (B, 1, H, W) mask of image-0 pixels that land inside image 1.
    """
    b, _, h, w = values.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=values.device, dtype=torch.float32),
                            torch.arange(w, device=values.device, dtype=torch.float32), indexing="ij")
    grid0 = torch.stack([xs, ys], dim=-1).view(1, -1, 2).expand(b, -1, -1)
    grid1 = warp_points(homography, grid0).view(b, h, w, 2)
    norm = torch.stack([(2 * grid1[..., 0] + 1) / w - 1, (2 * grid1[..., 1] + 1) / h - 1], dim=-1)
    warped = F.grid_sample(values, norm, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = (norm.abs() <= 1).all(dim=-1, keepdim=True).permute(0, 3, 1, 2).float()
    return warped, inside


def score_map_loss(score0: torch.Tensor, score1: torch.Tensor, homography: torch.Tensor,
                   top_k: int) -> torch.Tensor:
    """RF-Net score loss: image 0's processed map against image 1's map warped into image 0 (no gradient)."""
    warped, visible = warp_map(score1.detach(), homography)
    target = process_score(warped, top_k)
    predicted = process_score(score0, top_k)
    error = ((predicted - target) ** 2 * visible).flatten(1).sum(1)
    return (error / visible.flatten(1).sum(1).clamp_min(2.0)).mean()


def repeatability_loss(score0: torch.Tensor, score1: torch.Tensor, homography: torch.Tensor,
                       window: int = 16) -> torch.Tensor:
    """1 - mean cosine similarity of co-located ``window``-px patches of image 0's score map and image 1's
    map warped into image 0 (the repeatability loss of R2D2, Revaud et al. 2019; gradients reach both maps).

    Unlike the sparse top-k score loss it gives every visible region a signal: peaks must sit at the same
    scene points in both images. Patches less than 90% visible are ignored.
    """
    warped, visible = warp_map(score1, homography)
    stride = window // 2
    p0 = F.unfold(score0 * visible, window, stride=stride)
    p1 = F.unfold(warped * visible, window, stride=stride)
    weight = (F.unfold(visible, window, stride=stride).mean(1) > 0.9).float()
    cosine = F.cosine_similarity(p0, p1, dim=1, eps=1e-8)
    return 1.0 - (cosine * weight).sum() / weight.sum().clamp_min(1.0)


def equivariance_loss(direction: torch.Tensor, expected_direction: torch.Tensor, radius: torch.Tensor,
                      expected_radius: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Orientation and log-scale found at a warped keypoint against the keypoint's frame carried by the warp."""
    angle = (1.0 - (direction * expected_direction).sum(-1))
    scale = (torch.log(radius.clamp_min(1e-3)) - torch.log(expected_radius.clamp_min(1e-3))) ** 2
    return ((angle + scale) * weight).sum() / weight.sum().clamp_min(1.0)


def reprojection_loss(score0: torch.Tensor, score1: torch.Tensor, homography: torch.Tensor, peaks0: torch.Tensor,
                      weight: torch.Tensor, radius: int = 2, max_distance: float = 1.5) -> torch.Tensor:
    """Sub-pixel agreement of the two maps' peaks: image 0's peaks (B, K, 2) px, refined as keypoints are
    (``refine_peaks``) and carried to image 1 by ``homography``, against the refined peak of ``score1`` in a
    window around where they land (after the reprojection loss of ALIKE, Zhao et al. 2022).

    Gradients reach both maps through the values around each peak: each learns to put its peak, to a fraction
    of a pixel, on the scene point the other one marks. weight: (B, K) 0/1 validity. Mean distance in px,
    truncated at ``max_distance``: a peak with no counterpart nearby (not repeated) gets no gradient here, so the
    loss sharpens the placement of repeated peaks and leaves which peaks repeat to the other losses.
    """
    refined0 = refine_peaks(score0, peaks0, radius)
    landed = warp_points(homography, refined0)
    refined1 = refine_peaks(score1, landed, radius)
    distance = (refined1 - landed).norm(dim=-1).clamp(max=max_distance)
    return (distance * weight).sum() / weight.sum().clamp_min(1.0)
