"""The OpenVINO engine: the exported graphs compiled for the CPU (x86 and Arm)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.engines.graphs import maps_from_outputs
from rfnet_ros.model.detector import DetectorMaps

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVINOEngine(Engine):
    """Compiled detector (``detector_precision``) and descriptor (``precision``) on the CPU, each in fp32 or in
    bf16 where the CPU has it.

    ``threads``: inference threads (None: OpenVINO's choice, all cores). Latency hint: one frame at a time.
    """

    name = "openvino"

    def __init__(self, detector_path: Path, descriptor_path: Path, precision: str, threads: int | None = None,
                 detector_precision: str = "fp32"):
        for setting, value in (("precision", precision), ("detector_precision", detector_precision)):
            if value not in PRECISION_HINTS:
                raise EngineUnavailable(f"engine openvino: {setting} {value} is not available on the CPU "
                                        f"(use {' or '.join(PRECISION_HINTS)})")
        import openvino

        core = openvino.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        detector = core.compile_model(str(detector_path), "CPU",
                                      {**config, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[detector_precision]})
        descriptor = core.compile_model(str(descriptor_path), "CPU",
                                        {**config, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]})
        super().__init__(precision, torch.device("cpu"), descriptor.input(0).get_partial_shape()[2].get_length(),
                         detector_precision)
        self._detector = detector.create_infer_request()
        self._frame_outputs = len(detector.outputs) > 1
        self._descriptor = descriptor.create_infer_request()
        self._descriptor_size = descriptor.output(0).get_partial_shape()[1].get_length()

    def detect(self, image: torch.Tensor) -> DetectorMaps:
        outputs = self._detector.infer({0: np.ascontiguousarray(image.detach().cpu().numpy())})
        score = torch.from_numpy(outputs[0])
        return maps_from_outputs(score, torch.from_numpy(outputs[1]) if self._frame_outputs else None)

    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.shape[0] == 0:
            return torch.zeros((0, self._descriptor_size))
        outputs = self._descriptor.infer({0: np.ascontiguousarray(patches.detach().cpu().numpy())})
        return torch.from_numpy(outputs[0])
