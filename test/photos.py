"""Photographs of data/ (bash scripts/fetch_data.sh) as the tests read them."""
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


def gray_photo(relative: str) -> np.ndarray:
    """data/<relative> as a grayscale uint8 (H, W) image; the test fails, naming the fetch script, without it."""
    path = DATA / relative
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, f"{path} missing: run scripts/fetch_data.sh"
    return image
