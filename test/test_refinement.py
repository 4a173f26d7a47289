"""Sub-pixel match refinement (rfnet_ros.matching.refinement) on a real photograph with known warps."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from photos import gray_photo

from rfnet_ros.config import FeatureConfig
from rfnet_ros.matching.compiled_refinement import DIGIT_BITS, _strongest
from rfnet_ros.matching.refinement import (
    FramedKeypoints,
    RefinementSettings,
    correlation,
    refine_matches,
    refine_matches_batched,
)
from rfnet_ros.pipeline import FeaturePipeline


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(gray_photo("images/train/board.png"), (640, 480), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def keypoints(photo):
    features = FeaturePipeline(FeatureConfig(device="cpu", top_k=300)).extract(photo)
    return features


def similarity(degrees: float, zoom: float, shift: tuple[float, float]) -> np.ndarray:
    matrix = np.vstack([cv2.getRotationMatrix2D((320, 240), degrees, zoom), [0, 0, 1]])
    matrix[:2, 2] += shift
    return matrix


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float()[None, None] / 255


def directions(angles: np.ndarray) -> torch.Tensor:
    angles = torch.from_numpy(np.asarray(angles, np.float32))
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)


@pytest.mark.parametrize("samples", [0, 256])
@pytest.mark.parametrize("degrees, zoom", [(0, 1.0), (30, 1.2), (-120, 0.8)])
def test_perturbed_matches_move_back_to_the_true_correspondence(photo, keypoints, degrees, zoom, samples):
    # Each keypoint's true position in the warped view, displaced by up to 2 px in a random direction (the
    # error of keypoints detected at half the input resolution), is moved back: median error below 0.2 px,
    # 85% within a pixel (measured: median 0.01-0.05 px; 0.97-1.00 within a pixel), whether the steps compare
    # every sample of the windows or the 256 strongest.
    matrix = similarity(degrees, zoom, (7.3, -4.6))
    warped = cv2.warpPerspective(photo, matrix, (640, 480), flags=cv2.INTER_LINEAR)
    true = cv2.perspectiveTransform(keypoints.keypoints[None].astype(np.float64), matrix)[0]
    inside = np.all((true > 40) & (true < [600, 440]), axis=1)
    xy0, true = keypoints.keypoints[inside], true[inside]
    rng = np.random.default_rng(0)
    offset = rng.uniform(0.5, 2.0, len(true))[:, None] * directions(rng.uniform(-np.pi, np.pi, len(true))).numpy()
    start = (true + offset).astype(np.float32)
    # Frames of the second view: the first view's, turned and zoomed by the warp (minus the angle: image y down).
    angle1 = keypoints.orientations[inside] - np.deg2rad(degrees)
    refined, moved = refine_matches(
        FramedKeypoints(to_tensor(photo), torch.from_numpy(xy0), torch.from_numpy(keypoints.scales[inside]),
                        directions(keypoints.orientations[inside])),
        FramedKeypoints(to_tensor(warped), torch.from_numpy(start), torch.from_numpy(keypoints.scales[inside] * zoom),
                        directions(angle1)), RefinementSettings(samples=samples))
    before = np.linalg.norm(start - true, axis=1)
    after = np.linalg.norm(refined.numpy() - true, axis=1)
    assert len(true) > 100
    assert np.median(before) > 1.0
    assert np.median(after) < 0.2, np.median(after)
    assert np.mean(after < 1.0) > 0.85, np.mean(after < 1.0)
    assert moved.float().mean() > 0.85


def test_a_match_already_in_place_stays_in_place(photo, keypoints):
    xy = torch.from_numpy(keypoints.keypoints)
    radius, direction = torch.from_numpy(keypoints.scales), directions(keypoints.orientations)
    image = to_tensor(photo)
    keypoints_in_place = FramedKeypoints(image, xy, radius, direction)
    refined, _ = refine_matches(keypoints_in_place, keypoints_in_place)
    assert (refined - xy).norm(dim=1).max() < 1e-3


def test_blank_view_and_no_matches_leave_keypoints_unchanged(keypoints):
    blank = torch.full((1, 1, 480, 640), 0.5)
    xy = torch.from_numpy(keypoints.keypoints[:20])
    radius, direction = torch.from_numpy(keypoints.scales[:20]), directions(keypoints.orientations[:20])
    refined, _ = refine_matches(FramedKeypoints(blank, xy, radius, direction),
                                FramedKeypoints(blank, xy + 1.5, radius, direction))
    assert torch.allclose(refined, xy + 1.5, atol=1e-4)
    none = FramedKeypoints(blank, xy[:0], radius[:0], direction[:0])
    empty, moved = refine_matches(none, none)
    assert empty.shape == (0, 2) and moved.shape == (0,)


@pytest.mark.parametrize("samples", [0, 256])
def test_windows_of_unrelated_keypoints_are_not_aligned(photo, keypoints, samples):
    # Wrong matches (each keypoint paired with another, random one): Lucas-Kanade always finds some nearby
    # optimum, but the aligned windows do not agree, so the keypoints keep their places (measured: 0.7% move
    # with the correlation check, 99% without it).
    xy, radius = torch.from_numpy(keypoints.keypoints), torch.from_numpy(keypoints.scales)
    direction = directions(keypoints.orientations)
    other = torch.from_numpy(np.random.default_rng(1).permutation(len(xy)))
    image = to_tensor(photo)
    first, second = FramedKeypoints(image, xy, radius, direction), FramedKeypoints(image, xy[other], radius[other],
                                                                                  direction[other])
    moved = {gate: refine_matches(first, second, RefinementSettings(min_correlation=gate, samples=samples)
                                  )[1].float().mean()
             for gate in (RefinementSettings().min_correlation, -1.0)}
    assert moved[RefinementSettings().min_correlation] < 0.05, moved
    assert moved[-1.0] > 0.5, moved


@pytest.mark.parametrize("samples, max_window", [(0, 0.0), (256, 48.0)])
def test_compiled_and_batched_refinement_agree(photo, keypoints, samples, max_window):
    # The CPU's compiled kernel and the batched tensor form (CUDA's) align the same matches of a turned, zoomed
    # view (true matches moved up to 2 px, and a fifth paired with random keypoints) to the same places: the
    # same keypoints move (a window at a threshold may tip either way under float rounding: at most 1%), and
    # they land within a hundredth of a pixel of each other (measured: every keypoint alike, at most 1e-4 px
    # apart; the batched form samples through OpenCV's remap, whose bilinear weights are 1/32 px steps).
    matrix = similarity(25, 1.15, (6.1, -3.7))
    warped = cv2.warpPerspective(photo, matrix, (640, 480), flags=cv2.INTER_LINEAR)
    true = cv2.perspectiveTransform(keypoints.keypoints[None].astype(np.float64), matrix)[0].astype(np.float32)
    rng = np.random.default_rng(2)
    start = true + rng.uniform(-2, 2, true.shape).astype(np.float32)
    wrong = rng.random(len(true)) < 0.2
    start[wrong] = start[rng.permutation(np.flatnonzero(wrong))]
    angle1 = keypoints.orientations - np.deg2rad(25)
    first = FramedKeypoints(to_tensor(photo), torch.from_numpy(keypoints.keypoints),
                            torch.from_numpy(keypoints.scales), directions(keypoints.orientations))
    second = FramedKeypoints(to_tensor(warped), torch.from_numpy(start),
                             torch.from_numpy(keypoints.scales * 1.15), directions(angle1))
    settings = RefinementSettings(samples=samples, max_window=max_window)
    compiled, compiled_moved = refine_matches(first, second, settings)
    batched, batched_moved = refine_matches_batched(first, second, settings)
    assert 0.5 < compiled_moved.float().mean() < 0.95
    assert (compiled_moved != batched_moved).float().mean() <= 0.01
    both = compiled_moved & batched_moved
    assert (compiled - batched)[both].norm(dim=1).max() < 0.01


def test_refinement_runs_where_its_compiled_kernel_cannot_be_cached(tmp_path):
    # A read-only install run by a user without a writable home leaves the compiler no place for its cache
    # (numba raised "cannot cache function ...: no locator available" on import): the kernel is then compiled in
    # memory, and the refinement still works. Simulated by allowing only the cache locator of IPython sessions.
    script = (
        "import torch\n"
        "from rfnet_ros.matching.refinement import FramedKeypoints, refine_matches\n"
        "image = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))\n"
        "keypoints = FramedKeypoints(image, torch.tensor([[32.0, 30.0]]), torch.tensor([8.0]),"
        " torch.tensor([[1.0, 0.0]]))\n"
        "xy, moved = refine_matches(keypoints, keypoints)\n"
        "print('refined', bool(moved[0]), float((xy - keypoints.xy).abs().max()) < 1e-4)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refined True True" in result.stdout  # a match with itself: aligned, and not moved


def test_correlation_of_windows(photo):
    windows = to_tensor(photo)[0, :, 100:132, 200:232]
    windows = windows - windows.mean()
    weights = torch.rand(32, 32, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert correlation(windows, 3 * windows, weights).item() == pytest.approx(1.0, abs=1e-5)
    assert correlation(windows, -windows, weights).item() == pytest.approx(-1.0, abs=1e-5)
    assert abs(correlation(windows, noise, weights).item()) < 0.2
    assert correlation(torch.zeros_like(windows), torch.zeros_like(windows), weights).item() == 0.0


def test_pipeline_refines_the_matched_keypoints_of_each_frame(photo):
    # Two frames of a camera turning by 8 degrees and zooming in by 1.1: with refine_matches the keypoints of
    # the second frame that matched the first lie closer to their true correspondences than the detections.
    matrix = similarity(8, 1.1, (5.5, 3.2))
    warped = cv2.warpPerspective(photo, matrix, (640, 480), flags=cv2.INTER_LINEAR)
    errors = {}
    for refine in (False, True):
        pipeline = FeaturePipeline(FeatureConfig(device="cpu", top_k=512, refine_matches=refine))
        first = pipeline.process(photo)
        second = pipeline.process(warped)
        true = cv2.perspectiveTransform(first.features.keypoints[second.matches[:, 0]][None].astype(np.float64),
                                        matrix)[0]
        errors[refine] = np.linalg.norm(second.features.keypoints[second.matches[:, 1]] - true, axis=1)
    assert len(errors[True]) > 150
    detected, refined = (np.mean(errors[flag] <= 1.0) for flag in (False, True))
    assert refined > detected + 0.1, (detected, refined)  # measured: 0.65 -> 0.85
    assert np.mean(errors[True] <= 3.0) >= np.mean(errors[False] <= 3.0)  # measured: 0.873 -> 0.886


def test_evaluation_refines_matches_as_the_node_does(photo):
    # rfnet-eval measures refined matches through FeaturePipeline.refine on extracted features; the node's
    # FeaturePipeline.process refines inside the frame loop. Both must place the keypoints alike.
    from rfnet_ros.evaluation.extractors import RFNetExtractor

    matrix = similarity(-15, 0.9, (-4.2, 6.1))
    warped = cv2.warpPerspective(photo, matrix, (640, 480), flags=cv2.INTER_LINEAR)
    config = FeatureConfig(device="cpu", top_k=512)
    pipeline = FeaturePipeline(config)
    pipeline.process(photo)
    second = pipeline.process(warped)
    extractor = RFNetExtractor("lite", config)
    f0, f1 = extractor.extract(photo), extractor.extract(warped)
    matches, keypoints1 = extractor.match_features(f0, f1)
    assert np.array_equal(matches, second.matches) and len(matches) > 150
    assert np.abs(keypoints1 - second.features.keypoints).max() < 1e-3
    assert np.abs(keypoints1[matches[:, 1]] - f1.keypoints[matches[:, 1]]).max() > 0.5  # they did move


@pytest.mark.parametrize("count", [1, 256, 1023, 1024])
def test_compiled_selection_of_the_strongest_samples(count):
    # The refinement's radix selection: the count largest values (ties at the boundary resolved to the first
    # indices), on values spread over many binades, with ties, zeros and one repeated value throughout.
    rng = np.random.default_rng(count)
    for values in (rng.random(1024) ** 6, np.round(rng.random(1024), 2), np.zeros(1024), np.full(1024, 0.25),
                   np.where(rng.random(1024) < 0.5, 0.0, rng.random(1024) * 1e-9)):
        out = np.full(count, -1, np.int64)
        _strongest(values, np.empty(1024, np.int64), np.empty(1 << DIGIT_BITS, np.int64), count, out)
        assert len(set(out.tolist())) == count and out.min() >= 0
        assert np.array_equal(np.sort(values[out]), np.sort(values)[-count:])
        boundary = values[out].min()
        equal = np.flatnonzero(values == boundary)
        taken = np.intersect1d(out, equal)
        assert np.array_equal(taken, equal[:len(taken)])  # the first of the equal ones
