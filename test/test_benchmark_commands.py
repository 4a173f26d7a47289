"""The benchmark commands' plumbing (their figures are printed by the commands, never asserted here)."""
from __future__ import annotations

import pytest
import torch

from rfnet_ros.benchmark import gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpu_benchmark_without_cuda_fails_with_a_reason(capsys):
    assert gpu.main([]) == 2
    error = capsys.readouterr().err
    assert "no CUDA device" in error and "NVIDIA GPU" in error


def test_soak_frames_have_the_asked_size(tmp_path):
    from rfnet_ros.ros.soak import frames_from

    frames = frames_from(tmp_path / "missing.png", 640, 480)  # no photo: a smooth random texture
    assert len(frames) == 120 and all(f.shape == (480, 640, 3) for f in frames)
    assert frames_from(tmp_path / "missing.png")[0].shape == (240, 320, 3)
