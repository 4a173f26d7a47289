"""rfnet-train runs, is deterministic for a seed, resumes, and writes a loadable weights file."""
import json
from pathlib import Path

import pytest
import torch

from rfnet_ros.model.weights import load_model, read_weights
from rfnet_ros.training import train

DATA = Path(__file__).resolve().parents[1] / "data" / "images" / "train"
TINY = ["--data", str(DATA), "--batch", "2", "--keypoints", "16", "--crop", "96", "128", "--log-every", "1",
        "--threads", "1", "--seed", "3"]


def _losses(path):
    return [json.loads(line)["loss"] for line in path.with_suffix(".log.jsonl").read_text().splitlines()]


WEIGHTS = Path(__file__).resolve().parents[1] / "rfnet_ros" / "weights"
STAGES = {"descriptor": [], "joint": [],
          "distill": ["--descriptor", "hardnet_lite", "--teacher", str(WEIGHTS / "rfnet_lite.pt"), "--min-strength", "0"]}


@pytest.mark.parametrize("stage,frames", [("descriptor", "learned"), ("joint", "learned"), ("joint", "image"),
                                          ("distill", "image")])
def test_training_is_deterministic_and_resumable(tmp_path, stage, frames, monkeypatch):
    monkeypatch.setenv("RFNET_CACHE_DIR", str(tmp_path / "cache"))
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    args = ["--stage", stage, "--keypoint-frames", frames, *STAGES[stage], *TINY]
    assert train.main(["--out", str(a), "--steps", "3", *args]) == 0
    # Same seed, interrupted after 2 steps and resumed: same losses, same weights file content.
    assert train.main(["--out", str(b), "--steps", "2", "--checkpoint-every", "1", *args]) == 0
    assert train.main(["--out", str(b), "--steps", "3", "--resume", *args]) == 0
    assert _losses(a) == pytest.approx(_losses(b), rel=1e-4)
    model = load_model(a)
    assert model.replaced_layers == 9
    provenance = read_weights(a)["provenance"]
    assert provenance["steps"] == 3 and provenance["seed"] == 3 and provenance["stage"] == stage
    assert provenance["keypoint_frames"] == frames
    if stage == "distill":
        # The student is written with the teacher's detector, unchanged.
        teacher = load_model(WEIGHTS / "rfnet_lite.pt")
        assert model.descriptor.patch_size == 16 and provenance["teacher"].endswith("rfnet_lite.pt")
        assert all(torch.equal(p, q) for p, q in zip(model.detector.parameters(), teacher.detector.parameters()))
