"""Work side by side on the engines' threads (rfnet_ros.threads.parallel_map) and what uses it: the
refinement's groups of matches, the matching's blocks of descriptions."""
import threading

import cv2
import numpy as np
import pytest
import torch
from photos import gray_photo
from test_refinement import directions, to_tensor

from rfnet_ros import threads
from rfnet_ros.matching import refinement
from rfnet_ros.matching.mutual_nn import descriptor_similarity, match_mutual_nn
from rfnet_ros.matching.refinement import FramedKeypoints, refine_matches


@pytest.fixture
def engine_threads(monkeypatch):
    """Set the engines' thread count for one test (``plan_cpu_threads`` sets it for the process)."""
    def set_threads(count: int) -> None:
        monkeypatch.setattr(threads, "_engine_threads", count)
    return set_threads


def test_results_come_in_order_from_several_threads(engine_threads):
    engine_threads(2)
    names = set()

    def work(item: int) -> int:
        names.add(threading.current_thread().name)
        return item * item

    assert threads.parallel_map(work, range(40)) == [i * i for i in range(40)]
    assert any(name.startswith("rfnet_parallel") for name in names)


def test_each_call_runs_in_the_callers_grad_and_inference_mode(engine_threads):
    engine_threads(2)

    def modes(_):
        return torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    with torch.inference_mode():
        assert set(threads.parallel_map(modes, range(4))) == {(False, True)}
    with torch.no_grad():
        assert set(threads.parallel_map(modes, range(4))) == {(False, False)}
    assert set(threads.parallel_map(modes, range(4))) == {(True, False)}


def test_refinement_groups_side_by_side_give_the_same_places(engine_threads, monkeypatch):
    photo = cv2.resize(gray_photo("images/train/board.png"), (640, 480), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(1)
    n = 700
    xy = torch.from_numpy(rng.uniform([40, 40], [600, 440], (n, 2)).astype(np.float32))
    radius = torch.from_numpy(rng.uniform(4, 40, n).astype(np.float32))
    direction = directions(rng.uniform(-np.pi, np.pi, n))
    shift = torch.from_numpy(rng.uniform(-1.5, 1.5, (n, 2)).astype(np.float32))
    first = FramedKeypoints(to_tensor(photo), xy, radius, direction)
    second = FramedKeypoints(to_tensor(np.roll(photo, (1, 2), axis=(0, 1))), xy + shift, radius, direction)
    monkeypatch.setattr(refinement, "CHUNK", 100)  # several groups per thread
    results = []
    for count in (1, 2, 3):
        engine_threads(count)
        with torch.inference_mode():
            results.append(refine_matches(first, second))
    for places, moved in results[1:]:
        assert torch.equal(places, results[0][0]) and torch.equal(moved, results[0][1])
    assert results[0][1].float().mean() > 0.5  # most were aligned


def test_matching_in_blocks_side_by_side_gives_the_same_matches(engine_threads):
    # Mutual nearest neighbours over descriptions with second peaks: the similarity's row blocks and the
    # column-wise nearest neighbours run on the engines' threads when each block has MIN_BLOCK rows.
    generator = torch.Generator().manual_seed(3)
    n = 1000
    first = torch.nn.functional.normalize(torch.randn(n, 3, 128, generator=generator), dim=-1)
    single = torch.rand(n, 2, generator=generator) < 0.7  # most keypoints repeat their first description
    first[:, 1][single[:, 0]] = first[:, 0][single[:, 0]]
    first[:, 2][single[:, 1]] = first[:, 0][single[:, 1]]
    noisy = first + 0.3 * torch.randn(first.shape, generator=generator)
    second = torch.nn.functional.normalize(noisy, dim=-1)[torch.randperm(n, generator=generator)]
    results = []
    for count in (1, 2, 3):
        engine_threads(count)
        with torch.inference_mode():
            results.append((descriptor_similarity(first, second), *match_mutual_nn(first, second)))
    for similarity, matches, distances in results[1:]:
        assert torch.equal(similarity, results[0][0])
        assert torch.equal(matches, results[0][1]) and torch.equal(distances, results[0][2])
    assert len(results[0][1]) > n / 2


def test_work_in_background_goes_on_while_the_caller_works(engine_threads):
    engine_threads(2)
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        assert release.wait(10)  # held until the caller, still running, lets it finish
        return threading.current_thread().name

    running = threads.in_background(work)
    assert started.wait(10) and not running.done()
    release.set()
    assert running.result(10).startswith("rfnet_parallel")


def test_work_in_background_runs_now_with_one_thread_and_raises_from_result(engine_threads):
    engine_threads(1)
    done = threads.in_background(lambda: threading.current_thread().name)
    assert done.done() and done.result() == threading.current_thread().name
    engine_threads(2)
    for count in (1, 2):
        engine_threads(count)
        with pytest.raises(ZeroDivisionError):
            threads.in_background(lambda: 1 / 0).result(10)


def test_work_in_background_runs_in_the_callers_inference_mode(engine_threads):
    engine_threads(2)
    with torch.inference_mode():
        assert threads.in_background(torch.is_inference_mode_enabled).result(10)
    assert not threads.in_background(torch.is_inference_mode_enabled).result(10)
