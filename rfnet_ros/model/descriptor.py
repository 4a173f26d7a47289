"""Patch descriptors: HardNet (L2-Net architecture) as in RF-Net, and its lightweight form HardNetLite.

Both take square patches cut around keypoints (rfnet_ros.model.patches) and return L2-normalised 128-d
descriptors; each class names its patch side in ``patch_size``. ``DESCRIPTORS`` maps the names used in
weights files and settings to the classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 32
DESCRIPTOR_SIZE = 128


def _block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout, affine=False), nn.ReLU(inplace=True)]


def _separable_block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """3x3 depthwise conv (one filter per channel, ``stride``) then 1x1 pointwise conv, each with BN and ReLU."""
    return [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin, affine=False), nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, affine=False), nn.ReLU(inplace=True)]


class PatchDescriptor(nn.Module):
    """Shared behaviour: per-patch standardisation, the ``features`` stack, flattening and L2 normalisation."""

    patch_size = PATCH_SIZE
    features: nn.Sequential

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.orthogonal_(module.weight, gain=0.6)
        # Channels-last runs about twice as fast on oneDNN (CPU) and cuDNN; loading a state dict keeps it.
        self.to(memory_format=torch.channels_last)

    @staticmethod
    def standardise(patches: torch.Tensor) -> torch.Tensor:
        """Each patch to zero mean and unit standard deviation."""
        flat = patches.flatten(1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        std = flat.std(dim=1).view(-1, 1, 1, 1)
        return (patches - mean) / (std + 1e-7)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """patches: (N, 1, P, P) with P = ``patch_size`` -> descriptors (N, 128), L2-normalised."""
        if patches.shape[0] == 0:
            return patches.new_zeros((0, DESCRIPTOR_SIZE))
        x = self.standardise(patches).contiguous(memory_format=torch.channels_last)
        return F.normalize(self.features(x).flatten(1), dim=1)


class HardNet(PatchDescriptor):
    """Seven bias-free convs with non-affine BatchNorm; (N, 1, 32, 32) patches -> (N, 128) unit vectors."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 32), *_block(32, 32), *_block(32, 64, 2), *_block(64, 64),
            *_block(64, 128, 2), *_block(128, 128),
            nn.Conv2d(128, DESCRIPTOR_SIZE, 8, bias=False), nn.BatchNorm2d(DESCRIPTOR_SIZE, affine=False),
        )
        self._initialise()


class HardNetLite(PatchDescriptor):
    """HardNet made light: 16x16 patches and depthwise-separable blocks (the lightweight RF-Net paper's
    replacement applied to the descriptor), about 1 M multiply-adds per patch against HardNet's 39 M.

    The patch covers the same square around the keypoint as HardNet's, sampled at half the density from the
    image pyramid level that suits it (so it is not aliased). Layout: a full 3x3 conv (1 -> 24) at 16x16,
    separable blocks 24 -> 32 (stride 2), 32 -> 64 at 8x8, 64 -> 128 (stride 2), 128 -> 128 at 4x4, and a
    4x4 conv to the 128-d output (BatchNorm, no ReLU), as HardNet's last layer.
    """

    patch_size = 16

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 24), *_separable_block(24, 32, 2), *_separable_block(32, 64),
            *_separable_block(64, 128, 2), *_separable_block(128, 128),
            nn.Conv2d(128, DESCRIPTOR_SIZE, 4, bias=False), nn.BatchNorm2d(DESCRIPTOR_SIZE, affine=False),
        )
        self._initialise()


class HardNetLite8(PatchDescriptor):
    """HardNetLite computed from 8x8 on: the 16x16 patch's 2x2 blocks become 4 channels (space to depth, the same
    samples), a full 3x3 conv (4 -> 24) at 8x8, separable blocks 24 -> 32 and 32 -> 64 at 8x8, 64 -> 128
    (stride 2), and the 4x4 conv to the 128-d output; HardNetLite's 16x16 stage (a one-channel conv that
    the CPU runs poorly) and its 128 -> 128 block are gone. About 0.67 M multiply-adds per patch against
    HardNetLite's 0.95 M; OpenVINO (bf16, 2 threads, 713 patches, 2-core AMD EPYC of the Zen 4 generation)
    4.1 ms against 6.0.
    """

    patch_size = 16

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.PixelUnshuffle(2), *_block(4, 24), *_separable_block(24, 32), *_separable_block(32, 64),
            *_separable_block(64, 128, 2),
            nn.Conv2d(128, DESCRIPTOR_SIZE, 4, bias=False), nn.BatchNorm2d(DESCRIPTOR_SIZE, affine=False),
        )
        self._initialise()


DESCRIPTORS: dict[str, type[PatchDescriptor]] = {"hardnet": HardNet, "hardnet_lite": HardNetLite,
                                                 "hardnet_lite8": HardNetLite8}
