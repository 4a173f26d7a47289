"""The frame probe reads the detector's features and frames as the pipeline does, and its fits can fit."""
import random
from pathlib import Path

import pytest
import torch

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.evaluation.frame_probe import LayerHeads, ProbeSet, collect, fit, main
from rfnet_ros.model.detector import NUM_LAYERS, DetectorMaps, fuse_orientations, learned_frames
from rfnet_ros.model.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "data" / "images" / "validation" / "ocvdoc-boat.png"


@pytest.fixture(scope="module")
def lite():
    assert PHOTO.exists(), f"{PHOTO} missing: run scripts/fetch_data.sh"
    config = load_config(ROOT / "config" / "lite.yaml", ignore=NodeConfig.names())
    return config, load_model(config.weights_path, config.replaced_layers, config.descriptor).detector.eval()


def test_collected_keypoints_carry_the_detectors_own_learned_frames(lite):
    config, detector = lite
    data = collect(detector, config, [PHOTO], warps=1, rng=random.Random(0))
    count = len(data.radius)
    assert count > 100
    assert data.features.shape == (count, NUM_LAYERS, 16) and data.weights.shape == (count, NUM_LAYERS)
    assert torch.allclose(data.direction.norm(dim=-1), torch.ones(count), atol=1e-4)
    assert bool((data.radius > 0).all())
    # The shipped heads' orientation as the probe fuses it is learned_frames' orientation at the same points.
    # Maps of one column (1, C, N, 1) holding the sampled values, read back at their pixel centres.
    maps = DetectorMaps(None, data.weights.T[None, :, :, None], data.heads.flatten(1).T[None, :, :, None])
    xy = torch.stack([torch.zeros(count), torch.arange(count, dtype=torch.float32)], -1)[None]
    _, orientation = learned_frames(maps, xy)
    assert torch.allclose(fuse_orientations(data.heads, data.weights), orientation[0], atol=1e-5)


def test_linear_heads_recover_directions_that_are_a_linear_readout():
    torch.manual_seed(0)
    count = 20000
    features, weights = torch.randn(count, NUM_LAYERS, 16), torch.softmax(torch.randn(count, NUM_LAYERS), -1)
    truth = LayerHeads(16)
    with torch.no_grad():
        direction = truth(features, weights)
    data = ProbeSet(features, weights, torch.zeros(count, NUM_LAYERS, 2), direction, torch.ones(count))
    heads = LayerHeads(16)
    fit(heads, lambda i: (1 - (heads(data.features[i], data.weights[i]) * data.direction[i]).sum(-1)).mean(),
        count, steps=300, lr=1e-2, batch=2048)
    with torch.no_grad():
        cosine = (heads(features, weights) * direction).sum(-1)
    assert float(cosine.median()) > 0.99


def test_probe_command_reports_every_readout(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / PHOTO.name).write_bytes(PHOTO.read_bytes())
    assert main(["--train", str(folder), "--validation", str(folder), "--train-photos", "1", "--warps", "1",
                 "--steps", "5", "--config", str(ROOT / "config" / "lite.yaml")]) == 0
    out = capsys.readouterr().out
    for name in ("shipped orientation heads", "linear heads fitted", "MLP on all layers", "training median",
                 "shipped learned scale", "linear regression fitted"):
        assert name in out


def test_probe_without_photos_says_how_to_get_them(tmp_path, capsys):
    assert main(["--train", str(tmp_path), "--validation", str(tmp_path),
                 "--config", str(ROOT / "config" / "lite.yaml")]) == 2
    assert "fetch_training_data.sh" in capsys.readouterr().err
