"""The ROS-free stereo front end (rfnet_ros.tracking.stereo) on a rectified pair rendered from real photographs
with known disparity (test/stereo_scene.py), and the rectification of raw cameras' keypoints."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import stereo_scene as scene
from ros_harness import ROOT, photo

from rfnet_ros.config import NodeConfig, StereoConfig, load_config
from rfnet_ros.tracking.camera import CalibrationRejected, CameraModel
from rfnet_ros.tracking.stereo import NO_TRACK, StereoCalibration, StereoFrontEnd, stereo_candidates

FRAMES = 4
LITE = ROOT / 'config' / 'lite.yaml'
STAMP_STEP_NS = 100_000_000


def camera_info(**fields):
    return SimpleNamespace(binning_x=0, binning_y=0, roi=SimpleNamespace(width=0, height=0), **fields)


def scene_calibration(baseline: float = scene.BASELINE) -> StereoCalibration:
    left = CameraModel.from_camera_info(camera_info(**scene.camera_info_fields(False)))
    right = CameraModel.from_camera_info(camera_info(**scene.camera_info_fields(True, baseline)))
    return StereoCalibration.of(left, right, rectified_input=True)


def textures() -> tuple[np.ndarray, np.ndarray]:
    """The far wall (building.png) and the near board's texture (the middle of aero1.png)."""
    board = photo('aero1.png')
    h, w = board.shape[:2]
    return photo('building.png'), board[h // 2 - 70:h // 2 + 70, w // 2 - 75:w // 2 + 75]


@pytest.fixture(scope='module')
def sequence():
    """(front end, [(pair, stereo frame)] over FRAMES frames of the scene moving sideways)."""
    config = load_config(LITE, ignore=NodeConfig.names())
    front_end = StereoFrontEnd(config, StereoConfig())
    wall, board = textures()
    calibration = scene_calibration()
    frames = []
    for t in range(FRAMES):
        pair = scene.render(wall, board, t)
        frames.append((pair, front_end.process(pair.left, pair.right, 'bgr', (10 + t) * STAMP_STEP_NS,
                                               calibration)))
    return front_end, frames


def stereo_points(frame):
    matches = frame.stereo_matches
    return frame.left.features.keypoints[matches[:, 0]], frame.right.keypoints[matches[:, 1]]


def test_stereo_matches_lie_on_the_row_at_the_true_disparity(sequence):
    _, frames = sequence
    for t, (pair, frame) in enumerate(frames):
        left, right = stereo_points(frame)
        share, line = scene.disparity_report(pair, left, right)
        print(f'frame {t}: {len(frame.left.features)} left, {len(frame.right)} right keypoints; {line}')
        assert share >= 0.9, line
        truth = scene.true_disparity(pair, left)
        # Both depth layers are matched, and the message's disparities are the keypoints' own.
        assert (truth == scene.FAR).sum() >= 30 and (truth == scene.NEAR).sum() >= 30, line
        np.testing.assert_allclose(frame.disparities, left[:, 0] - right[:, 0], atol=1e-3)
        assert len(frame.stereo_matches) >= 0.4 * len(frame.left.features)


def test_right_keypoints_share_their_left_partners_track_ids(sequence):
    _, frames = sequence
    for t, (_, frame) in enumerate(frames):
        left_index, right_index = frame.stereo_matches.T
        np.testing.assert_array_equal(frame.right_track_ids[right_index], frame.left.track_ids[left_index])
        np.testing.assert_array_equal(frame.right_track_lengths[right_index], frame.left.track_lengths[left_index])
        unmatched = np.setdiff1d(np.arange(len(frame.right)), right_index)
        assert (frame.right_track_ids[unmatched] == NO_TRACK).all()
        assert len(set(frame.right_track_ids[right_index].tolist())) == len(right_index)  # one partner per id
        if t:
            # Left tracks go on from pair to pair, and the right partners carry them.
            previous_ids = set(frames[t - 1][1].left.track_ids.tolist())
            carried = np.isin(frame.right_track_ids[right_index], list(previous_ids))
            assert len(frame.left.matches) >= 0.6 * len(frame.left.features)
            assert carried.mean() >= 0.6


def test_normalised_coordinates_and_velocities_of_both_cameras(sequence):
    front_end, frames = sequence
    for t, (pair, frame) in enumerate(frames):
        for pixels, normalised in ((frame.left.features.keypoints, frame.left.normalised),
                                   (frame.right.keypoints, frame.right_normalised)):
            expected = (pixels - (scene.WIDTH / 2, scene.HEIGHT / 2)) / scene.FOCAL
            np.testing.assert_allclose(normalised, expected, atol=1e-6)
        if t:
            # The far wall moves FAR_STEP px per frame in both images: its right points' velocity says so.
            left, _ = stereo_points(frame)
            far = scene.true_disparity(pair, left) == scene.FAR
            moving = frame.right_velocities[frame.stereo_matches[far, 1], 0]
            moving = moving[moving != 0]
            assert len(moving) >= 20
            expected = scene.FAR_STEP / scene.FOCAL / (STAMP_STEP_NS * 1e-9)
            assert abs(np.median(moving) - expected) < 0.1 * expected
    statistics = front_end.stereo_statistics()
    assert statistics.pairs == FRAMES and statistics.matches_last == len(frames[-1][1].stereo_matches)
    assert scene.FAR < statistics.disparity_mean < scene.NEAR


def test_one_describe_call_serves_both_images():
    """Both images' patches go through the descriptor together: one describe call per pair, as for one mono
    frame, holding every description of both images."""
    config = load_config(LITE, ignore=NodeConfig.names(), top_k=64)
    front_end = StereoFrontEnd(config)
    engine = front_end.tracker.pipeline.engine
    calls = []
    describe = engine.describe

    def counted(patches):
        calls.append(len(patches))
        return describe(patches)

    engine.describe = counted
    pair = scene.render(*textures())
    front_end.tracker.pipeline.extract(pair.left)
    mono_calls, calls[:] = len(calls), []
    frame = front_end.process(pair.left, pair.right, 'bgr', 1, scene_calibration())
    assert len(calls) == mono_calls == 1
    # Each keypoint under its frame, plus those with a second scale or orientation peak under that one.
    assert len(frame.left.features) + len(frame.right) < calls[0] <= 3 * (len(frame.left.features) + len(frame.right))


def test_candidates_need_the_row_and_a_disparity_in_range():
    left = np.array([[100.0, 50.0], [100.0, 50.0], [100.0, 50.0], [100.0, 50.0], [100.0, 50.0]])
    right = np.array([[90.0, 50.4], [90.0, 51.5], [101.0, 50.0], [100.0, 50.0], [10.0, 50.0]])
    allowed = stereo_candidates(left[:1], right, row_tolerance=1.0, min_disparity=0.5, max_disparity=64.0)
    assert allowed.tolist() == [[True, False, False, False, False]]


def test_raw_cameras_keypoints_rectify_onto_common_rows():
    """Points seen by two distorted, slightly rotated cameras lie on one row at disparity fx * B / Z once
    rectified with the R and P of cv2.stereoRectify (as camera_calibration writes them into camera_info)."""
    size = (640, 480)
    K = np.array([[420.0, 0, 318.0], [0, 415.0, 244.0], [0, 0, 1]])
    D = np.array([-0.28, 0.07, 2e-4, -1e-4, 0.0])
    rotation, _ = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))
    translation = np.array([[-0.1], [0.002], [0.001]])
    R1, R2, P1, P2, *_ = cv2.stereoRectify(K, D, K, D, size, rotation, translation, alpha=0)

    def info(R, P):
        return camera_info(width=size[0], height=size[1], distortion_model='plumb_bob', d=D.tolist(),
                           k=K.ravel().tolist(), r=R.ravel().tolist(), p=P.ravel().tolist())

    calibration = StereoCalibration.of(CameraModel.from_camera_info(info(R1, P1)),
                                       CameraModel.from_camera_info(info(R2, P2)), rectified_input=False)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-1, 1, 200), rng.uniform(-0.8, 0.8, 200), rng.uniform(2, 10, 200)])
    left_pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, D)
    right_pixels, _ = cv2.projectPoints(points, cv2.Rodrigues(rotation)[0], translation, K, D)
    left = calibration.rectify('left', left_pixels.reshape(-1, 2))
    right = calibration.rectify('right', right_pixels.reshape(-1, 2))
    np.testing.assert_allclose(left[:, 1], right[:, 1], atol=1e-3)
    depth = (R1 @ points.T)[2]
    np.testing.assert_allclose(left[:, 0] - right[:, 0], P1[0, 0] * calibration.baseline / depth, rtol=1e-3)
    assert calibration.baseline == pytest.approx(0.1, rel=0.01)
    allowed = stereo_candidates(left, right, 1.0, 0.5, 128.0)
    assert allowed[np.arange(len(left)), np.arange(len(left))].all()


@pytest.mark.parametrize('left, right, reason', [
    (dict(), dict(baseline=0.0), 'no baseline'),
    (dict(), dict(baseline=-0.1), 'swapped'),
    (dict(), dict(p=[0.0] * 12), 'no projection matrix P'),
    (dict(width=640), dict(), 'left camera_info is for 640x240 images, right for 320x240'),
])
def test_calibrations_that_are_no_stereo_rig_are_refused(left, right, reason):
    right_fields = scene.camera_info_fields(True, right.pop('baseline', scene.BASELINE))
    cameras = [CameraModel.from_camera_info(camera_info(**{**scene.camera_info_fields(False), **left})),
               CameraModel.from_camera_info(camera_info(**{**right_fields, **right}))]
    with pytest.raises(CalibrationRejected, match=reason):
        StereoCalibration.of(*cameras, rectified_input=True)


def test_images_of_different_sizes_keep_the_left_tracks_and_say_why_there_is_no_stereo():
    config = load_config(LITE, ignore=NodeConfig.names(), top_k=64)
    front_end = StereoFrontEnd(config)
    pair = scene.render(*textures())
    frame = front_end.process(pair.left, cv2.resize(pair.right, (160, 120)), 'bgr', 1)
    assert 'differ in size (320x240 and 160x120)' in frame.problem
    assert len(frame.stereo_matches) == 0 and len(frame.left.features) > 0 and len(frame.right) > 0
    assert (frame.right_track_ids == NO_TRACK).all()


def test_stereo_yaml_holds_every_setting_with_its_default():
    from dataclasses import fields

    from rfnet_ros.config import FeatureConfig, read_parameters

    params = read_parameters(ROOT / 'config' / 'stereo.yaml')
    classes = (FeatureConfig, NodeConfig, StereoConfig)
    assert list(params) == [f.name for cls in classes for f in fields(cls)]
    for cls in classes:
        assert cls(**{f.name: params[f.name] for f in fields(cls)}) == cls()
    text = (ROOT / 'config' / 'stereo.yaml').read_text()
    for f in fields(StereoConfig):
        assert f'# {f.metadata["description"]}\n    {f.name}:' in text


@pytest.mark.parametrize('hypotheses, ratio', [(1, 1.0), (3, 1.0), (3, 0.9)])
def test_matching_among_allowed_pairs_equals_the_masked_dense_matching(hypotheses, ratio):
    import torch

    from rfnet_ros.matching.mutual_nn import match_mutual_nn, match_mutual_nn_among

    generator = torch.Generator().manual_seed(hypotheses)
    desc0 = torch.nn.functional.normalize(torch.randn(300, hypotheses, 32, generator=generator), dim=-1)
    desc1 = torch.nn.functional.normalize(torch.randn(280, hypotheses, 32, generator=generator), dim=-1)
    allowed = torch.rand(300, 280, generator=generator) < 0.05
    dense, dense_distances = match_mutual_nn(desc0, desc1, 1.3, ratio, allowed)
    sparse, sparse_distances = match_mutual_nn_among(desc0, desc1, allowed.nonzero(), 1.3, ratio)
    order = torch.argsort(sparse[:, 0])
    assert len(dense) >= 10
    assert torch.equal(sparse[order], dense)
    torch.testing.assert_close(sparse_distances[order], dense_distances)


def test_rfnet_eval_stereo_pairs_hold_the_disparity_they_state():
    """rfnet-eval's stereo set: every left pixel whose partner lies in the right image shows there, on its row,
    its true disparity to the left (occluded strips aside: the wall beside the board's edges)."""
    from rfnet_ros.evaluation.stereo import FAR, NEAR, stereo_pair

    gray = [cv2.cvtColor(photo(name), cv2.COLOR_BGR2GRAY) for name in ('building.png', 'aero1.png')]
    pair = stereo_pair('building', gray[0], gray[1], np.random.default_rng(0))
    height, width = pair.disparity.shape
    assert {FAR, NEAR} == set(np.unique(pair.disparity).tolist())
    y, x = np.mgrid[0:height, 0:width]
    target = x - pair.disparity.astype(int)
    inside = target >= 0
    same = pair.right[y[inside], target[inside]] == pair.left[inside]
    assert same.mean() > 0.95
    board = inside & (pair.disparity == NEAR)
    assert (pair.right[y[board], target[board]] == pair.left[board]).all()


def test_raw_input_rectifies_the_keypoints_and_matches_on_rows():
    """input_rectified false: keypoints are rectified with each camera's K, D, R and P (here the identity: the
    rendered pair is rectified already) and the pipeline's refinement places the right keypoints; the matches
    keep the row and disparity constraint, and most have the true disparity (measured: 0.93 on this pair)."""
    config = load_config(LITE, ignore=NodeConfig.names())
    front_end = StereoFrontEnd(config, StereoConfig(input_rectified=False))
    left = CameraModel.from_camera_info(camera_info(**scene.camera_info_fields(False)))
    right = CameraModel.from_camera_info(camera_info(**scene.camera_info_fields(True)))
    calibration = StereoCalibration.of(left, right, rectified_input=False)
    pair = scene.render(*textures())
    frame = front_end.process(pair.left, pair.right, 'bgr', 1, calibration)
    left_points, right_points = stereo_points(frame)
    share, line = scene.disparity_report(pair, left_points, right_points)
    print(line)
    assert len(frame.stereo_matches) >= 0.4 * len(frame.left.features)
    assert (np.abs(left_points[:, 1] - right_points[:, 1]) <= 1.0).all()
    assert share >= 0.85, line


def test_row_correlation_matches_opencv_template_matching():
    """refine_disparities scores every match at once; OpenCV's matchTemplate (TM_CCOEFF_NORMED) along the row,
    one match at a time, finds the same best shifts and scores."""
    from rfnet_ros.matching.disparity import refine_disparities

    rng = np.random.default_rng(3)
    left = cv2.GaussianBlur(rng.uniform(0, 1, (120, 200)).astype(np.float32), (0, 0), 1.5)
    shift = 7.3  # the right image is the left one moved 7.3 px to the left
    right = cv2.warpAffine(left, np.float32([[1, 0, -shift], [0, 1, 0]]), (200, 120), flags=cv2.INTER_CUBIC)
    left_points = np.column_stack([rng.uniform(20, 180, 60), rng.uniform(10, 110, 60)])
    right_points = left_points - np.column_stack([7.0 + rng.integers(-2, 3, 60), np.zeros(60)])
    disparities, ok = refine_disparities(left, right, left_points, right_points)
    for (lx, ly), (rx, _), d, found in zip(left_points, right_points, disparities, ok):
        x, y, cx = int(round(lx)), int(round(ly)), int(round(round(lx) - (lx - rx)))
        scores = cv2.matchTemplate(right[y - 5:y + 6, cx - 8:cx + 9], left[y - 5:y + 6, x - 5:x + 6],
                                   cv2.TM_CCOEFF_NORMED)[0]
        best = int(np.argmax(scores))
        assert found == (scores[best] >= 0.8 and 0 < best < 6)
        if found:
            below, peak, above = scores[best - 1:best + 2]
            expected = x - (cx - 3 + best + 0.5 * (below - above) / (below - 2 * peak + above))
            assert d == pytest.approx(expected, abs=1e-3)
    assert ok.mean() > 0.8 and np.abs(disparities[ok] - shift).max() < 0.3


@pytest.mark.parametrize('engine', ['torch', 'openvino'])
def test_a_pair_extracted_together_equals_each_image_alone(engine):
    """extract_frames (the detector batched where the engine takes a batch, one describe call) finds the same
    keypoints and descriptors as extract_frame on each image."""
    from rfnet_ros.engines.factory import installed
    from rfnet_ros.pipeline import FeaturePipeline

    if not installed(engine):
        pytest.skip(f'{engine} is not installed')
    pipeline = FeaturePipeline(load_config(LITE, ignore=NodeConfig.names(), top_k=128, engine=engine))
    pair = scene.render(*textures())
    together = pipeline.extract_frames([pair.left, pair.right], 'bgr', pipeline.new_timer())
    for image, (features, _) in zip((pair.left, pair.right), together):
        alone = pipeline.extract(image)
        np.testing.assert_allclose(features.keypoints, alone.keypoints, atol=1e-4)
        # The same patches; a bf16 descriptor (OpenVINO on CPUs with native bf16) rounds differently with the
        # batch size: measured smallest cosine 0.9922 (OpenVINO bf16), 1.00000 (torch).
        cosine = (features.descriptor_hypotheses * alone.descriptor_hypotheses).sum(axis=-1)
        print(f'{engine} {pipeline.precision}: smallest cosine {cosine.min():.5f}')
        assert cosine.min() > (0.9999 if pipeline.precision == 'fp32' else 0.98)


def test_each_camera_has_its_own_static_mask(tmp_path):
    """mask_image covers the left camera's images, right_mask_image the right's: no keypoint where either is 0."""
    pair = scene.render(*textures())
    height, width = pair.left.shape[:2]
    left_mask, right_mask = np.full((height, width), 255, np.uint8), np.full((height, width), 255, np.uint8)
    left_mask[:, :100] = 0
    right_mask[:, 220:] = 0
    cv2.imwrite(str(tmp_path / 'left.png'), left_mask)
    cv2.imwrite(str(tmp_path / 'right.png'), right_mask)
    plain = StereoFrontEnd(load_config(LITE, ignore=NodeConfig.names())).process(pair.left, pair.right, 'bgr', 1)
    config = load_config(LITE, ignore=NodeConfig.names(), mask_image=str(tmp_path / 'left.png'))
    masked = StereoFrontEnd(config, StereoConfig(right_mask_image=str(tmp_path / 'right.png'))).process(
        pair.left, pair.right, 'bgr', 1)
    assert (plain.left.features.keypoints[:, 0] < 99.5).sum() > 10 and (plain.right.keypoints[:, 0] >= 219.5).sum() > 10
    assert (masked.left.features.keypoints[:, 0] >= 99.5).all() and (masked.right.keypoints[:, 0] < 219.5).all()
    assert len(masked.stereo_matches) > 20
    with pytest.raises(ValueError, match='mask_image'):
        StereoFrontEnd(config, StereoConfig(right_mask_image=str(tmp_path / 'missing.png')))
