"""Parameter and multiply-add counts of the networks, measured from the modules themselves.

Multiply-adds are counted for every convolution with a forward hook (output elements x input channels per
group x kernel area); normalisation, activations and the soft-NMS window sums are not convolutions of the
network and are not counted (the design notes give the paper's formula these counts must agree with).
"""
from __future__ import annotations

import torch
from torch import nn

from rfnet_ros.model.descriptor import DESCRIPTORS
from rfnet_ros.model.detector import Detector


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_conv_macs(module: nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of all Conv2d layers of ``module`` for one forward pass on ``example``."""
    total = 0

    def hook(conv: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        total += output.numel() * (conv.in_channels // conv.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            module.eval()(example)
    finally:
        for handle in handles:
            handle.remove()
    return total


def detector_complexity(replaced_layers: int, height: int = 240, width: int = 320) -> dict[str, int]:
    """Parameters and conv multiply-adds of the detector variant at ``height x width``."""
    detector = Detector(replaced_layers)
    return {"replaced_layers": replaced_layers, "parameters": count_parameters(detector),
            "macs": count_conv_macs(detector, torch.zeros(1, 1, height, width))}


def descriptor_complexity(name: str = "hardnet") -> dict[str, int]:
    """Parameters and multiply-adds per patch of a descriptor (``DESCRIPTORS``), and its patch side."""
    net = DESCRIPTORS[name]()
    size = net.patch_size
    return {"parameters": count_parameters(net), "patch_size": size,
            "macs_per_patch": count_conv_macs(net, torch.zeros(2, 1, size, size)) // 2}
