"""Blank and featureless frames give no keypoints (FeatureConfig.min_contrast), whatever the weights score."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rfnet_ros.config import FeatureConfig
from rfnet_ros.model.texture import local_contrast, summed_tables
from rfnet_ros.pipeline import FeaturePipeline

PHOTO = Path(__file__).resolve().parents[1] / "data" / "images" / "heldout" / "building.png"
RNG = np.random.default_rng(4)
BLANK = {
    "black": np.zeros((240, 320, 3), np.uint8),
    "constant grey": np.full((240, 320), 128, np.uint8),
    "white 16-bit": np.full((240, 320), 65535, np.uint16),
    "1x1": np.zeros((1, 1), np.uint8),
    "covered lens (dark, noise of one grey level)": np.clip(RNG.normal(6, 1.0, (240, 320)), 0, 255).astype(np.uint8),
    "smooth ramp": np.tile(np.linspace(100, 104, 320).astype(np.uint8), (240, 1)),
}


@pytest.fixture(scope="module")
def pipeline():
    return FeaturePipeline(FeatureConfig(device="cpu"))


@pytest.mark.parametrize("name", BLANK)
def test_blank_frames_give_no_keypoints_and_no_matches(pipeline, name):
    for _ in range(2):  # the second frame is matched against the first
        result = pipeline.process(BLANK[name])
    assert len(result.features) == 0 and result.features.descriptors.shape == (0, 128)
    assert result.has_previous and len(result.matches) == 0


def test_photos_keep_their_keypoints(pipeline):
    photo = cv2.imread(str(PHOTO))
    assert photo is not None, f"{PHOTO} missing: run scripts/fetch_data.sh"
    photo = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    # min_strength (set by lite.yaml) would also drop them; min_contrast alone is under test here.
    without = FeaturePipeline(FeatureConfig(device="cpu", min_contrast=0.0, min_strength=0.0))
    assert len(pipeline.extract(photo)) >= 0.95 * len(without.extract(photo)) > 0
    assert len(without.extract(BLANK["black"])) > 0, "min_contrast 0 keeps the detector's keypoints"


def test_local_contrast_is_the_window_standard_deviation():
    image = RNG.random((40, 50)).astype(np.float32)
    xy = torch.tensor([[10.0, 12.0], [0.0, 0.0], [49.0, 39.0], [25.4, 20.6]])
    radius = torch.tensor([3.0, 2.0, 4.0, 0.2])
    got = local_contrast(torch.from_numpy(image)[None, None], xy, radius)
    expected = [image[9:16, 7:14].std(), image[0:3, 0:3].std(), image[35:40, 45:50].std(), image[20:23, 24:27].std()]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4)


def test_summed_tables_equal_opencvs_integral_images():
    # The GPU path builds local_contrast's integral images as cumulative sums where the image is; they must
    # equal OpenCV's (the CPU path) to float64 rounding.
    plane = torch.from_numpy(RNG.random((37, 53))) - 0.5
    sums, squares = summed_tables(plane)
    expected_sums, expected_squares = cv2.integral2(plane.numpy(), sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    np.testing.assert_allclose(sums.numpy(), expected_sums, atol=1e-9)
    np.testing.assert_allclose(squares.numpy(), expected_squares, atol=1e-9)
