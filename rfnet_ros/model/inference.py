"""Inference-only forms of the networks: the same functions, arranged to run fast.

The descriptor's BatchNorm layers (no affine, fixed statistics in eval mode) are folded into the preceding convs
(exact up to rounding), the result is cast to the requested precision and kept channels-last, the layout
oneDNN (CPU, AMX/AVX-512 bf16) and cuDNN (GPU, fp16 tensor cores) run fastest.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from rfnet_ros.model.descriptor import DESCRIPTOR_SIZE, PatchDescriptor

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def fold_batchnorm(sequential: nn.Sequential) -> nn.Sequential:
    """Copy of a Sequential with every Conv2d -> BatchNorm2d pair replaced by one equivalent Conv2d."""
    layers, out, i = list(sequential), [], 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(copy.deepcopy(layer).eval(), copy.deepcopy(layers[i + 1]).eval()))
            i += 2
        else:
            out.append(copy.deepcopy(layer))
            i += 1
    return nn.Sequential(*out)


class FastDescriptor(nn.Module):
    """Eval-mode descriptor with folded BatchNorm in ``precision``; (N, 1, P, P) float32 -> (N, 128) float32."""

    def __init__(self, descriptor: PatchDescriptor, precision: str = "fp32"):
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"precision: {precision!r} is not one of {', '.join(DTYPES)}")
        self.dtype = DTYPES[precision]
        self.patch_size = descriptor.patch_size
        self.standardise = descriptor.standardise
        self.features = fold_batchnorm(descriptor.eval().features).to(self.dtype).to(
            memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.shape[0] == 0:
            return patches.new_zeros((0, DESCRIPTOR_SIZE))
        x = self.standardise(patches).to(self.dtype).contiguous(memory_format=torch.channels_last)
        return F.normalize(self.features(x).flatten(1).float(), dim=1)

