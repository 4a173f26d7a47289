"""Distilling a descriptor into a lighter one: the ``distill`` stage of rfnet-train.

A teacher weights file (detector and HardNet) finds keypoints and describes them; the student descriptor
(e.g. HardNetLite) learns to describe the same keypoints, from its own (smaller) patches, with two losses:

- distillation: the squared distance between the student's and the teacher's unit descriptors of each patch;
- HardNet's triplet loss on the student's descriptors of corresponding keypoints (hardest in-batch negative),
  so it also learns directly from the correspondences, beyond what the teacher knows.

Pairs are rendered at twice the detector's resolution, the detector sees them area-downsampled, and patches
are cut from the full-resolution images, as the pipeline does with a 480x640 camera and a 240x320 detector.
Keypoint frames are measured on the model-resolution images (``keypoint_frames: image``); image 1's patches
are cut both with image 0's frames carried through the warp (true frames) and with the frames measured in
image 1 (as at run time), so the student learns the frame errors it will meet.
"""
from __future__ import annotations

import torch

from rfnet_ros.engines import Engine
from rfnet_ros.model.frames import measure_frames
from rfnet_ros.model.patches import extract_patches
from rfnet_ros.model.rfnet import RFNet, keypoints_from_maps, model_input, model_to_input
from rfnet_ros.training.homography import warp_frames
from rfnet_ros.training.losses import hardnet_triplet_loss

MARGIN = 16.0  # px: keypoints whose warp lands closer than this to image 1's edge are not used


def input_to_model(xy: torch.Tensor, ratio_x: float, ratio_y: float) -> torch.Tensor:
    """Inverse of :func:`model_to_input`: (..., 2) input px -> model-resolution px."""
    return (xy + 0.5) / xy.new_tensor([ratio_x, ratio_y]) - 0.5


def _patches(images: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor, direction: torch.Tensor,
             size: int) -> torch.Tensor:
    """Patches of keypoints (B, K) in (B, 1, H, W) images -> (B*K, 1, size, size)."""
    return torch.cat([extract_patches(images[i:i + 1], xy[i], radius[i], direction[i], size)
                      for i in range(images.shape[0])])


def distill_step(student: RFNet, teacher: Engine, batch, keypoints: int, min_strength: float,
                 distill_weight: float, predicted_frame_weight: float) -> dict[str, torch.Tensor]:
    """Losses of one batch of pairs (rfnet_ros.training.pairs.PairBatch, rendered at full resolution)."""
    image0, image1, hom = (torch.from_numpy(x) for x in (batch.image0, batch.image1, batch.homography))
    b, _, h, w = image0.shape
    model_size = (h // 2, w // 2)
    ratio_x, ratio_y = w / model_size[1], h / model_size[0]
    with torch.no_grad():
        small0, small1 = model_input(image0, model_size), model_input(image1, model_size)
        found = [keypoints_from_maps(teacher.detect(small0[i:i + 1]), small0[i:i + 1], (h, w), keypoints,
                                     keypoint_frames="image", min_strength=min_strength) for i in range(b)]
        xy0 = torch.cat([k.xy for k in found])
        radius0 = torch.cat([k.scale for k in found])
        direction0 = torch.cat([k.orientation for k in found])
        valid = torch.cat([k.valid for k in found])
        xy1, direction1_true, radius1_true = warp_frames(hom, xy0, direction0, radius0)
        valid &= ((xy1[..., 0] >= MARGIN) & (xy1[..., 0] <= w - 1 - MARGIN)
                  & (xy1[..., 1] >= MARGIN) & (xy1[..., 1] <= h - 1 - MARGIN))
        measured = measure_frames(small1, input_to_model(xy1, ratio_x, ratio_y))
        radius1_measured = measured.radius * (ratio_x * ratio_y) ** 0.5
        frames = {"anchor": (image0, xy0, radius0, direction0),
                  "true": (image1, xy1, radius1_true, direction1_true),
                  "measured": (image1, xy1, radius1_measured, measured.direction)}
        if predicted_frame_weight <= 0:
            del frames["measured"]
        teacher_size = teacher.patch_size
        targets = {name: teacher.describe(_patches(*f, teacher_size)) for name, f in frames.items()}
    size = student.descriptor.patch_size
    outputs = {name: student.descriptor(_patches(*f, size)) for name, f in frames.items()}
    keep = valid.flatten().float()
    image_id = torch.arange(b).repeat_interleave(xy0.shape[1])
    anchor_xy = xy0.reshape(-1, 2)
    triplet_true = hardnet_triplet_loss(outputs["anchor"], outputs["true"], image_id, anchor_xy, weight=keep)
    triplet_measured = (hardnet_triplet_loss(outputs["anchor"], outputs["measured"], image_id, anchor_xy, weight=keep)
                        if "measured" in outputs else torch.zeros(()))
    squared = sum(((outputs[n] - targets[n]) ** 2).sum(1) for n in outputs) / len(outputs)
    distill = (squared * keep).sum() / keep.sum().clamp_min(1.0)
    loss = triplet_true + predicted_frame_weight * triplet_measured + distill_weight * distill
    with torch.no_grad():
        agreement = (outputs["anchor"] * targets["anchor"]).sum(1)
        agreement = (agreement * keep).sum() / keep.sum().clamp_min(1.0)
    return {"loss": loss, "triplet_true": triplet_true, "triplet_measured": triplet_measured, "distill": distill,
            "teacher_cosine": agreement, "keypoints": keep.sum() / b}


__all__ = ["distill_step", "input_to_model", "model_to_input"]
