"""Weights files and configuration: clear failures naming the file or the setting."""
import dataclasses
import zipfile

import pytest
import torch

from rfnet_ros.config import WEIGHTS_DIR, FeatureConfig, NodeConfig, load_config
from rfnet_ros.model.rfnet import RFNet
from rfnet_ros.model.weights import WeightsError, load_model, read_weights, save_weights
from rfnet_ros.pipeline import FeaturePipeline

# name: (replaced layers, descriptor, last training stage)
SHIPPED = {"rfnet_full.pt": (0, "hardnet", "joint"), "rfnet_lite.pt": (9, "hardnet_lite", "distill"),
           "rfnet_lite_fixed_norm.pt": (9, "hardnet_lite", "distill"),
           "rfnet_lite8_fixed_norm.pt": (9, "hardnet_lite8", "distill")}
HELDOUT = {"aero1", "building", "home", "stuff", "butterfly", "leuvenA", "BytheWater", "Path", "Kite", "Opal"}


@pytest.mark.parametrize("name,shipped", SHIPPED.items())
def test_shipped_weights_are_trained_models(name, shipped):
    replaced, descriptor, stage = shipped
    payload = read_weights(WEIGHTS_DIR / name)
    assert payload["replaced_layers"] == replaced
    assert payload.get("descriptor_name", "hardnet") == descriptor
    provenance = payload["provenance"]
    assert provenance["stage"] == stage and provenance["steps"] > 0
    assert provenance["training_images"], "provenance lists the training photos"
    assert not HELDOUT & set(provenance["training_images"]), "held-out photos never used for training"
    assert not {"graf1", "graf3"} & set(provenance["training_images"])
    model = load_model(WEIGHTS_DIR / name, replaced)
    # Trained parameters differ from a fresh initialisation.
    fresh = RFNet(replaced, descriptor)
    first, fresh_first = (next(m for m in net.descriptor.features if isinstance(m, torch.nn.Conv2d))
                          for net in (model, fresh))
    assert not torch.allclose(first.weight, fresh_first.weight)
    assert model.detector.replaced_layers == replaced


def test_fixed_norm_weights_are_the_lite_networks_with_statistics_of_training_photos():
    # rfnet_lite_fixed_norm.pt is rfnet_lite.pt with the detector's instance normalisations replaced by
    # statistics measured on the training split (python -m rfnet_ros.training.fixed_norm): every trained
    # tensor is rfnet_lite.pt's.
    from rfnet_ros.model.weights import file_sha256

    lite, fixed = (load_model(WEIGHTS_DIR / name) for name in ("rfnet_lite.pt", "rfnet_lite_fixed_norm.pt"))
    assert (lite.detector.norm, fixed.detector.norm) == ("instance", "fixed")
    fixed_state = fixed.detector.state_dict()
    for name, tensor in lite.detector.state_dict().items():
        assert torch.equal(fixed_state[name], tensor), name
    assert all(torch.equal(p, q) for p, q in zip(lite.descriptor.parameters(), fixed.descriptor.parameters()))
    assert all(norm.running_var.min() > 0 and not torch.equal(norm.running_var, torch.ones(16))
               for norm in fixed.detector.norms[1:])
    record = read_weights(WEIGHTS_DIR / "rfnet_lite_fixed_norm.pt")["provenance"]["fixed_normalisation"]
    assert record["source_sha256"] == file_sha256(WEIGHTS_DIR / "rfnet_lite.pt")
    assert record["model_size"] == [240, 320] and len(record["photos"]) >= 400
    assert not (HELDOUT | {"graf1", "graf3"}) & set(record["photos"])


def test_lite8_weights_are_the_fixed_detector_with_a_distilled_hardnet_lite8():
    # rfnet_lite8_fixed_norm.pt (lite.yaml's): a HardNetLite8 distilled from the same teacher on the same
    # patch dataset as rfnet_lite.pt's HardNetLite, written with the teacher's detector, then given the fixed
    # normalisations: its detector is rfnet_lite_fixed_norm.pt's to the bit.
    fixed, lite8 = (load_model(WEIGHTS_DIR / name)
                    for name in ("rfnet_lite_fixed_norm.pt", "rfnet_lite8_fixed_norm.pt"))
    assert lite8.detector.norm == "fixed" and lite8.descriptor_name == "hardnet_lite8"
    lite8_state = lite8.detector.state_dict()
    for name, tensor in fixed.detector.state_dict().items():
        assert torch.equal(lite8_state[name], tensor), name
    provenance = read_weights(WEIGHTS_DIR / "rfnet_lite8_fixed_norm.pt")["provenance"]
    assert provenance["descriptor"] == "hardnet_lite8" and provenance["patch_dataset"]["patch_size"] == 16
    assert provenance["patch_dataset"]["correspondences"] > 400_000
    assert provenance["fixed_normalisation"]["model_size"] == [240, 320]
    assert not (HELDOUT | {"graf1", "graf3"}) & set(provenance["fixed_normalisation"]["photos"])


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "nothing.pt"
    with pytest.raises(WeightsError, match="nothing.pt"):
        FeaturePipeline(FeatureConfig(weights=str(missing), device="cpu"))


def test_corrupt_weights_file_is_named(tmp_path):
    good = tmp_path / "good.pt"
    save_weights(good, RFNet(9), {"note": "test"})
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="corrupt.pt"):
        load_model(corrupt)
    text = tmp_path / "text.pt"
    text.write_text("not a model")
    with pytest.raises(WeightsError, match="text.pt"):
        load_model(text)


def damaged_copy(source, target, count=4096):
    """A copy of a weights file with one bit flipped in each of ``count`` bytes in the middle of its largest
    tensor: the archive still unpickles, the tensors are wrong."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = data[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    middle = start + info.file_size // 2 - count // 2
    assert info.file_size > count and start + info.file_size <= len(data)
    for i in range(middle, middle + count):
        data[i] ^= 0x10
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("name", SHIPPED)
def test_damaged_tensors_fail_the_checksum(tmp_path, name):
    damaged = damaged_copy(WEIGHTS_DIR / name, tmp_path / name)
    torch.load(damaged, map_location="cpu", weights_only=True)  # still a readable torch file
    with pytest.raises(WeightsError, match=f"fails its checksum.*{name}"):
        load_model(damaged)
    with pytest.raises(WeightsError, match="fails its checksum"):
        FeaturePipeline(FeatureConfig(weights=str(damaged), device="cpu", replaced_layers=SHIPPED[name][0],
                                      descriptor=SHIPPED[name][1]))


def test_saved_files_carry_the_checksum_of_their_tensors(tmp_path):
    from rfnet_ros.model.weights import FORMAT, tensors_sha256
    path = tmp_path / "w.pt"
    model = RFNet(9)
    save_weights(path, model, {"note": "test"})
    payload = read_weights(path)
    assert payload["format"] == FORMAT and payload["tensors_sha256"] == tensors_sha256(payload)
    assert len(payload["tensors_sha256"]) == 64
    loaded = load_model(path)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_the_checksum_covers_the_detectors_normalisation(tmp_path):
    path = tmp_path / "w.pt"
    save_weights(path, RFNet(9, "hardnet_lite", "fixed"), {"note": "test"})
    assert load_model(path).detector.norm == "fixed"
    payload = torch.load(path, weights_only=True)
    payload["detector_norm"] = "instance"  # would load the statistics into the wrong modules
    torch.save(payload, path)
    with pytest.raises(WeightsError, match="checksum"):
        load_model(path)


def test_files_without_a_checksum_are_refused_until_one_is_added(tmp_path):
    from rfnet_ros.model import weights
    model = RFNet(9)
    old = tmp_path / "old.pt"
    torch.save({"format": weights.UNCHECKED_FORMAT, "replaced_layers": 9, "detector": model.detector.state_dict(),
                "descriptor": model.descriptor.state_dict(), "provenance": {"steps": 7}}, old)
    with pytest.raises(WeightsError, match="no checksum.*--add-checksum"):
        load_model(old)
    assert weights.main(["--add-checksum", str(old)]) == 0
    assert read_weights(old)["provenance"] == {"steps": 7}
    for a, b in zip(model.state_dict().values(), load_model(old).state_dict().values()):
        assert torch.equal(a, b)
    assert weights.main([str(old)]) == 0


def test_variant_mismatch_is_reported(tmp_path):
    path = tmp_path / "n9.pt"
    save_weights(path, RFNet(9), {})
    with pytest.raises(WeightsError, match="replaced_layers=9"):
        load_model(path, replaced_layers=0)


@pytest.mark.parametrize("key,value", [("top_k", 0), ("replaced_layers", 10), ("nms_size", 4),
                                       ("device", "gpu"), ("precision", "int8"), ("model_height", 8),
                                       ("match_ratio", 1.5), ("weights", ""), ("keypoint_frames", "sift"),
                                       ("min_strength", -0.1), ("second_peak_ratio", 1.5)])
def test_invalid_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        FeatureConfig(**{key: value})


def test_yaml_files_hold_every_setting_with_the_defaults():
    from pathlib import Path

    from rfnet_ros.config import read_parameters

    root = Path(__file__).resolve().parents[1] / "config"
    names = set(FeatureConfig.__dataclass_fields__) | set(NodeConfig.__dataclass_fields__)
    for name in ("lite.yaml", "full.yaml", "lite_native.yaml"):
        params = read_parameters(root / name)
        assert set(params) == names, name
    lite = load_config(root / "lite.yaml", ignore=NodeConfig.names())
    assert lite == FeatureConfig()
    full = load_config(root / "full.yaml", ignore=NodeConfig.names())
    # full.yaml differs from lite.yaml in its networks only, so lite against full compares them alone; its
    # detector runs in fp32 (the bf16 detector was measured with lite's).
    assert full == FeatureConfig(weights="rfnet_full.pt", replaced_layers=0, descriptor="hardnet",
                                 detector_precision="fp32")
    native = load_config(root / "lite_native.yaml", ignore=NodeConfig.names())
    # lite_native.yaml spends time on accuracy: the detector at the input's resolution, the refinement's steps
    # compare every sample of windows of 32 x 32 samples, wide windows are checked in narrow ones, and the
    # geometric check takes the refined matches' sub-pixel places at their word (1 px).
    # Its detector keeps instance normalisations (rfnet_lite.pt, with its HardNetLite): the fixed statistics are
    # measured at 240x320.
    assert native == FeatureConfig(weights="rfnet_lite.pt", descriptor="hardnet_lite", model_height=480,
                                   model_width=640, refine_window_samples=32, refine_aligned_samples=0,
                                   refine_narrow_window=16.0, geometric_threshold=1.0, detector_precision="fp32")


@pytest.mark.parametrize("key,value", [("min_strength", 1e-4), ("second_peak_ratio", 0.7)])
def test_image_frame_settings_need_image_frames(key, value):
    # Both act on what is measured on the image; with learned frames they would silently do nothing.
    learned = {"keypoint_frames": "learned", "min_strength": 0.0, "second_peak_ratio": 1.0}
    FeatureConfig(**learned)
    with pytest.raises(ValueError, match=f"{key}: needs keypoint_frames: image"):
        FeatureConfig(**{**learned, key: value})
    assert getattr(FeatureConfig(keypoint_frames="image", **{key: value}), key) == value
    # The keypoint settings handed to the model keep the same rules: none can be made invalid afterwards.
    settings = FeatureConfig(**learned).keypoint_settings
    with pytest.raises(ValueError, match=f"{key}: needs keypoint_frames: image"):
        dataclasses.replace(settings, **{key: value})


def test_keypoint_settings_and_descriptions_per_keypoint():
    config = FeatureConfig(top_k=64, nms_size=5, border=4, score_threshold=0.1, min_strength=0.0,
                           second_peak_ratio=0.5, require_scale_peak=True)
    assert dataclasses.asdict(config.keypoint_settings) == {
        "top_k": 64, "nms_size": 5, "border": 4, "score_threshold": 0.1, "keypoint_frames": "image",
        "min_strength": 0.0, "second_peak_ratio": 0.5, "require_scale_peak": True}
    assert config.descriptions_per_keypoint == 3
    assert FeatureConfig(second_peak_ratio=1.0).descriptions_per_keypoint == 1


def test_read_only_and_engine_settings():
    # What needs a restart of the node, and what the engine is built for (changing it rebuilds the engine).
    read_only = {f.name for cls in (FeatureConfig, NodeConfig) for f in dataclasses.fields(cls)
                 if f.metadata["read_only"]}
    assert read_only == {"weights", "replaced_layers", "descriptor", "device", "engine", "precision",
                         "detector_precision", "image_transport", "image_qos", "qos_depth", "diagnostics_period",
                         "max_model_pixels", "publish_vins_features", "mask_image", "match_prediction"}
    assert FeatureConfig.engine_settings() == ("weights", "replaced_layers", "descriptor", "model_height",
                                               "model_width", "keypoint_frames", "device", "engine", "precision",
                                               "detector_precision")


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("/**:\n  ros__parameters:\n    top_kk: 5\n")
    with pytest.raises(ValueError, match="top_kk"):
        load_config(path)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="precision"):
        FeaturePipeline(FeatureConfig(device="cpu", precision="fp16"))
