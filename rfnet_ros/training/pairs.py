"""Training pairs: a crop of a photograph and a homography-warped, photometrically changed view of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.training.homography import random_homography


@dataclass
class PairBatch:
    """image0, image1: (B, 1, H, W) float32 in [0, 1]; homography: (B, 3, 3) float32 mapping image0 px to image1 px."""

    image0: np.ndarray
    image1: np.ndarray
    homography: np.ndarray


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Random brightness, contrast, gamma, Gaussian blur and noise on a float image in [0, 1]."""
    out = image * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.6, 1.4) + mean
    out = np.clip(out, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.5))
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.04), size=out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class PairSampler:
    """Draws deterministic (seeded) batches of warped pairs from a folder of grayscale photographs."""

    def __init__(self, folder: Path, size: tuple[int, int], seed: int, max_angle_deg: float = 30.0,
                 scale_range: tuple[float, float] = (0.7, 1.4), perspective: float = 0.15):
        paths = sorted(Path(folder).glob("*.png"))
        if not paths:
            raise FileNotFoundError(f"no training images in {folder}: run scripts/fetch_data.sh")
        self.names = [p.stem for p in paths]
        self.images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0 for p in paths]
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.warp = dict(max_angle_deg=max_angle_deg, scale_range=scale_range, perspective=perspective)

    def _source_view(self) -> tuple[np.ndarray, np.ndarray]:
        """A random photo at a random zoom, and the affine map from it to the crop's pixels."""
        h, w = self.size
        image = self.images[self.rng.integers(len(self.images))]
        ih, iw = image.shape
        # Zoom out at most until the crop covers 1/1.6 of the photo's shorter extent; never zoom in, except
        # as far as a photo smaller than the crop needs to cover it.
        cover = max(h / ih, w / iw)
        if cover >= 1.0:
            zoom = cover
        else:
            smallest = min(cover * 1.6, 1.0)
            zoom = min(max(np.exp(self.rng.uniform(np.log(smallest), 0.0)), smallest), 1.0)
        vh, vw = ih * zoom, iw * zoom
        x0 = self.rng.uniform(0, max(vw - w, 0))
        y0 = self.rng.uniform(0, max(vh - h, 0))
        to_crop = np.array([[zoom, 0, -x0], [0, zoom, -y0], [0, 0, 1]], dtype=np.float64)
        return image, to_crop

    def sample(self, batch: int) -> PairBatch:
        h, w = self.size
        im0, im1, hs = [], [], []
        for _ in range(batch):
            image, to_crop = self._source_view()
            hom = random_homography(self.rng, h, w, **self.warp)
            flags = cv2.INTER_AREA if to_crop[0, 0] < 0.7 else cv2.INTER_LINEAR
            view0 = cv2.warpPerspective(image, to_crop, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
            # The second view is rendered from the photo itself, so it has content beyond the first crop.
            view1 = cv2.warpPerspective(image, hom @ to_crop, (w, h), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT)
            im0.append(photometric(self.rng, view0))
            im1.append(photometric(self.rng, view1))
            hs.append(hom)
        return PairBatch(np.stack(im0)[:, None], np.stack(im1)[:, None], np.stack(hs).astype(np.float32))
