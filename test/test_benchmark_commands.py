"""The benchmark commands' plumbing (their figures are printed by the commands, never asserted here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from photos import DATA

from rfnet_ros.benchmark import gpu

ROOT = Path(__file__).resolve().parents[1]

# After rfnet_ros.allocator.keep_freed_memory, allocates and frees two 1.2 MB arrays 100 times and prints the
# setting and the page faults that took.
FAULTS = """
import resource
import numpy as np
from rfnet_ros.allocator import keep_freed_memory
print(keep_freed_memory())
np.ones((300, 1024), np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    a = np.ones((300, 1024), np.float32)
    b = a * 2
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_kept_freed_memory_is_reused_without_page_faults():
    kept = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True)
    description, faults = kept.stdout.split("\n")[:2]
    if "keeping freed memory" not in description:
        pytest.skip(description)
    # The two arrays' 600 pages are faulted in once at most, not in each of the 100 rounds (60,000 faults).
    assert int(faults) < 1_000, kept.stdout


def test_benchmark_prints_its_allocator_setting():
    command = [sys.executable, "-m", "rfnet_ros.benchmark", "--configs", "lite=config/lite.yaml", "--engines",
               "torch", "--precisions", "fp32", "--top-k", "64", "--frames", "1", "--warmup", "0", "--baselines",
               "orb", "--height", "120", "--width", "160", "--image", str(DATA / "images/train/board.png")]
    for extra, expected in (([], "keeping freed memory"), (["--allocator-as-is"], "C allocator as it is")):
        run = subprocess.run(command + extra, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        header = next(line for line in run.stdout.splitlines() if line.startswith("device:"))
        assert expected in header or "not glibc" in header, header
        assert any(line.startswith("lite torch fp32 k=64") for line in run.stdout.splitlines()), run.stdout
