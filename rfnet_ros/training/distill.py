"""Distilling a descriptor into a lighter one: the ``distill`` stage of rfnet-train.

The student descriptor (e.g. HardNetLite) learns from a patch dataset (rfnet_ros.training.patch_dataset):
corresponding patches of keypoints found by a teacher weights file's detector, with the teacher's descriptors
of them. Two losses:

- distillation: the squared distance between the student's and the teacher's unit descriptors of each patch;
- HardNet's triplet loss on the student's descriptors of corresponding patches (hardest in-batch negative),
  with view 1 cut under the true frame and under the frame measured there (as at run time), so the student
  also learns from the correspondences themselves and meets the frame errors of run time.
"""
from __future__ import annotations

import numpy as np
import torch

from rfnet_ros.model.rfnet import RFNet
from rfnet_ros.training.losses import hardnet_triplet_loss
from rfnet_ros.training.patch_dataset import PatchShards


def distill_step(student: RFNet, shards: PatchShards, batch: int, rng: np.random.Generator, distill_weight: float,
                 measured_frame_weight: float) -> dict[str, torch.Tensor]:
    """Losses of ``batch`` correspondences drawn from ``shards`` with ``rng``."""
    sample = shards.sample(batch, rng)
    names = ["anchor", "true"] + (["measured"] if measured_frame_weight > 0 else [])
    outputs = {name: student.descriptor(sample[name]) for name in names}
    image_id, anchor_xy = sample["pair"], sample["xy"]
    triplet_true = hardnet_triplet_loss(outputs["anchor"], outputs["true"], image_id, anchor_xy)
    triplet_measured = (hardnet_triplet_loss(outputs["anchor"], outputs["measured"], image_id, anchor_xy)
                        if "measured" in outputs else torch.zeros(()))
    distill = sum(((outputs[n] - sample[f"teacher_{n}"]) ** 2).sum(1).mean() for n in names) / len(names)
    loss = triplet_true + measured_frame_weight * triplet_measured + distill_weight * distill
    with torch.no_grad():
        agreement = (outputs["anchor"] * sample["teacher_anchor"]).sum(1).mean()
        positive = (outputs["anchor"] - outputs["true"]).norm(dim=1).mean()
    return {"loss": loss, "triplet_true": triplet_true, "triplet_measured": triplet_measured, "distill": distill,
            "teacher_cosine": agreement, "positive_distance": positive}
