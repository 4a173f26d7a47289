"""Evaluation metrics on synthetic data with known answers, the Oxford homography file and pair generation."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rfnet_ros.config import FeatureConfig, NodeConfig, load_config
from rfnet_ros.evaluation.metrics import evaluate_pair, frame_errors, inside, warp_points
from rfnet_ros.evaluation.pairs import oxford_pair, photo_pairs, read_homography, resize_homography, synthetic_pairs

DATA = Path(__file__).resolve().parents[1] / "data"
SIZE = (480, 640)
needs_data = pytest.mark.skipif(not (DATA / "oxford" / "H1to3p.xml").is_file(),
                                reason="data/ not fetched (scripts/fetch_data.sh)")


def grid_points(step: int = 40, margin: int = 60) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(margin, SIZE[1] - margin, step), np.arange(margin, SIZE[0] - margin, step))
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def similarity(angle_deg: float = 10.0, scale: float = 1.1, shift=(12.0, -7.0)) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    cx, cy = (SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2
    to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    rot = np.array([[scale * np.cos(a), -scale * np.sin(a), 0], [scale * np.sin(a), scale * np.cos(a), 0], [0, 0, 1]])
    back = np.array([[1, 0, cx + shift[0]], [0, 1, cy + shift[1]], [0, 0, 1]])
    return back @ rot @ to_c


def perfect_case(h: np.ndarray):
    kp0 = grid_points()
    kp1 = warp_points(h, kp0)
    keep = inside(kp1, SIZE)
    kp0, kp1 = kp0[keep], kp1[keep]
    matches = np.stack([np.arange(len(kp0))] * 2, axis=1)
    return kp0, kp1, matches


def test_perfect_matches_score_one():
    h = similarity()
    kp0, kp1, matches = perfect_case(h)
    m = evaluate_pair(kp0, kp1, matches, h, SIZE, SIZE)
    assert m.matches == len(kp0) > 50
    assert all(m.mma[t] == 1.0 for t in range(1, 11))
    assert m.matching_score == pytest.approx(1.0)
    assert m.repeatability == pytest.approx(1.0)
    assert m.corner_error < 1e-3 and all(m.ha.values())
    assert m.shared0 == m.shared1 == m.keypoints0 == m.keypoints1


def test_matches_shifted_by_four_pixels():
    h = similarity()
    kp0, kp1, matches = perfect_case(h)
    m = evaluate_pair(kp0, kp1 + [4.0, 0.0], matches, h, SIZE, SIZE)
    assert m.mma[3] == 0.0 and m.mma[4] == 1.0 and m.mma[5] == 1.0
    assert m.correct[3] == 0 and m.correct[5] == m.matches
    assert m.matching_score == 0.0
    assert m.repeatability == 0.0  # the grid's 40 px spacing leaves no other point within 3 px
    assert m.corner_error == pytest.approx(4.0, abs=1e-3)  # a consistent shift: RANSAC finds H plus 4 px
    assert not m.ha[3] and m.ha[5]


def test_refined_match_positions_count_for_matches_but_not_for_repeatability():
    # Detections 4 px off the truth, matched and then placed back on it: match metrics and the homography
    # use the placed keypoints, repeatability the detections.
    h = similarity()
    kp0, kp1, matches = perfect_case(h)
    m = evaluate_pair(kp0, kp1 + [4.0, 0.0], matches, h, SIZE, SIZE, matched_keypoints1=kp1)
    assert m.mma[1] == 1.0 and m.matching_score == pytest.approx(1.0)
    assert m.corner_error < 1e-3 and all(m.ha.values())
    assert m.repeatability == 0.0


def test_extractors_without_refinement_measure_matches_at_their_keypoints():
    from rfnet_ros.evaluation.extractors import Extractor, Features

    class Fixed(Extractor):
        def match(self, desc0, desc1):
            return np.array([[0, 1]])

    f0 = Features(np.zeros((1, 2), np.float32), np.zeros((1, 4)))
    f1 = Features(np.ones((2, 2), np.float32), np.zeros((2, 4)))
    matches, keypoints1 = Fixed().match_features(f0, f1)
    assert matches.tolist() == [[0, 1]] and keypoints1 is f1.keypoints


def test_frame_errors_follow_the_homography():
    h = similarity(angle_deg=20.0, scale=1.25)
    kp0, kp1, _ = perfect_case(h)
    n = len(kp0)
    theta0 = np.linspace(-3.0, 3.0, n)
    angle, scale = frame_errors(kp0, kp1, theta0, theta0 + np.radians(20.0), np.full(n, 4.0), np.full(n, 5.0),
                                h, SIZE)
    assert len(angle) == len(scale) == n
    assert np.abs(angle).max() < 1e-3 and np.abs(scale).max() < 1e-6
    # Frames that ignore the warp (upright, fixed size) are off by exactly its rotation and scale.
    angle, scale = frame_errors(kp0, kp1, np.zeros(n), np.zeros(n), np.ones(n), np.ones(n), h, SIZE)
    assert np.allclose(angle, 20.0, atol=1e-3) and np.allclose(scale, np.log2(1.25), atol=1e-6)
    # Angles wrap: a difference of 370 degrees is an error of 10.
    angle, _ = frame_errors(kp0, kp0, np.zeros(n), np.full(n, np.radians(370.0)), np.ones(n), np.ones(n),
                            np.eye(3), SIZE)
    assert np.allclose(angle, 10.0, atol=1e-3)
    # Keypoints without a detection near their projection are left out.
    angle, _ = frame_errors(kp0, kp1 + [10.0, 0.0], theta0, theta0, np.ones(n), np.ones(n), h, SIZE)
    assert len(angle) == 0


def test_half_the_matches_wrong():
    h = np.eye(3)
    kp0 = grid_points()
    n = len(kp0)
    matches = np.stack([np.arange(n), np.arange(n)], axis=1)
    matches[: n // 2, 1] = np.roll(matches[: n // 2, 1], 1)  # neighbours 40 px away: wrong
    m = evaluate_pair(kp0, kp0.copy(), matches, h, SIZE, SIZE)
    assert m.mma[10] == pytest.approx((n - n // 2) / n)
    assert m.matching_score == pytest.approx((n - n // 2) / n)
    assert m.repeatability == 1.0 and m.ha[1]


def test_shared_region_and_repeatability_counts():
    h = np.array([[1, 0, 100.0], [0, 1, 0], [0, 0, 1]])  # image1 sees image0 moved 100 px right
    kp0 = np.array([[10.0, 10], [600, 10], [300, 200]])  # (600, 10) lands at x = 700: outside image1
    kp1 = np.array([[110.0, 10], [400, 200], [50, 50], [401, 401]])  # (50, 50) comes from x = -50: outside
    m = evaluate_pair(kp0, kp1, np.zeros((0, 2), int), h, SIZE, SIZE)
    assert (m.shared0, m.shared1) == (2, 3)
    assert m.repeated == 4  # two of image0, (110, 10) and (400, 200) of image1; (401, 401) has no partner
    assert m.repeatability == pytest.approx(4 / 5)
    assert m.matches == 0 and m.mma[3] == 0.0 and m.matching_score == 0.0
    assert not any(m.ha.values()) and m.corner_error == float("inf")


def test_too_few_matches_fail_homography():
    h = np.eye(3)
    kp = grid_points()[:3]
    m = evaluate_pair(kp, kp, np.stack([np.arange(3)] * 2, axis=1), h, SIZE, SIZE)
    assert m.mma[1] == 1.0 and not m.ha[10] and m.inliers == 0


def test_out_of_range_match_is_an_error():
    kp = grid_points()[:5]
    with pytest.raises(ValueError, match="matches"):
        evaluate_pair(kp, kp, np.array([[0, 7]]), np.eye(3), SIZE, SIZE)


def test_resize_homography_is_consistent():
    h = similarity(5.0, 0.9)
    native0, native1, small = (640, 800), (600, 700), SIZE
    h_small = resize_homography(h, native0, small, native1, small)
    point = np.array([[123.0, 321.0]])
    sx0, sy0 = small[1] / native0[1], small[0] / native0[0]
    sx1, sy1 = small[1] / native1[1], small[0] / native1[0]
    small_point = (point + 0.5) * [sx0, sy0] - 0.5
    expected = (warp_points(h, point) + 0.5) * [sx1, sy1] - 0.5
    np.testing.assert_allclose(warp_points(h_small, small_point), expected, atol=1e-9)


@needs_data
def test_oxford_homography_file():
    h = read_homography(DATA / "oxford" / "H1to3p.xml")
    assert h.shape == (3, 3) and h[2, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(h[0], [7.6285898e-01, -2.9922929e-01, 2.2567123e+02])
    corners = np.array([[0, 0], [799, 0], [799, 639], [0, 639]], dtype=np.float64)  # graf1 is 800x640 (w x h)
    warped = warp_points(h, corners)
    assert np.isfinite(warped).all()
    # A plausible viewpoint change: corners move by tens to hundreds of px, the quad stays convex and large.
    moved = np.linalg.norm(warped - corners, axis=1)
    assert (moved > 10).all() and (moved < 600).all()
    x, y = warped[:, 0], warped[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert 0.3 * 800 * 640 < area < 3 * 800 * 640


@needs_data
def test_oxford_pair_resized():
    pair = oxford_pair(DATA / "oxford")
    assert pair.image0.shape == pair.image1.shape == SIZE and pair.image0.dtype == np.uint8
    native = oxford_pair(DATA / "oxford", size=None)
    assert native.image0.shape == (640, 800)


def test_pairs_are_deterministic():
    rng = np.random.default_rng(5)
    photo = (rng.random((300, 500)) * 255).astype(np.uint8)
    a = photo_pairs("photo", photo, 2, seed=3)
    b = photo_pairs("photo", photo, 2, seed=3)
    c = photo_pairs("photo", photo, 2, seed=4)
    assert [p.kind for p in a] == ["viewpoint", "viewpoint", "illumination", "illumination"]
    for p, q in zip(a, b):
        assert p.name == q.name and p.image0.shape == p.image1.shape == SIZE
        np.testing.assert_array_equal(p.image1, q.image1)
        np.testing.assert_array_equal(p.homography, q.homography)
    assert not np.array_equal(a[0].homography, c[0].homography)
    assert all(np.array_equal(p.homography, np.eye(3)) for p in a if p.kind == "illumination")


@needs_data
def test_heldout_pairs_do_not_depend_on_other_photos():
    folder = DATA / "images" / "heldout"
    one = synthetic_pairs(folder, 1, seed=0, max_photos=1)
    two = synthetic_pairs(folder, 1, seed=0, max_photos=2)
    assert len(one) == 2 and len(two) == 4
    np.testing.assert_array_equal(one[0].homography, two[0].homography)
    np.testing.assert_array_equal(one[0].image1, two[0].image1)


def test_weights_spec():
    from rfnet_ros.evaluation.extractors import parse_weights_spec

    assert parse_weights_spec("mine=runs/a:b.pt:3") == ("mine", Path("runs/a:b.pt"), 3)
    for bad in ("mine=runs/a.pt", "runs/a.pt:3", "mine=runs/a.pt:x"):
        with pytest.raises(ValueError, match="NAME=PATH:N"):
            parse_weights_spec(bad)


@pytest.mark.parametrize("method", ["orb", "sift"])
def test_opencv_extractors(method):
    from rfnet_ros.evaluation.extractors import make_extractors

    pair = photo_pairs("noise", (np.random.default_rng(0).random((480, 640)) * 255).astype(np.uint8), 1, 0)[1]
    (extractor,) = make_extractors([method], [], max_keypoints=200)
    f0, ms = extractor.timed_extract(pair.image0)
    f1 = extractor.extract(pair.image1)
    assert 0 < len(f0) <= 200 and f0.keypoints.shape == (len(f0), 2) and len(f0.descriptors) == len(f0) and ms > 0
    assert f0.orientations.shape == f0.scales.shape == (len(f0),) and (f0.scales > 0).all()
    matches = extractor.match(f0.descriptors, f1.descriptors)
    assert matches.ndim == 2 and matches.shape[1] == 2 and len(matches) > 0
    assert len(np.unique(matches[:, 0])) == len(matches)  # cross-checked: one-to-one
    empty = extractor.match(f0.descriptors[:0], f1.descriptors)
    assert empty.shape == (0, 2)


def test_image_frame_variants_carry_their_own_settings():
    from rfnet_ros.evaluation.extractors import make_extractors

    lite, image480, native = make_extractors(["rfnet_lite", "rfnet_lite_img480", "rfnet_lite_native"], [],
                                             max_keypoints=64, device="cpu")
    assert (lite.config.keypoint_frames, lite.config.model_size) == ("image", (240, 320))
    # rfnet_lite is rfnet_lite.pt (HardNetLite; lite.yaml's file carries HardNetLite8) with the defaults.
    assert lite.config == dataclasses.replace(FeatureConfig(), weights=lite.config.weights, descriptor="hardnet_lite",
                                              top_k=64, device="cpu")
    assert (image480.config.keypoint_frames, image480.config.model_size) == ("image", (480, 640))
    assert image480.config.top_k == 64 and image480.describe()["keypoint_frames"] == "image"
    assert (image480.config.min_strength, image480.config.second_peak_ratio) == (0.0, 1.0)
    # rfnet_lite_native is config/lite_native.yaml's pipeline, with the evaluation's top-k.
    shipped = load_config(Path(__file__).resolve().parents[1] / "config" / "lite_native.yaml",
                          ignore=NodeConfig.names())
    assert native.config == dataclasses.replace(shipped, weights=native.config.weights, top_k=64, device="cpu")
    assert native.describe()["second_peak_ratio"] == 0.7


def test_unknown_method_and_missing_weights():
    from rfnet_ros.evaluation.extractors import make_extractors

    with pytest.raises(ValueError, match="unknown method"):
        make_extractors(["surf"], [])
    with pytest.raises(ValueError, match="weights file not found"):
        make_extractors(["orb"], ["mine=/nonexistent/file.pt:9"])


@needs_data
def test_eval_command_small_run(tmp_path, capsys):
    import json

    from rfnet_ros.evaluation.evaluate import main

    assert main(["--data", str(DATA), "--methods", "orb", "--max-photos", "1", "--pairs-per-image", "1",
                 "--out", str(tmp_path), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "MMA@3" in table and "graf1->graf3" in table
    result = json.loads((tmp_path / "results.json").read_text())
    assert [r["set"] for r in result["summary"]] == ["viewpoint", "illumination", "synthetic", "graf1->graf3"]
    assert len(result["pairs"]) == 3 and (tmp_path / "results.md").is_file()
    # One photo: its row holds the mean of its two pairs (the graf pair belongs to no photo of the split).
    [photo] = result["per_photo"]
    own = [r for r in result["pairs"] if "/" in r["pair"]]
    assert photo["pairs"] == 2 and photo["mma@3"] == pytest.approx(np.mean([r["mma"]["3"] for r in own]))
    assert "## Per photo" in (tmp_path / "results.md").read_text()
    # ORB's orientations are repeatable: a few degrees of error on the synthetic pairs, never near random (90).
    assert all(0 <= row["orientation_error"] < 30 for row in result["summary"])


def test_per_photo_breakdown_puts_the_photos_lost_most_first():
    from rfnet_ros.evaluation.report import format_per_photo, per_photo_rows

    def pair(method, name, mma3, ha3):
        return {"method": method, "pair": name, "mma": {"1": mma3 / 2, "3": mma3}, "ha": {"3": ha3}}

    records = [pair("a", "wall/v0", 0.9, True), pair("a", "wall/i0", 0.7, False), pair("b", "wall/v0", 0.6, True),
               pair("b", "wall/i0", 0.6, True), pair("a", "boat/v0", 0.5, True), pair("b", "boat/v0", 0.8, True),
               pair("a", "graf1->graf3", 0.1, False)]
    sequences = [{"method": "a", "sequence": "wall", "mma@3": 0.95}, {"method": "b", "sequence": "wall", "mma@3": 0.9}]
    rows = per_photo_rows(records, sequences)
    wall_a = next(r for r in rows if r["photo"] == "wall" and r["method"] == "a")
    assert wall_a == {"photo": "wall", "method": "a", "pairs": 2, "mma@1": pytest.approx(0.4),
                      "mma@3": pytest.approx(0.8), "ha@3": 0.5, "sequence": 0.95}
    assert {r["photo"] for r in rows} == {"wall", "boat"}
    lines = format_per_photo(rows).splitlines()
    # boat: a - b = -0.3 (a loses), wall: +0.2; boat has no sequence.
    assert lines[2].split()[0] == "boat" and lines[2].split()[-1] == "-0.300" and lines[2].split()[3] == "-"
    assert lines[3].split()[0] == "wall" and lines[3].split()[-1] == "+0.200"


def test_sweep_lists_variants_without_weights(tmp_path):
    import cv2

    from rfnet_ros.evaluation.variants import complexity_rows, format_table, plot, variant_rows

    complexity = complexity_rows(32, 32)
    assert [r["replaced_layers"] for r in complexity] == list(range(10))
    assert complexity[9]["parameters"] < complexity[0]["parameters"] and complexity[0]["macs_change"] == 0
    scores = {"ms_viewpoint": 0.3, "ms_illumination": 0.5, "ms_synthetic": 0.4, "matches": 200.0, "keypoints": 900.0}
    rows = variant_rows(complexity, {(9, Path("lite.pt")): scores})
    assert len(rows) == 10 and rows[9]["ms_synthetic"] == 0.4 and rows[0]["weights"] is None
    table = format_table(rows, 32, 32).splitlines()
    assert "lite.pt" in table[-1] and "0.400" in table[-1]
    assert table[2].split()[-5:] == ["-"] * 5  # n = 0 has no weights: no score
    plot(tmp_path / "sweep.png", rows, 32, 32)
    assert cv2.imread(str(tmp_path / "sweep.png")).shape == (640, 960, 3)
