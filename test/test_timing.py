"""Per-stage timing: stages timed in place and stages added in ms, on a CPU and on a GPU timer."""
import time

import torch

from rfnet_ros.timing import StageTimer


def test_cpu_timer_adds_timed_and_added_stages():
    timer = StageTimer(torch.device("cpu"))
    with timer.stage("detect"):
        time.sleep(0.002)
    timer.add("match", 3.5)
    timer.add("detect", 1.0)
    results = timer.results()
    assert set(results) == {"detect", "match"}
    assert results["match"] == 3.5
    assert results["detect"] >= 3.0  # the 2 ms slept (at least) plus the 1 ms added


def test_gpu_timer_reports_stages_added_in_ms():
    # The stereo front end adds its left-right matching to the frame's timer in ms; a GPU timer read those as
    # CUDA events and failed. A timer holding only added stages needs no GPU (nothing to synchronise).
    timer = StageTimer(torch.device("cuda"))
    timer.add("match", 2.25)
    timer.add("match", 0.75)
    timer.add("queue", 4.0)
    assert timer.results() == {"match": 3.0, "queue": 4.0}
