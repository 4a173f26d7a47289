"""The PyTorch engine: the modules themselves, eager; the fallback that runs wherever PyTorch does."""
from __future__ import annotations

import torch

from rfnet_ros.engines.base import Engine
from rfnet_ros.model.detector import DetectorMaps
from rfnet_ros.model.inference import FastDescriptor
from rfnet_ros.model.rfnet import RFNet


class TorchEngine(Engine):
    """Detector in fp32; descriptor with folded BatchNorm, channels-last, in ``precision`` (fp32, bf16, fp16)."""

    name = "torch"

    def __init__(self, model: RFNet, precision: str, device: torch.device, frame_outputs: bool = True):
        super().__init__(precision, device, model.descriptor.patch_size)
        self.detector = model.detector.to(device).eval()
        self.frame_outputs = frame_outputs
        self.descriptor = FastDescriptor(model.descriptor, precision).to(device)

    @torch.inference_mode()
    def detect(self, image: torch.Tensor) -> DetectorMaps:
        return self.detector(image, frame_maps=self.frame_outputs)

    def detect_batch(self, images: torch.Tensor) -> list[DetectorMaps]:
        maps = self.detect(images)  # the modules take a batch as it is
        return [DetectorMaps(*(m[i:i + 1] if m is not None else None
                               for m in (maps.score, maps.scale_weights, maps.orientations)))
                for i in range(len(images))]

    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        return self.descriptor(patches)
