"""The ROS-free pipeline with the shipped lite weights on real photographs."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from photos import gray_photo

from rfnet_ros.config import FeatureConfig
from rfnet_ros.pipeline import STAGES, FeaturePipeline, to_gray


@pytest.fixture(scope="module")
def photo():
    image = gray_photo("images/heldout/building.png")
    h, w = image.shape
    y0, x0 = (h - 480) // 2, (w - 640) // 2
    return image[y0:y0 + 480, x0:x0 + 640]


@pytest.fixture(scope="module")
def pipeline():
    return FeaturePipeline(FeatureConfig(device="cpu", top_k=512))


def test_synthetic_homography_pair_is_matched(pipeline, photo):
    # A held-out photo against a view rotated by 10 degrees, zoomed by 1.15 and shifted. The bars sit well
    # above what untrained weights reach on this pair (33 correct matches, MMA@3 0.23).
    h, w = photo.shape
    homography = cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.15)
    homography = np.vstack([homography, [0, 0, 1]])
    homography[:2, 2] += (12, -8)
    warped = cv2.warpPerspective(photo, homography, (w, h))
    f0, f1 = pipeline.extract(photo), pipeline.extract(warped)
    matches, _ = pipeline.match(f0.descriptors, f1.descriptors)
    assert len(f0) > 200 and len(f1) > 200
    projected = cv2.perspectiveTransform(f0.keypoints[matches[:, 0]][None].astype(np.float64), homography)[0]
    error = np.linalg.norm(projected - f1.keypoints[matches[:, 1]], axis=1)
    correct = int((error <= 3).sum())
    assert correct >= 90, f"only {correct} correct matches"
    assert correct / len(matches) >= 0.4, f"MMA@3 {correct / len(matches):.2f}"


def test_keypoints_are_in_input_pixels_for_non_4_3_frames(pipeline, photo):
    # The same content as a 480x640 and as a 480x1280 (8:3) frame: the detector sees the same 240x320
    # image, so keypoints must agree after scaling x by 2 and leaving y alone.
    wide = cv2.resize(photo, (1280, 480), interpolation=cv2.INTER_LINEAR)
    f_normal, f_wide = pipeline.extract(photo), pipeline.extract(wide)
    assert f_wide.image_size == (480, 1280)
    assert f_wide.keypoints[:, 0].max() > 700, "x spans the whole wide frame"
    mapped = f_wide.keypoints * np.float32([0.5, 1.0]) + np.float32([-0.25, 0.0])
    distance = np.linalg.norm(mapped[:, None] - f_normal.keypoints[None], axis=2).min(axis=1)
    assert np.mean(distance < 1.5) > 0.8


def test_process_matches_to_the_previous_frame_with_stage_timings(pipeline, photo):
    pipeline.reset()
    first = pipeline.process(photo)
    assert not first.has_previous and len(first.matches) == 0
    shifted = np.roll(photo, (6, -9), axis=(0, 1))
    second = pipeline.process(shifted)
    assert second.has_previous and len(second.matches) > 100
    flow = second.features.keypoints[second.matches[:, 1]] - first.features.keypoints[second.matches[:, 0]]
    assert np.allclose(np.median(flow, axis=0), [-9, 6], atol=1.0)
    assert set(second.timings) == set(STAGES)
    assert all(v >= 0 for v in second.timings.values())
    features = second.features
    n = len(features)
    assert features.keypoints.shape == (n, 2) and features.descriptors.shape == (n, 128)
    assert features.keypoints.dtype == np.float32
    assert np.allclose(np.linalg.norm(features.descriptors, axis=1), 1, atol=1e-4)
    assert features.scores.shape == features.scales.shape == features.orientations.shape == (n,)
    assert (np.abs(features.orientations) <= np.pi + 1e-6).all()


@pytest.mark.parametrize("shape,dtype", [((48, 64), np.uint8), ((48, 64), np.uint16), ((48, 64, 3), np.uint8),
                                         ((48, 64, 4), np.uint8), ((48, 64, 1), np.uint16)])
def test_frame_layouts_are_accepted(shape, dtype):
    gray = to_gray(np.zeros(shape, dtype))
    assert gray.shape == (48, 64) and gray.dtype == dtype


def test_colour_order_is_respected():
    pixel = np.zeros((1, 1, 3), np.uint8)
    pixel[..., 0] = 255  # blue in BGR, red in RGB
    assert to_gray(pixel, "bgr")[0, 0] == 29 and to_gray(pixel, "rgb")[0, 0] == 76


@pytest.mark.parametrize("image", [np.zeros((0, 10), np.uint8), np.zeros((5, 5, 2), np.uint8),
                                   np.zeros((4, 4), np.int32)])
def test_bad_frames_are_rejected(pipeline, image):
    with pytest.raises(ValueError):
        pipeline.extract(image)


def test_min_strength_drops_keypoints_of_flat_frames_but_not_of_textured_ones(photo):
    # A flat grey frame with sensor-like noise: the detector's instance normalisation makes the noise look
    # like structure, so without min_strength all top-k slots fill; with it few keypoints survive. The
    # textured photo keeps most of its keypoints.
    noise = np.clip(128 + np.random.default_rng(0).normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
    settings = dict(device="cpu", top_k=512, keypoint_frames="image", model_height=480, model_width=640,
                    second_peak_ratio=1.0)
    every = FeaturePipeline(FeatureConfig(**settings, min_strength=0.0))
    strong = FeaturePipeline(FeatureConfig(**settings, min_strength=1e-4))
    assert len(every.extract(noise)) == 512
    assert len(strong.extract(noise)) < 50
    assert len(strong.extract(photo)) > 300


def test_second_peak_frames_give_descriptor_hypotheses_and_better_matches(photo):
    # Some keypoints get a second scale or orientation; their extra descriptions are used in matching only
    # where they are closer, so a rotated and zoomed view gets at least as many correct matches.
    h, w = photo.shape
    homography = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.2), [0, 0, 1]])
    warped = cv2.warpPerspective(photo, homography, (w, h))
    settings = dict(device="cpu", top_k=512, keypoint_frames="image", model_height=480, model_width=640,
                    min_strength=0.0)
    correct = {}
    for ratio in (1.0, 0.7):
        pipeline = FeaturePipeline(FeatureConfig(**settings, second_peak_ratio=ratio))
        f0, f1 = pipeline.extract(photo), pipeline.extract(warped)
        if ratio == 1.0:
            assert f0.descriptor_hypotheses is None
        else:
            n = len(f0)
            assert f0.descriptor_hypotheses.shape == (n, 3, 128)
            assert np.array_equal(f0.descriptor_hypotheses[:, 0], f0.descriptors)
            described_again = (f0.descriptor_hypotheses[:, 1:] != f0.descriptors[:, None]).any(axis=2)
            assert 0.05 * n < described_again.any(axis=1).sum() < 0.9 * n
        matches, _ = pipeline.match(f0.matchable, f1.matchable)
        projected = cv2.perspectiveTransform(f0.keypoints[matches[:, 0]][None].astype(np.float64), homography)[0]
        correct[ratio] = int((np.linalg.norm(projected - f1.keypoints[matches[:, 1]], axis=1) <= 3).sum())
    assert correct[0.7] >= correct[1.0] > 100, correct


def test_process_matches_descriptor_hypotheses_to_the_previous_frame(photo):
    # config/lite_native.yaml's pipeline keeps each frame's (N, 3, 128) hypotheses to match the next frame.
    from rfnet_ros.config import NodeConfig, load_config

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "lite_native.yaml",
                         ignore=NodeConfig.names(), device="cpu")
    pipeline = FeaturePipeline(config)
    first = pipeline.process(photo)
    second = pipeline.process(np.roll(photo, (6, -9), axis=(0, 1)))
    assert first.features.descriptor_hypotheses.shape == (len(first.features), 3, 128)
    assert second.has_previous and len(second.matches) > 100
    flow = second.features.keypoints[second.matches[:, 1]] - first.features.keypoints[second.matches[:, 0]]
    assert np.allclose(np.median(flow, axis=0), [-9, 6], atol=1.0)


def correct_matches(pipeline, image0, image1, homography):
    """(correct matches within 3 px, matches) of image0 -> image1 under the true homography."""
    f0, f1 = pipeline.extract(image0), pipeline.extract(image1)
    matches, _ = pipeline.match(f0.matchable, f1.matchable)
    projected = cv2.perspectiveTransform(f0.keypoints[matches[:, 0]][None].astype(np.float64), homography)[0]
    return int((np.linalg.norm(projected - f1.keypoints[matches[:, 1]], axis=1) <= 3).sum()), len(matches)


@pytest.mark.parametrize("degrees,zoom", [(90, 1.0), (180, 1.0), (-135, 1.25), (60, 0.8)])
def test_default_pipeline_matches_views_turned_by_any_angle(photo, degrees, zoom):
    # config/lite.yaml's keypoint frames turn and grow with the view. Flipping the orientation's sign,
    # ignoring it, or giving every keypoint the same radius breaks these pairs (MMA@3 falls below 0.2).
    h, w = photo.shape
    homography = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), degrees, zoom), [0, 0, 1]])
    warped = cv2.warpPerspective(photo, homography, (w, h))
    correct, matches = correct_matches(FeaturePipeline(FeatureConfig(device="cpu")), photo, warped, homography)
    assert correct >= 100 and correct / matches >= 0.6, (correct, matches)


@pytest.mark.parametrize("std", [3.0, 6.0, 10.0])
def test_keypoint_radius_is_the_blob_scale_in_input_pixels(std):
    # Gaussian blobs of a known std on a 480x640 frame: the default pipeline finds each blob's centre and
    # gives it the half-width SIGMAS_PER_RADIUS * std in input px (the characteristic scale of a blob is
    # its std), whatever the detector's model size.
    from rfnet_ros.model.frames import SIGMAS_PER_RADIUS

    ys, xs = np.mgrid[0:480, 0:640]
    centres = np.float32([(x, y) for y in range(80, 420, 110) for x in range(80, 600, 110)])
    image = np.full((480, 640), 0.3)
    for x, y in centres:
        image += 0.5 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * std**2))
    features = FeaturePipeline(FeatureConfig(device="cpu")).extract((image * 255).astype(np.uint8), "mono")
    distance = np.linalg.norm(features.keypoints[:, None] - centres[None], axis=2)
    at_blob = distance.min(axis=1) < 2
    assert len(np.unique(distance.argmin(axis=1)[at_blob])) == len(centres), "every blob is found"
    ratio = np.median(features.scales[at_blob]) / (SIGMAS_PER_RADIUS * std)
    assert 0.85 < ratio < 1.15, ratio
