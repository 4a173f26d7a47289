"""The networks as fixed graphs for the non-PyTorch engines: ONNX export and the on-disk cache of exports.

Two graphs per weights file:
- detector: (1, 1, H, W) image at model resolution -> ``score`` (1, 1, H, W) and, when built with frame
  outputs, ``frames`` (1, 30, H, W): the ten scale weights then the ten (cos, sin) orientation pairs. The
  size is fixed (the model size is a setting), which lets every runtime plan the whole graph.
- descriptor: (N, 1, P, P) patches, N dynamic -> (N, D) unit descriptors, patch standardisation included.

Exported files are build artefacts, never committed: they are written on first use (or by ``rfnet-export``)
into the cache folder (``$RFNET_CACHE_DIR``, else ``~/.cache/rfnet_ros``) and named by the weights file's
SHA-256, the graph, its shape and ``GRAPH_VERSION``, so a changed weights file, model size or graph code
never reuses a stale export.
"""
from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rfnet_ros.model.detector import NUM_LAYERS, Detector, DetectorMaps
from rfnet_ros.model.inference import fold_batchnorm
from rfnet_ros.model.rfnet import RFNet

OPSET = 17
# Bumped whenever the graphs' code changes, so that exports cached by an older version are not reused.
GRAPH_VERSION = 6
FRAME_CHANNELS = 3 * NUM_LAYERS  # ten scale weights, then ten (cos, sin) pairs


def cache_dir() -> Path:
    """Where exported graphs and built engines are kept."""
    return Path(os.environ.get("RFNET_CACHE_DIR") or Path.home() / ".cache" / "rfnet_ros").expanduser()


class DetectorGraph(nn.Module):
    """The detector with its outputs flattened to tensors: score, and optionally the frame maps."""

    def __init__(self, detector: Detector, frame_outputs: bool):
        super().__init__()
        self.detector = detector
        self.frame_outputs = frame_outputs

    def forward(self, image: torch.Tensor):
        maps = self.detector(image, frame_maps=self.frame_outputs)
        if not self.frame_outputs:
            return maps.score
        return maps.score, torch.cat([maps.scale_weights, maps.orientations], dim=1)


def maps_from_outputs(score: torch.Tensor, frames: torch.Tensor | None) -> DetectorMaps:
    """:class:`DetectorMaps` from the detector graph's outputs (frames None: no frame maps)."""
    if frames is None:
        return DetectorMaps(score, None, None)
    return DetectorMaps(score, frames[:, :NUM_LAYERS], frames[:, NUM_LAYERS:])


class DescriptorGraph(nn.Module):
    """The descriptor in eval mode with its L2 normalisation; patch standardisation is the descriptor's own.

    A last convolution that covers its whole input (HardNet's 8x8 on 8x8 features, HardNetLite's 4x4 on 4x4),
    with the BatchNorm after it folded in, is written as the matrix product it is (``_whole_input_product``):
    OpenVINO's CPU plugin ran it as a convolution in 2.4-2.7 ms of a 713-patch call and the rest of the call
    in about 6 ms; as a product the call took 1.0-1.4 ms less (bf16, 2 threads, 2-core AMD EPYC of the Zen 4
    generation; descriptions the same to float rounding).
    """

    def __init__(self, descriptor: nn.Module):
        super().__init__()
        self.descriptor = descriptor
        self.body, self.product = _whole_input_product(descriptor)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.descriptor.standardise(patches)
        if self.product is None:
            return F.normalize(self.body(x).flatten(1), dim=1)
        return F.normalize(self.product(self.body(x).flatten(1)), dim=1)


def _whole_input_product(descriptor: nn.Module) -> tuple[nn.Sequential, nn.Linear | None]:
    """(the descriptor's layers before its last convolution, that convolution and its BatchNorm as one
    ``nn.Linear`` on the flattened features) when the convolution covers its whole input without padding or
    stride; else (all its layers, None)."""
    layers = list(descriptor.features)
    if len(layers) < 2 or not isinstance(layers[-2], nn.Conv2d) or not isinstance(layers[-1], nn.BatchNorm2d):
        return descriptor.features, None
    conv, body = layers[-2], nn.Sequential(*layers[:-2])
    size = descriptor.patch_size
    with torch.no_grad():
        features = copy.deepcopy(body).eval()(torch.zeros(1, 1, size, size))
    if (tuple(features.shape[2:]) != tuple(conv.kernel_size) or conv.groups != 1
            or any(conv.padding) or conv.stride != (1, 1)):
        return descriptor.features, None
    (fused,) = fold_batchnorm(nn.Sequential(*layers[-2:]))
    product = nn.Linear(fused.weight[0].numel(), fused.out_channels)
    with torch.no_grad():
        product.weight.copy_(fused.weight.flatten(1))
        product.bias.copy_(fused.bias)
    return body, product


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_names: list[str],
            dynamic_axes: dict | None) -> None:
    """ONNX export written atomically (a concurrent reader never sees a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # InstanceNorm without running statistics exports with a "training mode" warning; in eval mode it
            # normalises with the instance's own statistics, exactly as the exported graph does (parity tests).
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter: these graphs are plain convolutions and pooling, and it exports them
            # in about a second (the dynamo exporter takes tens of seconds).
            torch.onnx.export(module.eval(), (example,), tmp, input_names=[input_name], output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def detector_onnx(model: RFNet, weights_digest: str, model_size: tuple[int, int], frame_outputs: bool,
                  folder: Path | None = None) -> Path:
    """The detector graph of ``model`` at ``model_size`` (h, w) as an ONNX file, exported if not cached."""
    h, w = model_size
    kind = "frames" if frame_outputs else "score"
    path = (folder or cache_dir()) / f"{weights_digest[:16]}_detector_{h}x{w}_{kind}_v{GRAPH_VERSION}.onnx"
    if not path.is_file():
        outputs = ["score", "frames"] if frame_outputs else ["score"]
        _export(DetectorGraph(model.detector, frame_outputs), torch.zeros(1, 1, h, w), path, "image", outputs, None)
    return path


def descriptor_onnx(model: RFNet, weights_digest: str, folder: Path | None = None) -> Path:
    """The descriptor graph of ``model`` (dynamic patch count) as an ONNX file, exported if not cached."""
    path = (folder or cache_dir()) / f"{weights_digest[:16]}_descriptor_v{GRAPH_VERSION}.onnx"
    if not path.is_file():
        size = model.descriptor.patch_size
        _export(DescriptorGraph(model.descriptor), torch.zeros(2, 1, size, size), path, "patches", ["descriptors"],
                {"patches": {0: "patches"}, "descriptors": {0: "patches"}})
    return path
