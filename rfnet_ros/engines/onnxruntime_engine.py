"""The ONNX Runtime engine: the exported graphs on the CPU, or on CUDA where onnxruntime-gpu is installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.engines.graphs import maps_from_outputs
from rfnet_ros.model.detector import DetectorMaps


def providers_for(device: torch.device, available: list[str]) -> list[str]:
    """Execution providers for ``device``: CUDA (with the CPU behind it) or the CPU alone."""
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise EngineUnavailable("engine onnxruntime: device cuda needs onnxruntime-gpu (the installed "
                                    f"onnxruntime offers {', '.join(available)})")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class ONNXRuntimeEngine(Engine):
    """Both graphs in fp32 (the graphs as exported); inputs and outputs pass through host memory."""

    name = "onnxruntime"

    def __init__(self, detector_path: Path, descriptor_path: Path, precision: str, device: torch.device,
                 threads: int | None = None):
        if precision != "fp32":
            raise EngineUnavailable(f"engine onnxruntime: precision {precision} is not available "
                                    "(the exported graphs run in fp32)")
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # ONNX Runtime's threads otherwise spin after each run, taking the cores from the PyTorch steps between
        # the networks (keypoint selection, patches, matching).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(device, ort.get_available_providers())
        self._detector = ort.InferenceSession(str(detector_path), options, providers=providers)
        self._descriptor = ort.InferenceSession(str(descriptor_path), options, providers=providers)
        self._frame_outputs = len(self._detector.get_outputs()) > 1
        self._descriptor_size = int(self._descriptor.get_outputs()[0].shape[1])
        super().__init__(precision, device, int(self._descriptor.get_inputs()[0].shape[2]))

    def detect(self, image: torch.Tensor) -> DetectorMaps:
        outputs = self._detector.run(None, {"image": np.ascontiguousarray(image.detach().cpu().numpy())})
        maps = maps_from_outputs(torch.from_numpy(outputs[0]),
                                 torch.from_numpy(outputs[1]) if self._frame_outputs else None)
        if self.device.type == "cpu":
            return maps
        return type(maps)(*(m.to(self.device) if m is not None else None
                            for m in (maps.score, maps.scale_weights, maps.orientations)))

    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.shape[0] == 0:
            return torch.zeros((0, self._descriptor_size), device=self.device)
        outputs = self._descriptor.run(None, {"patches": np.ascontiguousarray(patches.detach().cpu().numpy())})
        return torch.from_numpy(outputs[0]).to(self.device)
