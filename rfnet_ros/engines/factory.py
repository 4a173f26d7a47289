"""Choosing and building the engine for a configuration: the one place that knows every engine.

``auto`` takes the fastest engine installed for the device, as measured by ``rfnet-bench``: on a CUDA device
TensorRT, then ONNX Runtime with its CUDA provider, then PyTorch; on the CPU OpenVINO, then ONNX Runtime, then
PyTorch. An engine named explicitly that cannot run here fails with one line saying why.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from rfnet_ros.config import ENGINES, FeatureConfig
from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.hardware import native_bf16
from rfnet_ros.model.weights import file_sha256, load_model
from rfnet_ros.threads import engine_threads

# Descriptor precisions each engine offers, per device type; the first one listed is what auto falls back to.
PRECISIONS = {
    "torch": {"cpu": ("fp32", "bf16"), "cuda": ("fp16", "fp32", "bf16")},
    "openvino": {"cpu": ("fp32", "bf16")},
    "onnxruntime": {"cpu": ("fp32",), "cuda": ("fp32",)},
    "tensorrt": {"cuda": ("fp16", "fp32")},
}
# Detector precisions each engine offers, per device type; auto picks bf16 where it is offered and the CPU
# computes it in hardware, else the first one listed. bf16 is OpenVINO's detector graph with its first layer and
# score head kept in fp32, measured on the validation split (README, "Speed"); torch's autocast placed keypoints
# less closely to fp32's and is not offered; fp16 on GPUs is unmeasured (the soft NMS exponentiates score
# differences).
DETECTOR_PRECISIONS = {
    "torch": {"cpu": ("fp32",), "cuda": ("fp32",)},
    "openvino": {"cpu": ("fp32", "bf16")},
    "onnxruntime": {"cpu": ("fp32",), "cuda": ("fp32",)},
    "tensorrt": {"cuda": ("fp32",)},
}
_RUNTIME_MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}
# Why an engine named explicitly cannot run, when its runtime does not import.
_NOT_INSTALLED = {
    "openvino": "the openvino package is not installed (pip install openvino)",
    "onnxruntime": "the onnxruntime package is not installed (pip install onnxruntime, or onnxruntime-gpu for CUDA)",
    "tensorrt": "the tensorrt package is not installed (on Jetson it comes with JetPack: apt install "
                "python3-libnvinfer)",
}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; explicit CUDA requests fail clearly without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but CUDA is not available")
    return device


def installed(engine: str) -> bool:
    """Whether ``engine``'s runtime can be imported (torch always can)."""
    module = _RUNTIME_MODULES.get(engine)
    return module is None or importlib.util.find_spec(module) is not None


def _onnxruntime_has_cuda() -> bool:
    if not installed("onnxruntime"):
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_engine(name: str, device: torch.device) -> str:
    """The engine ``name`` stands for on ``device`` (``auto`` resolved; see the module docstring)."""
    if name not in ENGINES:
        raise ValueError(f"engine: {name!r} is not one of {', '.join(ENGINES)}")
    if name != "auto":
        if not installed(name):
            raise EngineUnavailable(f"engine {name}: {_NOT_INSTALLED[name]}")
        if device.type not in PRECISIONS[name]:
            raise EngineUnavailable(f"engine {name}: does not run on device {device.type} "
                                    f"(it runs on: {', '.join(PRECISIONS[name])})")
        return name
    if device.type == "cuda":
        if installed("tensorrt"):
            return "tensorrt"
        return "onnxruntime" if _onnxruntime_has_cuda() else "torch"
    for candidate in ("openvino", "onnxruntime"):
        if installed(candidate):
            return candidate
    return "torch"


def _offered(table: dict[str, dict[str, tuple[str, ...]]], engine: str, device: torch.device) -> tuple[str, ...]:
    """The precisions ``table`` (PRECISIONS or DETECTOR_PRECISIONS) lists for ``engine`` on ``device``."""
    offered = table[engine].get(device.type)
    if offered is None:
        raise EngineUnavailable(f"engine {engine}: does not run on device {device.type}")
    return offered


def resolve_precision(name: str, engine: str, device: torch.device) -> str:
    """The descriptor precision ``name`` stands for with ``engine`` on ``device``.

    ``auto``: fp16 on CUDA where the engine offers it; bf16 on CPUs that compute it in hardware; else fp32.
    A precision the engine or device cannot run is refused with a ValueError naming the setting.
    """
    offered = _offered(PRECISIONS, engine, device)
    if name == "auto":
        if device.type == "cpu":
            return "bf16" if "bf16" in offered and native_bf16() else "fp32"
        return offered[0]
    if name not in offered:
        raise ValueError(f"precision: {name} is not available with engine {engine} on {device.type} "
                         f"(use {', '.join(offered)} or auto)")
    return name


def resolve_detector_precision(name: str, engine: str, device: torch.device) -> str:
    """The detector precision ``name`` stands for with ``engine`` on ``device``.

    ``auto``: bf16 where the engine offers it on a CPU that computes it in hardware; else fp32. A precision the
    engine or device cannot run is refused with a ValueError naming the setting.
    """
    offered = _offered(DETECTOR_PRECISIONS, engine, device)
    if name == "auto":
        return "bf16" if "bf16" in offered and device.type == "cpu" and native_bf16() else offered[0]
    if name not in offered:
        raise ValueError(f"detector_precision: {name} is not available with engine {engine} on {device.type} "
                         f"(use {', '.join(offered)} or auto)")
    return name


def build_engine(config: FeatureConfig, cache: Path | None = None) -> Engine:
    """The engine ``config`` asks for, ready to run: device, engine and precisions resolved, the weights file
    loaded, and for the graph engines its graphs exported (or found in ``cache``, default ``graphs.cache_dir()``,
    named by the weights file's SHA-256).

    The detector graph outputs the learned frame maps only with ``keypoint_frames: learned``; TensorRT's
    descriptor profile reaches the most patches one frame's describe call gets (``top_k`` times the
    descriptions per keypoint); OpenVINO and ONNX Runtime get ``rfnet_ros.threads.engine_threads()``. Raises
    :class:`EngineUnavailable` when the engine cannot run here, :class:`~rfnet_ros.model.weights.WeightsError`
    when the weights file does not load.
    """
    device = resolve_device(config.device)
    engine = resolve_engine(config.engine, device)
    precision = resolve_precision(config.precision, engine, device)
    model = load_model(config.weights_path, config.replaced_layers, config.descriptor)
    detector_precision = resolve_detector_precision(config.detector_precision, engine, device)
    frame_outputs = config.keypoint_frames == "learned"
    if engine == "torch":
        from rfnet_ros.engines.torch_engine import TorchEngine

        return TorchEngine(model, precision, device, frame_outputs)
    from rfnet_ros.engines.graphs import descriptor_onnx, detector_onnx

    digest = file_sha256(config.weights_path)
    detector_path = detector_onnx(model, digest, config.model_size, frame_outputs, cache)
    descriptor_path = descriptor_onnx(model, digest, cache)
    threads = engine_threads()
    if engine == "openvino":
        from rfnet_ros.engines.openvino_engine import OpenVINOEngine

        return OpenVINOEngine(detector_path, descriptor_path, precision, threads, detector_precision)
    if engine == "onnxruntime":
        from rfnet_ros.engines.onnxruntime_engine import ONNXRuntimeEngine

        return ONNXRuntimeEngine(detector_path, descriptor_path, precision, device, threads)
    from rfnet_ros.engines.tensorrt_engine import TensorRTEngine

    max_patches = config.top_k * config.descriptions_per_keypoint
    return TensorRTEngine(detector_path, descriptor_path, precision, device, max_patches,
                          model.descriptor.patch_size, frame_outputs)
