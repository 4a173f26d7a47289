"""Weights files and configuration: clear failures naming the file or the setting."""
import pytest
import torch

from rfnet_ros.config import WEIGHTS_DIR, FeatureConfig, NodeConfig, load_config
from rfnet_ros.model.rfnet import RFNet
from rfnet_ros.model.weights import WeightsError, load_model, read_weights, save_weights
from rfnet_ros.pipeline import FeaturePipeline

SHIPPED = {"rfnet_full.pt": 0, "rfnet_lite.pt": 9}


@pytest.mark.parametrize("name,replaced", SHIPPED.items())
def test_shipped_weights_are_trained_models(name, replaced):
    payload = read_weights(WEIGHTS_DIR / name)
    assert payload["replaced_layers"] == replaced
    provenance = payload["provenance"]
    assert provenance["stage"] == "joint" and provenance["steps"] > 0
    assert provenance["training_images"], "provenance lists the training photos"
    heldout = {"aero1", "building", "home", "stuff", "butterfly", "leuvenA", "BytheWater", "Path", "Kite", "Opal"}
    assert not heldout & set(provenance["training_images"]), "held-out photos never used for training"
    assert not {"graf1", "graf3"} & set(provenance["training_images"])
    model = load_model(WEIGHTS_DIR / name, replaced)
    # Trained parameters differ from a fresh initialisation.
    fresh = RFNet(replaced)
    assert not torch.allclose(model.descriptor.features[0].weight, fresh.descriptor.features[0].weight)
    assert model.detector.replaced_layers == replaced


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
    assert (full.replaced_layers, full.weights) == (0, "rfnet_full.pt")
    native = load_config(root / "lite_native.yaml", ignore=NodeConfig.names())
    assert native == FeatureConfig(model_height=480, model_width=640, keypoint_frames="image", min_strength=1e-4,
                                   second_peak_ratio=0.7)


@pytest.mark.parametrize("key,value", [("min_strength", 1e-4), ("second_peak_ratio", 0.7)])
def test_image_frame_settings_need_image_frames(key, value):
    # Both act on what is measured on the image; with learned frames they would silently do nothing.
    with pytest.raises(ValueError, match=f"{key}: needs keypoint_frames: image"):
        FeatureConfig(**{key: value})
    assert getattr(FeatureConfig(keypoint_frames="image", **{key: value}), key) == value


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("/**:\n  ros__parameters:\n    top_kk: 5\n")
    with pytest.raises(ValueError, match="top_kk"):
        load_config(path)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="precision"):
        FeaturePipeline(FeatureConfig(device="cpu", precision="fp16"))
