"""The parallax set's truth (rfnet_ros.evaluation.parallax) on two real photos, and its scoring in the front-end
evaluation: a panel point maps by the panel's homography, occluded wall points are flagged, and the frames show
what the truth says."""
import cv2
import numpy as np
import pytest
import torch
from photos import gray_photo

from rfnet_ros.config import FeatureConfig
from rfnet_ros.evaluation import parallax
from rfnet_ros.evaluation.front_end import OpenCVFrontEnd, run_sequence, score_pair
from rfnet_ros.evaluation.metrics import warp_points
from rfnet_ros.matching.narrow_check import NarrowCheck, check_wide_windows
from rfnet_ros.matching.refinement import FramedKeypoints, RefinementSettings, refine_matches

WALL_PHOTO, PANEL_PHOTO = "images/validation/ocvdoc-boat.png", "images/validation/ocv-001.png"


@pytest.fixture(scope="module")
def sequence() -> parallax.ParallaxSequence:
    return parallax.parallax_sequence("boat+001", gray_photo(WALL_PHOTO), gray_photo(PANEL_PHOTO), seed=0, frames=6)


def agreement(sequence, t: int, plane: int, points: np.ndarray, half: int = 8) -> np.ndarray:
    """Correlation of the window around each point (N, 2) of frame t - 1 with frame t warped back by the plane's
    homography (what the frames show where the truth puts the point); NaN for windows without texture."""
    back = cv2.warpPerspective(sequence.frames[t], sequence.step(plane, t), parallax.SIZE[::-1],
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).astype(np.float32)
    out = []
    for x, y in np.rint(points).astype(int):
        a = sequence.frames[t - 1][y - half:y + half + 1, x - half:x + half + 1].astype(np.float32)
        b = back[y - half:y + half + 1, x - half:x + half + 1]
        out.append(np.corrcoef(a.ravel(), b.ravel())[0, 1] if a.std() > 8 else np.nan)
    return np.array(out)


def inner_points(labels: np.ndarray, plane: int, margin: int = 20) -> np.ndarray:
    """Pixels (x, y) of ``plane`` at least ``margin`` px from the panel's outline and the frame's border."""
    distance = parallax.boundary_distance(labels)
    ys, xs = np.nonzero((labels == plane) & (distance > margin))
    keep = (xs > margin) & (xs < labels.shape[1] - margin) & (ys > margin) & (ys < labels.shape[0] - margin)
    return np.stack([xs[keep], ys[keep]], axis=1)[::499].astype(float)


def test_frames_and_labels_have_the_protocol_size(sequence):
    assert all(frame.shape == parallax.SIZE and frame.dtype == np.uint8 for frame in sequence.frames)
    shares = [labels.mean() for labels in sequence.labels]
    assert all(0.15 < share < 0.4 for share in shares)  # the panel covers about 27% of every frame
    # The two planes move differently: about PARALLAX_PX px per frame apart.
    centre = np.array([[320.0, 240.0]])
    gap = np.linalg.norm(warp_points(sequence.step(parallax.PANEL, 1), centre)
                         - warp_points(sequence.step(parallax.WALL, 1), centre))
    assert 3.0 < gap < 8.0


def test_panel_points_map_by_the_panel_homography(sequence):
    points = inner_points(sequence.labels[2], parallax.PANEL)
    assert len(points) >= 5
    truth = sequence.truth(points, 3)
    assert np.all(truth["plane"] == parallax.PANEL) and np.all(truth["visible"])
    np.testing.assert_allclose(truth["expected"], warp_points(sequence.step(parallax.PANEL, 3), points))
    # What the frames show: the panel's homography explains them (sensor noise and interpolation aside), the
    # wall's does not.
    right, other = agreement(sequence, 3, parallax.PANEL, points), agreement(sequence, 3, parallax.WALL, points)
    assert np.isfinite(right).sum() >= 3 and np.nanmin(right) > 0.85
    assert np.nanmedian(other) < np.nanmedian(right) - 0.1


def test_wall_points_map_by_the_wall_homography(sequence):
    points = inner_points(sequence.labels[2], parallax.WALL)
    truth = sequence.truth(points, 3)
    assert np.all(truth["plane"] == parallax.WALL)
    np.testing.assert_allclose(truth["expected"], warp_points(sequence.step(parallax.WALL, 3), points))
    visible = truth["visible"]
    assert visible.sum() >= 5
    right = agreement(sequence, 3, parallax.WALL, points[visible])
    other = agreement(sequence, 3, parallax.PANEL, points[visible])
    assert np.isfinite(right).sum() >= 3 and np.nanmin(right) > 0.85
    assert np.nanmedian(other) < np.nanmedian(right) - 0.1


def test_occluded_points_are_flagged(sequence):
    # Wall pixels of frame t - 1 that the panel covers in frame t, as the wall's homography places them.
    for t in range(1, len(sequence.frames)):
        wall = np.argwhere(sequence.labels[t - 1] == parallax.WALL)[:, ::-1].astype(float)
        under = warp_points(sequence.step(parallax.WALL, t), wall)
        inside = np.all((under >= 0) & (under <= np.array([639, 479])), axis=1)
        covered = np.zeros(len(wall), bool)
        covered[inside] = parallax.sample(sequence.labels[t], under[inside]) == parallax.PANEL
        assert covered.sum() > 100  # the panel moves over the wall every frame
        truth = sequence.truth(wall, t)
        assert np.all(truth["plane"] == parallax.WALL)
        assert not truth["visible"][covered].any()
        assert truth["visible"][inside & ~covered].all()
        # Their place in frame t shows the panel: the panel's pixels there are those of frame t.
        panel_here = sequence.truth(wall[covered][:5], t)["expected"]
        assert np.all(parallax.sample(sequence.labels[t], panel_here) == parallax.PANEL)


def test_scoring_counts_matches_onto_hidden_points_as_wrong(sequence):
    points = inner_points(sequence.labels[0], parallax.WALL, margin=4)
    truth = sequence.truth(points, 1)
    keypoints1 = truth["expected"].copy()  # hidden points "matched" where they would be are still wrong
    matches = np.stack([np.arange(len(points))] * 2, axis=1)
    correct, wrong, hidden = score_pair(sequence, 1, points, keypoints1, matches)
    assert hidden == (~truth["visible"] & ~truth["boundary"]).sum()
    assert correct + wrong == len(points) and wrong >= hidden
    shifted = keypoints1 + np.array([4.0, 0.0])  # 4 px off: correct only where the other plane explains it
    correct, _, _ = score_pair(sequence, 1, points, shifted, matches)
    assert correct <= truth["boundary"].sum()


def test_sift_front_end_on_the_parallax_set(sequence):
    result = run_sequence(FeatureConfig(), sequence, OpenCVFrontEnd("sift", FeatureConfig(), 1024))
    assert result["precision"] > 0.9 and result["correct"] > 100


def wall_points_beside_the_panel(sequence, low: float = 20, high: float = 40) -> np.ndarray:
    """Every 97th wall pixel (x, y) of frame 0 between low and high px from the panel's outline, 40 px inside the
    frame."""
    distance = parallax.boundary_distance(sequence.labels[0])
    ys, xs = np.nonzero((sequence.labels[0] == parallax.WALL) & (distance > low) & (distance < high))
    points = np.stack([xs, ys], axis=1)[::97].astype(float)
    return points[np.all((points > 40) & (points < np.array([600, 440])), axis=1)]


def framed_points(frame: np.ndarray, xy: np.ndarray, radius: float = 100.0) -> FramedKeypoints:
    """Keypoints at ``xy`` (N, 2) of a frame with ``radius`` px patches, upright."""
    n = len(xy)
    return FramedKeypoints(torch.from_numpy(frame.astype(np.float32) / 255.0)[None, None],
                           torch.tensor(xy, dtype=torch.float32), torch.full((n,), radius),
                           torch.tensor([[1.0, 0.0]]).repeat(n, 1))


def test_capped_refinement_windows_align_wall_points_beside_the_panel(sequence):
    # Keypoints of flat regions have patches ~100 px wide; a window that wide beside the panel aligns on the
    # panel, which moves ~5 px more than the wall. Capped at 16 px it aligns on the wall point's surroundings.
    points = wall_points_beside_the_panel(sequence)
    truth = sequence.truth(points, 1)
    first = framed_points(sequence.frames[0], points)
    second = framed_points(sequence.frames[1], truth["expected"] + np.array([1.5, -1.0]))  # the detector's error
    results = {}
    for cap in (0.0, 16.0):
        xy, aligned = refine_matches(first, second, RefinementSettings(max_window=cap))
        error = np.linalg.norm(xy.numpy() - truth["expected"], axis=1)[aligned.numpy()]
        results[cap] = (aligned.float().mean().item(), np.median(error), (error > 3).mean())
    assert len(points) > 100
    assert results[16.0][0] > 0.6 and results[16.0][1] < 1.0 and results[16.0][2] < 0.02
    assert results[0.0][1] > 2.0 and results[0.0][2] > 0.2  # measured: median 2.8 px, 45% beyond 3 px


def narrow_check_errors(sequence, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Errors (px) against the truth of the aligned points' places in frame 1: refined in the shipped 48 px
    windows, and after the narrow check (refine_narrow_window: 16)."""
    truth = sequence.truth(points, 1)
    first = framed_points(sequence.frames[0], points)
    second = framed_points(sequence.frames[1], truth["expected"] + np.array([1.5, -1.0]))  # the detector's error
    settings = RefinementSettings(max_window=48.0)
    wide, aligned = refine_matches(first, second, settings)
    checked = check_wide_windows(first, second, wide, settings, NarrowCheck(window=16.0))
    return tuple(np.linalg.norm(xy.numpy() - truth["expected"], axis=1)[aligned.numpy()] for xy in (wide, checked))


def test_narrow_check_moves_wide_windows_back_onto_the_wall(sequence):
    # The 48 px windows of 100 px patches 20-40 px beside the panel align partly on the panel; aligned again
    # from there in 16 px windows, the points go back to where the wall moved them (measured: median 1.72 ->
    # 0.54 px, beyond 3 px 25% -> 15% of 288 points).
    wide, checked = narrow_check_errors(sequence, wall_points_beside_the_panel(sequence))
    assert len(wide) > 100
    assert np.median(wide) > 1.3 and (wide > 3).mean() > 0.15
    assert np.median(checked) < 0.8 and (checked > 3).mean() < 0.7 * (wide > 3).mean()


def test_narrow_check_leaves_points_far_from_the_panel(sequence):
    # Where the whole wide window is wall, the narrow window agrees with it: places as good (measured: median
    # 0.117 -> 0.127 px, 1 of 285 points beyond 3 px after the check, none before).
    wide, checked = narrow_check_errors(sequence, wall_points_beside_the_panel(sequence, 100, np.inf))
    assert len(wide) > 100 and np.median(wide) < 0.3
    assert np.median(checked) < np.median(wide) + 0.05 and (checked > 3).mean() < 0.02


def test_narrow_check_cuts_the_published_wrong_matches(sequence):
    # The front end (FeatureTracker: refinement, then the fundamental-matrix check) over the sequence, with and
    # without refine_narrow_window (measured: 12.4 -> 9.6 wrong and 201.8 -> 201.2 correct matches per pair).
    results = [run_sequence(FeatureConfig(device="cpu", top_k=1024, refine_narrow_window=window), sequence)
               for window in (0.0, 16.0)]
    assert results[1]["wrong"] < 0.9 * results[0]["wrong"]
    assert results[1]["correct"] > 0.97 * results[0]["correct"]
