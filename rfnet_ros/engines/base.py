"""The interface every inference engine implements: two fixed graphs, tensors in and out.

An engine runs the networks only. ``detect`` takes the model-resolution image and returns the detector's
dense maps; ``describe`` takes patches and returns unit descriptors. Keypoint selection, keypoint frames,
patch sampling and matching stay in PyTorch (rfnet_ros.model, rfnet_ros.matching), one implementation for
every engine.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from rfnet_ros.model.detector import DetectorMaps


class EngineUnavailable(RuntimeError):
    """An engine that was asked for cannot run here; the text is one line naming the engine and why."""


class Engine(ABC):
    """Runs the detector and descriptor graphs of one weights file.

    Attributes: ``name`` (torch, openvino, onnxruntime, tensorrt), ``precision`` of the descriptor (fp32, bf16,
    fp16), ``detector_precision`` (fp32, or bf16 on CPUs: rfnet_ros.engines.factory), ``device``, the torch
    device its inputs and outputs live on, and ``patch_size``, the side of the descriptor's patches.
    """

    name: str = ""

    def __init__(self, precision: str, device: torch.device, patch_size: int, detector_precision: str = "fp32"):
        self.precision = precision
        self.detector_precision = detector_precision
        self.device = device
        self.patch_size = patch_size

    @abstractmethod
    def detect(self, image: torch.Tensor) -> DetectorMaps:
        """(1, 1, H, W) float32 image in [0, 1] at model resolution -> detector maps at that resolution.

        ``scale_weights`` and ``orientations`` are None when the engine was built without frame outputs.
        """

    def detect_batch(self, images: torch.Tensor) -> list[DetectorMaps]:
        """(B, 1, H, W) images at model resolution -> the detector maps of each, in order.

        The exported graphs take one image (batch 1), so this runs ``detect`` once per image; an engine whose
        graph takes a batch (torch) runs all of them in one call.
        """
        return [self.detect(image[None]) for image in images]

    @abstractmethod
    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, 1, P, P) float32 patches (P: the descriptor's patch size) -> (N, D) float32 L2-normalised
        descriptors (N may be 0)."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(precision={self.precision!r}, detector_precision={self.detector_precision!r}, "
                f"device={str(self.device)!r})")
