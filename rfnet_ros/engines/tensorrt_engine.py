"""The TensorRT engine (NVIDIA GPUs, Jetson): engines built from the exported ONNX graphs, cached on disk.

Building a TensorRT engine takes from seconds to minutes, so each built engine is serialised next to its ONNX
file (``<onnx stem>_<precision>_trt<version>.plan``) and loaded from there on later starts. A plan only runs on
the GPU model and TensorRT version that built it; the version is in the name and the cache is per machine.

Written against the TensorRT Python API of JetPack 6 (TensorRT 8.6 and 10.x): ``build_serialized_network``,
named I/O tensors, ``set_input_shape`` / ``set_tensor_address`` and ``execute_async_v3`` on the current torch
CUDA stream, so inputs and outputs stay torch tensors on the GPU. See the README's TensorRT section for the
JetPack steps.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.engines.graphs import maps_from_outputs
from rfnet_ros.model.detector import DetectorMaps

WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class BuildSettings:
    """How one graph is built: precision flag, workspace and, for the descriptor, the patch-count profile.

    profile: (min, opt, max) input shapes of the dynamic input, or None for a fixed-shape graph.
    """

    input_name: str
    fp16: bool
    workspace_bytes: int
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None


def detector_settings() -> BuildSettings:
    """The detector builds in fp32 (TF32 where the GPU has it): its soft NMS exponentiates score differences and
    scales the scale softmax by 100, which fp16 rounding would shift; it is a small share of the work."""
    return BuildSettings("image", fp16=False, workspace_bytes=WORKSPACE_BYTES, profile=None)


def descriptor_settings(precision: str, max_patches: int, patch_size: int) -> BuildSettings:
    """The descriptor builds in ``precision`` (fp16 or fp32) for 1..``max_patches`` patches, tuned for the maximum
    (a fixed top-k fills it on textured frames)."""
    if precision not in ("fp16", "fp32"):
        raise EngineUnavailable(f"engine tensorrt: precision {precision} is not available (use fp16 or fp32)")
    if max_patches < 1:
        raise ValueError(f"max_patches must be positive, got {max_patches}")
    shape = (1, patch_size, patch_size)
    return BuildSettings("patches", fp16=precision == "fp16", workspace_bytes=WORKSPACE_BYTES,
                         profile=((1, *shape), (max_patches, *shape), (max_patches, *shape)))


def plan_path(onnx_path: Path, precision: str, version: str) -> Path:
    return onnx_path.with_name(f"{onnx_path.stem}_{precision}_trt{version}.plan")


def build_plan(trt, onnx_path: Path, settings: BuildSettings) -> bytes:
    """Serialised engine of an ONNX file; raises EngineUnavailable with the parser's or builder's reason."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    # TensorRT 8 needs explicit batch asked for; from 10 on it is the only mode and the flag is deprecated.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineUnavailable(f"engine tensorrt: cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    if settings.fp16:
        if not builder.platform_has_fast_fp16:
            raise EngineUnavailable("engine tensorrt: this GPU has no fast fp16; use precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    if settings.profile is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(settings.input_name, *settings.profile)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineUnavailable(f"engine tensorrt: building {onnx_path.name} failed (see the TensorRT log above)")
    return bytes(plan)


def load_or_build(trt, onnx_path: Path, precision: str, settings: BuildSettings):
    """The engine of ``onnx_path`` in ``precision``: deserialised from the cache, or built and cached."""
    path = plan_path(onnx_path, precision, trt.__version__)
    if path.is_file():
        plan = path.read_bytes()
    else:
        plan = build_plan(trt, onnx_path, settings)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".plan.tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(plan)
        os.replace(tmp, path)
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineUnavailable(f"engine tensorrt: {path.name} does not load on this GPU/TensorRT; delete it "
                                "to rebuild")
    return engine


class _Runner:
    """One engine with its execution context; runs on the current torch CUDA stream."""

    def __init__(self, engine, input_name: str, output_names: list[str]):
        self.context = engine.create_execution_context()
        self.input_name, self.output_names = input_name, output_names

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.contiguous()
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        outputs = []
        for name in self.output_names:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device=x.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        if not self.context.execute_async_v3(torch.cuda.current_stream(x.device).cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return outputs


class TensorRTEngine(Engine):
    """Detector (fp32/TF32) and descriptor (``precision``: fp16 or fp32) as TensorRT engines on a CUDA device."""

    name = "tensorrt"

    def __init__(self, detector_path: Path, descriptor_path: Path, precision: str, device: torch.device,
                 max_patches: int, patch_size: int, frame_outputs: bool):
        super().__init__(precision, device, patch_size)
        if device.type != "cuda" or not torch.cuda.is_available():
            raise EngineUnavailable("engine tensorrt: needs a CUDA device (device: cuda)")
        import tensorrt as trt

        settings = descriptor_settings(precision, max_patches, patch_size)
        with torch.cuda.device(device):
            detector = load_or_build(trt, Path(detector_path), "fp32", detector_settings())
            descriptor = load_or_build(trt, Path(descriptor_path), precision, settings)
        self._frame_outputs = frame_outputs
        self._detector = _Runner(detector, "image", ["score", "frames"] if frame_outputs else ["score"])
        self._descriptor = _Runner(descriptor, "patches", ["descriptors"])
        self._max_patches = max_patches

    def detect(self, image: torch.Tensor) -> DetectorMaps:
        outputs = self._detector(image.to(self.device, torch.float32))
        return maps_from_outputs(outputs[0], outputs[1] if self._frame_outputs else None)

    def describe(self, patches: torch.Tensor) -> torch.Tensor:
        patches = patches.to(self.device, torch.float32)
        if patches.shape[0] == 0:
            return torch.zeros((0, self.describe_size()), device=self.device)
        # The profile ends at max_patches: larger batches (several frame hypotheses) run in chunks.
        chunks = [self._descriptor(chunk)[0] for chunk in patches.split(self._max_patches)]
        return torch.cat(chunks)

    def describe_size(self) -> int:
        return int(self._descriptor.context.engine.get_tensor_shape("descriptors")[1])
