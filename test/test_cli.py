"""rfnet-extract, rfnet-info and rfnet-track as a user runs them."""
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_extract_writes_npz_and_reports_bad_files(tmp_path):
    good = ROOT / "data" / "oxford" / "graf1.png"
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    result = run("rfnet_ros.cli.extract", str(good), str(empty), str(missing), "--config",
                 str(ROOT / "config" / "lite.yaml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert "empty.png" in result.stderr and "missing.png" in result.stderr
    data = np.load(tmp_path / "out" / "graf1.npz")
    n = len(data["keypoints"])
    assert 100 < n <= 512
    assert data["keypoints"].dtype == np.float32 and data["keypoints"].shape == (n, 2)
    assert data["descriptors"].shape == (n, 128) and data["scores"].shape == (n,)
    # graf1 is 800x640: keypoints cover the frame in its own pixels.
    assert data["keypoints"][:, 0].max() > 600 and data["keypoints"][:, 1].max() > 400


def test_extract_names_a_missing_weights_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("/**:\n  ros__parameters:\n    weights: /nonexistent/w.pt\n")
    result = run("rfnet_ros.cli.extract", str(ROOT / "data" / "oxford" / "graf1.png"), "--config", str(config),
                 "--out", str(tmp_path))
    assert result.returncode == 2 and "/nonexistent/w.pt" in result.stderr


def test_info_prints_the_variant_table():
    result = run("rfnet_ros.cli.info")
    assert result.returncode == 0
    assert "0.324" in result.stdout and "4,898" in result.stdout and "21,890" in result.stdout


def test_track_prints_statistics_and_draws_the_picture(tmp_path):
    video = ROOT / "data" / "video" / "vtest.avi"
    picture = tmp_path / "tracks.png"
    result = run("rfnet_ros.cli.track", str(video), "--frames", "3", "--resize", "320x240", "--set", "top_k=128",
                 "--picture", str(picture), "--picture-width", "160")
    assert result.returncode == 0, result.stderr
    assert "rfnet-track: 3 frames of vtest.avi (320x240, detector 320x240, top_k 128, geometric check fundamental" \
        in result.stdout
    assert "mean length" in result.stdout and "alive after 10 frames 0.0%" in result.stdout  # 3 frames: none
    ratio = float(result.stdout.split("inlier ratio ")[-1].split()[0])
    assert ratio > 0.9  # a fixed camera: nearly every match passes
    import cv2
    assert cv2.imread(str(picture)).shape == (120, 160, 3)


def test_track_refuses_bad_settings(tmp_path):
    video = ROOT / "data" / "video" / "vtest.avi"
    result = run("rfnet_ros.cli.track", str(video), "--set", "geometric_check=affine")
    assert result.returncode == 1 and "geometric_check: 'affine' is not one of" in result.stderr
    result = run("rfnet_ros.cli.track", str(tmp_path / "none.avi"))
    assert result.returncode == 1 and "no such file" in result.stderr
