"""HardNet (L2-Net architecture) descriptor for 32x32 patches, as used by RF-Net."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 32
DESCRIPTOR_SIZE = 128


def _block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout, affine=False), nn.ReLU(inplace=True)]


class HardNet(nn.Module):
    """Seven bias-free convs with non-affine BatchNorm; (N, 1, 32, 32) patches -> (N, 128) unit vectors."""

    patch_size = PATCH_SIZE

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 32), *_block(32, 32), *_block(32, 64, 2), *_block(64, 64),
            *_block(64, 128, 2), *_block(128, 128),
            nn.Conv2d(128, DESCRIPTOR_SIZE, 8, bias=False), nn.BatchNorm2d(DESCRIPTOR_SIZE, affine=False),
        )
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
        """patches: (N, 1, 32, 32) -> descriptors (N, 128), L2-normalised."""
        if patches.shape[0] == 0:
            return patches.new_zeros((0, DESCRIPTOR_SIZE))
        x = self.standardise(patches).contiguous(memory_format=torch.channels_last)
        return F.normalize(self.features(x).flatten(1), dim=1)
