"""The OpenVINO engine: the exported graphs compiled for the CPU (x86 and Arm)."""
from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import torch

from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.engines.graphs import maps_from_outputs
from rfnet_ros.model.detector import DetectorMaps

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
# OpenVINO's run-time attribute that keeps an operation in its own precision when the rest of the graph is
# lowered (``ov::disable_conversion``); the CPU plugin reads it, the Python API cannot build it, an IR file can.
_KEEP_PRECISION = {"name": "DisablePrecisionConversion", "version": "0", "value": "dynamic:f16"}


def _readers(op) -> list:
    """The operations that read ``op``'s (first) output."""
    return [target.get_node() for target in op.output(0).get_target_inputs()]


def _convolutions(ops: list) -> list:
    return [op for op in ops if op.get_type_name() in ("Convolution", "GroupConvolution")]


def first_layer_output(model):
    """The operation that ends the detector graph's first layer: the first (in graph order) that several
    convolutions read, the second layer's and the first score head."""
    return next(op for op in model.get_ordered_ops()
                if op.get_output_size() == 1 and len(_convolutions(_readers(op))) > 1)


def first_layer_ops(model, output=None) -> set[str]:
    """Names of the detector graph's operations that compute its first layer (``first_layer_output`` and the
    operations it depends on) and that layer's score head (the convolution reading it that gives fewer channels
    than it has, with its bias addition); ``output``: ``first_layer_output(model)`` when the caller has it."""
    output = first_layer_output(model) if output is None else output
    names, pending = set(), [output]
    while pending:
        op = pending.pop()
        if op.get_type_name() not in ("Parameter", "Constant") and op.get_friendly_name() not in names:
            names.add(op.get_friendly_name())
            pending.extend(value.get_node() for value in op.input_values())
    channels = output.get_output_partial_shape(0)[1].get_length()
    for head in _convolutions(_readers(output)):
        if head.get_output_partial_shape(0)[1].get_length() < channels:
            names.add(head.get_friendly_name())
            names.update(op.get_friendly_name() for op in _readers(head) if op.get_type_name() == "Add")
    return names


def _detector_with_first_layer_in_fp32(core, path: Path):
    """The detector graph read from ``path`` with its first layer and score head kept in fp32 when the rest runs
    in bf16: bf16's rounding of the image's first features moved keypoints most (README, "Speed"), the other
    layers' rounding little, and the first layer is a small share of the time.

    The marked operations run in fp32, but the CPU plugin still wrote the first layer's output in bf16 (its
    last fused operation's output), so the score head read rounded features. The plugin keeps the operations
    before a graph output in fp32 back to the nearest convolution: one value of the first layer's output as
    a further output (the graph's last; the engine does not read it) keeps it in fp32 for the head.
    """
    import openvino
    import openvino.opset13 as opset

    model = core.read_model(str(path))
    output = first_layer_output(model)
    keep = first_layer_ops(model, output)
    first = opset.constant(np.zeros(4, np.int64))
    model.add_outputs([opset.slice(output, first, opset.constant(np.ones(4, np.int64)),
                                   opset.constant(np.ones(4, np.int64))).output(0)])
    with tempfile.TemporaryDirectory() as folder:
        xml, weights = Path(folder) / "detector.xml", Path(folder) / "detector.bin"
        openvino.save_model(model, str(xml), compress_to_fp16=False)
        tree = ElementTree.parse(xml)
        for layer in tree.getroot().find("layers"):
            if layer.get("name") in keep:
                info = layer.find("rt_info")
                if info is None:
                    info = ElementTree.SubElement(layer, "rt_info")
                ElementTree.SubElement(info, "attribute", _KEEP_PRECISION)
        tree.write(xml)
        return core.read_model(str(xml), str(weights))


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
        detector_model = (str(detector_path) if detector_precision == "fp32"
                          else _detector_with_first_layer_in_fp32(core, detector_path))
        detector = core.compile_model(detector_model, "CPU",
                                      {**config, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[detector_precision]})
        descriptor = core.compile_model(str(descriptor_path), "CPU",
                                        {**config, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]})
        super().__init__(precision, torch.device("cpu"), descriptor.input(0).get_partial_shape()[2].get_length(),
                         detector_precision)
        self._detector = detector.create_infer_request()
        self._frame_outputs = any("frames" in output.get_names() for output in detector.outputs)
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
