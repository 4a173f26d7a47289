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
STAGES = {"descriptor": [], "joint": [], "detector": ["--init", str(WEIGHTS / "rfnet_lite.pt")],
          "distill": ["--descriptor", "hardnet_lite", "--patch-batch", "64"]}


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """A tiny patch dataset made with the shipped lite weights as the teacher."""
    from rfnet_ros.training import patch_dataset

    out = tmp_path_factory.mktemp("patches")
    assert patch_dataset.main(["--teacher", str(WEIGHTS / "rfnet_lite.pt"), "--data", str(DATA), "--out", str(out),
                               "--pairs", "4", "--pairs-per-shard", "2", "--keypoints", "48", "--crop", "192", "256",
                               "--min-strength", "0", "--threads", "1"]) == 0
    return out


@pytest.mark.parametrize("stage,frames", [("descriptor", "learned"), ("joint", "learned"), ("joint", "image"),
                                          ("detector", "learned"), ("distill", "image")])
def test_training_is_deterministic_and_resumable(tmp_path, stage, frames, monkeypatch, request):
    monkeypatch.setenv("RFNET_CACHE_DIR", str(tmp_path / "cache"))
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    extra = ["--patches", str(request.getfixturevalue("patches"))] if stage == "distill" else []
    args = ["--stage", stage, "--keypoint-frames", frames, *STAGES[stage], *extra, *TINY]
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
        assert model.descriptor.patch_size == 16
        assert provenance["patch_dataset"]["teacher"].endswith("rfnet_lite.pt")
        assert all(torch.equal(p, q) for p, q in zip(model.detector.parameters(), teacher.detector.parameters()))


def test_patch_dataset_shards_are_deterministic_and_resume(tmp_path, patches):
    import numpy as np

    from rfnet_ros.training import patch_dataset

    shards = sorted(patches.glob("shard_*.npz"))
    assert len(shards) == 2
    first = dict(np.load(shards[0]))
    assert first["anchor"].shape[1:] == (16, 16) and first["teacher_anchor"].shape[1] == 128
    assert len(first["pair"]) == len(first["true"]) == len(first["measured"]) > 0
    # A stopped run resumes by writing only the missing shards, identical to a run that did not stop.
    again = tmp_path / "again"
    again.mkdir()
    (again / shards[0].name).write_bytes(shards[0].read_bytes())
    assert patch_dataset.main(["--teacher", str(WEIGHTS / "rfnet_lite.pt"), "--data", str(DATA), "--out", str(again),
                               "--pairs", "4", "--pairs-per-shard", "2", "--keypoints", "48", "--crop", "192",
                               "256", "--min-strength", "0", "--threads", "1"]) == 0
    second, redo = dict(np.load(shards[1])), dict(np.load(again / shards[1].name))
    assert all(np.array_equal(second[k], redo[k]) for k in second)
