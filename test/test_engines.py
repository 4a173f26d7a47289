"""Inference engines: parity with the PyTorch reference for every engine installed here, engine and precision
selection, the export cache, and TensorRT as far as it goes without a GPU."""
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from photos import gray_photo

from rfnet_ros.config import FeatureConfig, NodeConfig, load_config
from rfnet_ros.engine_parity import compare
from rfnet_ros.engines import EngineUnavailable, resolve_engine, resolve_precision
from rfnet_ros.engines.factory import DETECTOR_PRECISIONS, PRECISIONS, installed, resolve_detector_precision
from rfnet_ros.engines.graphs import GRAPH_VERSION, DescriptorGraph, descriptor_onnx, detector_onnx
from rfnet_ros.engines.tensorrt_engine import descriptor_settings, detector_settings, plan_path
from rfnet_ros.hardware import native_bf16
from rfnet_ros.model.weights import file_sha256, load_model
from rfnet_ros.pipeline import FeaturePipeline

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
ONNX_ENGINES = [e for e in ("openvino", "onnxruntime") if installed(e)]


@pytest.fixture(scope="module")
def frames():
    frame = np.ascontiguousarray(gray_photo("images/heldout/building.png")[:480, :640])
    # A second view, rotated and shifted, so that the matches of the two frames are a real test.
    warp = cv2.getRotationMatrix2D((320, 240), 8, 1.05)
    warp[:, 2] += (6, -4)
    return [frame, cv2.warpAffine(frame, warp, (640, 480), borderMode=cv2.BORDER_REFLECT)]


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RFNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "engine-cache"))


def config_file(name: str, **overrides) -> FeatureConfig:
    config = load_config(ROOT / "config" / name, ignore=NodeConfig.names())
    return dataclasses.replace(config, device="cpu", top_k=512, **overrides)


def test_openvino_is_installed_by_the_set_up():
    # The README's set-up installs OpenVINO, and the node then runs on it by default on x86 CPUs.
    assert installed("openvino") and installed("onnxruntime")
    assert resolve_engine("auto", CPU) == "openvino"


@pytest.mark.parametrize("engine", ONNX_ENGINES)
@pytest.mark.parametrize("config_name", ["lite.yaml", "full.yaml", "lite_native.yaml"])
def test_fp32_engines_reproduce_the_torch_reference(engine, config_name, frames):
    # fp32 graphs differ from eager PyTorch only by rounding (about 1e-6 in the maps): keypoints must be the
    # same points (selection and sub-pixel offsets run in PyTorch on maps that agree), descriptors equal to a
    # cosine of 0.9999, and the match sets of the two frames all but identical (a near-tie in the mutual
    # nearest neighbours may flip).
    parity = compare(config_file(config_name, engine=engine, precision="fp32", detector_precision="fp32"), frames)
    assert parity.keypoints > 500
    assert parity.keypoints_matched >= 0.99, parity.lines()
    assert parity.descriptor_cosine_min >= 0.9999, parity.lines()
    assert parity.match_agreement >= 0.98, parity.lines()


@pytest.mark.skipif(not native_bf16(), reason="bf16 is only offered where the CPU computes it natively")
def test_bf16_descriptor_stays_close_to_fp32(frames):
    # bf16 keeps 8 bits of mantissa: descriptors move, but not enough to change most matches.
    parity = compare(config_file("lite.yaml", engine="openvino", precision="bf16", detector_precision="fp32"),
                     frames)
    assert parity.keypoints_matched >= 0.99, parity.lines()
    assert parity.descriptor_cosine_median >= 0.999 and parity.descriptor_cosine_min >= 0.98, parity.lines()
    assert parity.match_agreement >= 0.9, parity.lines()


def test_bf16_detector_keeps_the_keypoints_in_place(frames):
    # The detector in bf16 with its first layer and score head in fp32: the score maps move by bf16's rounding
    # in layers 2..10, which barely moves the keypoints (measured on these frames with AMX: 0.996 within
    # 0.05 px, 0.999 within 1 px; the whole graph in bf16 gave 0.69 and 0.94). On a CPU without native bf16
    # OpenVINO computes it in fp32.
    parity = compare(config_file("lite.yaml", engine="openvino", precision="fp32", detector_precision="bf16"),
                     frames)
    assert parity.keypoints > 500
    assert parity.keypoints_matched >= 0.95 and parity.keypoints_near >= 0.98, parity.lines()
    assert parity.match_agreement >= 0.95, parity.lines()


@pytest.mark.skipif(not installed("openvino"), reason="needs OpenVINO")
@pytest.mark.parametrize("config_name", ["lite.yaml", "full.yaml"])
@pytest.mark.parametrize("frame_outputs", [False, True])
def test_bf16_detector_keeps_its_first_layer_and_score_head_in_fp32(config_name, frame_outputs):
    # The first layer (convolution, normalisation, activation) and the score head reading it are marked to keep
    # fp32; the second layer onwards is not. On a CPU with native bf16 the compiled graph runs them so.
    import openvino

    from rfnet_ros.engines.openvino_engine import _detector_with_first_layer_in_fp32, first_layer_ops

    config = config_file(config_name)
    model = load_model(config.weights_path, config.replaced_layers, config.descriptor)
    path = detector_onnx(model, file_sha256(config.weights_path), config.model_size, frame_outputs)
    core = openvino.Core()
    names = first_layer_ops(core.read_model(str(path)))
    assert {"/detector/convs.0/Conv/WithoutBiases", "/detector/LeakyRelu"} <= names
    head = "/detector/heads.0/Conv/WithoutBiases" if frame_outputs else "/detector/Conv/WithoutBiases"
    assert head in names
    assert not any("convs.1" in name or "LeakyRelu_" in name or "Conv_1" in name for name in names), names
    if not native_bf16():
        return
    compiled = core.compile_model(_detector_with_first_layer_in_fp32(core, path), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "bf16"})
    precisions = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            for name in info["originalLayersNames"].astype(str).split(","):
                precisions[name] = info["runtimePrecision"].astype(str)
    assert precisions["/detector/convs.0/Conv/WithoutBiases"] == precisions[head] == "f32", precisions
    assert any(name.startswith("/detector/convs.1") and precision == "bf16"
               for name, precision in precisions.items()), precisions


def test_auto_picks_the_fastest_installed_engine_for_the_device():
    expected = next(e for e in ("openvino", "onnxruntime", "torch") if installed(e))
    assert resolve_engine("auto", CPU) == expected
    assert resolve_engine("torch", CPU) == "torch"
    with pytest.raises(ValueError, match="engine"):
        resolve_engine("tflite", CPU)


def test_an_engine_that_cannot_run_here_fails_with_one_line():
    # TensorRT needs a CUDA GPU: without its package, or without a GPU, asking for it explicitly says so.
    with pytest.raises(EngineUnavailable) as error:
        FeaturePipeline(FeatureConfig(device="cpu", engine="tensorrt"))
    message = str(error.value)
    assert message.startswith("engine tensorrt: ") and "\n" not in message
    assert "not installed" in message or "does not run on device cpu" in message


def test_precisions_are_resolved_per_engine_and_device():
    assert resolve_precision("auto", "openvino", CPU) == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("auto", "onnxruntime", CPU) == "fp32"
    assert resolve_precision("auto", "tensorrt", torch.device("cuda")) == "fp16"
    assert resolve_precision("auto", "torch", torch.device("cuda")) == "fp16"
    for engine, precision in [("torch", "fp16"), ("openvino", "fp16"), ("onnxruntime", "bf16")]:
        with pytest.raises(ValueError, match=f"precision: {precision} is not available with engine {engine}"):
            resolve_precision(precision, engine, CPU)
    assert set(PRECISIONS) == {"torch", "openvino", "onnxruntime", "tensorrt"}


def test_detector_precisions_are_resolved_per_engine_and_device():
    assert resolve_detector_precision("bf16", "openvino", CPU) == "bf16"
    assert resolve_detector_precision("fp32", "tensorrt", torch.device("cuda")) == "fp32"
    for engine, device in [("onnxruntime", CPU), ("tensorrt", torch.device("cuda")), ("torch", CPU)]:
        with pytest.raises(ValueError, match=f"detector_precision: bf16 is not available with engine {engine}"):
            resolve_detector_precision("bf16", engine, device)
    assert set(DETECTOR_PRECISIONS) == set(PRECISIONS)
    # auto: bf16 where OpenVINO runs on a CPU that computes it in hardware (lite.yaml's setting), else fp32, so a
    # file that says auto also starts on a GPU or with another engine.
    assert resolve_detector_precision("auto", "openvino", CPU) == ("bf16" if native_bf16() else "fp32")
    for engine, device in [("onnxruntime", CPU), ("torch", CPU), ("tensorrt", torch.device("cuda")),
                           ("torch", torch.device("cuda"))]:
        assert resolve_detector_precision("auto", engine, device) == "fp32"
    assert FeatureConfig().detector_precision == "auto"


def test_exports_are_named_by_weights_and_shape_and_reused(tmp_path):
    config = FeatureConfig()
    model = load_model(config.weights_path, config.replaced_layers)
    digest = file_sha256(config.weights_path)
    detector = detector_onnx(model, digest, (240, 320), True, tmp_path)
    descriptor = descriptor_onnx(model, digest, tmp_path)
    assert detector.name == f"{digest[:16]}_detector_240x320_frames_v{GRAPH_VERSION}.onnx"
    assert descriptor.name == f"{digest[:16]}_descriptor_v{GRAPH_VERSION}.onnx"
    score_only = detector_onnx(model, digest, (480, 640), False, tmp_path)
    assert score_only.name.endswith(f"_480x640_score_v{GRAPH_VERSION}.onnx")
    stamp = detector.stat().st_mtime_ns
    assert detector_onnx(model, digest, (240, 320), True, tmp_path) == detector
    assert detector.stat().st_mtime_ns == stamp, "a cached export is not written again"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("config_name", ["lite.yaml", "full.yaml"])
def test_descriptor_graph_writes_its_last_convolution_as_a_matrix_product(config_name):
    # The last convolution covers its whole input (HardNetLite's 4x4 on 4x4, HardNet's 8x8 on 8x8): the graph
    # computes it, with the BatchNorm after it, as one matrix product, and gives the descriptor's descriptions.
    config = config_file(config_name)
    model = load_model(config.weights_path, config.replaced_layers, config.descriptor)
    graph = DescriptorGraph(model.descriptor).eval()
    assert isinstance(graph.product, torch.nn.Linear) and graph.product.out_features == 128
    size = model.descriptor.patch_size
    patches = torch.rand(64, 1, size, size, generator=torch.Generator().manual_seed(0)) ** 2
    with torch.no_grad():
        assert torch.allclose(graph(patches), model.descriptor.eval()(patches), atol=1e-5)
        # A descriptor whose last layer does not cover its input keeps the convolution.
        model.descriptor.features[-2].padding = (1, 1)
        assert DescriptorGraph(model.descriptor).product is None


def test_configure_rebuilds_the_engine_only_when_its_graphs_change(frames):
    pipeline = FeaturePipeline(config_file("lite.yaml"))
    engine = pipeline.engine
    pipeline.configure(dataclasses.replace(pipeline.config, score_threshold=0.001, top_k=256))
    assert pipeline.engine is engine
    pipeline.configure(dataclasses.replace(pipeline.config, model_height=192, model_width=256))
    assert pipeline.engine is not engine
    result = pipeline.process(frames[0])
    assert 0 < len(result.features) <= 256


def test_tensorrt_build_settings():
    # What can be checked without a GPU: how each graph would be built and where its plan is cached.
    detector = detector_settings()
    assert detector.input_name == "image" and not detector.fp16 and detector.profile is None
    descriptor = descriptor_settings("fp16", 1024, 32)
    assert descriptor.fp16 and descriptor.input_name == "patches"
    assert descriptor.profile == ((1, 1, 32, 32), (1024, 1, 32, 32), (1024, 1, 32, 32))
    assert not descriptor_settings("fp32", 512, 32).fp16
    with pytest.raises(EngineUnavailable, match="precision bf16"):
        descriptor_settings("bf16", 512, 32)
    assert plan_path(Path("/c/abc_descriptor.onnx"), "fp16", "10.3.0") == Path("/c/abc_descriptor_fp16_trt10.3.0.plan")
