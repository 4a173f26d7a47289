"""Evaluation pairs with known homographies: HPatches-style synthetic pairs and the Oxford graf pair.

Synthetic pairs are made from the photographs of one split (``data/images/<split>/*.png``: ``validation``
to choose settings, ``heldout`` to report), which training never reads. Each photo is resized to cover ``size``
(INTER_AREA) and centre-cropped: that crop is the
reference image0, shared by all pairs of the photo (as an HPatches sequence shares its first image). Per photo
and kind, ``pairs_per_image`` homographies are drawn:

- ``viewpoint``: rotation up to +-30 deg, zoom 0.75-1.25, a perspective tilt and a shift up to 0.05 of the
  image size, drawn by the evaluation's own sampler (``rfnet_ros.evaluation.warps``, independent of
  training's); mild photometric noise. image1 is rendered from the resized photo, not the
  crop, so it shows real content beyond image0's borders (black only where the photo ends).
- ``illumination``: identity homography (as in HPatches) and a strong photometric change: gain, offset,
  contrast, gamma, a smooth lighting gradient, blur and noise.

Sweep pairs (``sweep_pairs``) replace the random viewpoint by one exact rotation (0-180 deg, random sign)
or zoom (0.5-2x) about the centre per bin, with the same mild photometric noise.

Everything is drawn from ``numpy.random.default_rng((seed, crc32(photo name), kind))``, so a pair depends
only on the seed, the photo and its index, never on which other photos are present.

The Oxford pair graf1 -> graf3 (native 640x800 px, h x w) is resized to ``size`` with separate x and y
ratios, and its ground-truth H1to3p is conjugated with the same pixel-centre scaling: H' = S H S^-1.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.evaluation.warps import ROTATION_BINS, SCALE_BINS, rotation_warp, scale_warp, viewpoint_warp

SIZE = (480, 640)
KINDS = ("viewpoint", "illumination")
OXFORD_FILES = ("graf1.png", "graf3.png", "H1to3p.xml")
SWEEPS = {"rotation": ROTATION_BINS, "scale": SCALE_BINS}


@dataclass
class Pair:
    """Two grayscale uint8 images (H, W) and the (3, 3) homography mapping image0 px (x, y) to image1 px.

    ``reference`` names image0 (pairs with the same reference share image0, so its features can be reused).
    """

    name: str
    kind: str
    reference: str
    image0: np.ndarray
    image1: np.ndarray
    homography: np.ndarray
    bin: float | None = None


def read_gray(path: Path) -> np.ndarray:
    """A grayscale uint8 image; raises FileNotFoundError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return image


def read_homography(path: Path) -> np.ndarray:
    """A 3x3 homography from an OpenCV FileStorage file (XML/YAML, first matrix) or a plain 3x3 text file."""
    path = Path(path)
    text = path.read_text()
    if "<opencv_storage>" in text or text.lstrip().startswith("%YAML"):
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        try:
            matrix = storage.getFirstTopLevelNode().mat()
        finally:
            storage.release()
    else:
        matrix = np.loadtxt(path)
    if matrix is None or np.shape(matrix) != (3, 3):
        raise ValueError(f"{path} does not hold a 3x3 matrix")
    return np.asarray(matrix, dtype=np.float64)


def resize_homography(homography: np.ndarray, size_from0: tuple[int, int], size_to0: tuple[int, int],
                      size_from1: tuple[int, int], size_to1: tuple[int, int]) -> np.ndarray:
    """H between two images, re-expressed after resizing each image (pixel centres, separate x/y ratios)."""

    def scaling(size_from: tuple[int, int], size_to: tuple[int, int]) -> np.ndarray:
        sy, sx = size_to[0] / size_from[0], size_to[1] / size_from[1]
        return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], dtype=np.float64)

    h = scaling(size_from1, size_to1) @ homography @ np.linalg.inv(scaling(size_from0, size_to0))
    return h / h[2, 2]


def cover_crop(photo: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The photo resized to cover ``size`` (h, w), and the translation (3, 3) from it to the centred crop."""
    h, w = size
    scale = max(h / photo.shape[0], w / photo.shape[1])
    new_w, new_h = max(w, round(photo.shape[1] * scale)), max(h, round(photo.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(photo, (new_w, new_h), interpolation=interpolation)
    x0, y0 = (new_w - w) // 2, (new_h - h) // 2
    return resized, np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)


def mild_photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Small gain/offset change and sensor noise on a float image in [0, 1]."""
    out = image * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.01), size=out.shape)
    return np.clip(out, 0.0, 1.0)


def strong_photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Strong lighting change on a float image in [0, 1]: gain, offset, contrast, gamma, a lighting
    gradient, blur and noise."""
    h, w = image.shape
    out = image * np.exp(rng.uniform(np.log(0.45), np.log(1.6))) + rng.uniform(-0.15, 0.15)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.5, 1.5) + mean
    out = np.clip(out, 0.0, 1.0) ** np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    ramp = ((xs - w / 2) * np.cos(angle) + (ys - h / 2) * np.sin(angle)) / max(h, w)
    out = out * (1.0 + rng.uniform(0.2, 0.7) * ramp)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    out = out + rng.normal(0.0, rng.uniform(0.01, 0.04), size=out.shape)
    return np.clip(out, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def photo_pairs(name: str, photo: np.ndarray, pairs_per_image: int, seed: int,
                size: tuple[int, int] = SIZE) -> list[Pair]:
    """The viewpoint and illumination pairs of one photo (``pairs_per_image`` of each kind)."""
    h, w = size
    resized, to_crop = cover_crop(photo, size)
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    reference = np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])
    source = resized.astype(np.float32) / 255.0
    pairs = []
    for kind_index, kind in enumerate(KINDS):
        rng = np.random.default_rng((seed, zlib.crc32(name.encode()), kind_index))
        for index in range(pairs_per_image):
            if kind == "viewpoint":
                homography = viewpoint_warp(rng, h, w).homography(h, w)
                view = cv2.warpPerspective(source, homography @ to_crop, (w, h), flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_CONSTANT)
                image1 = to_uint8(mild_photometric(rng, view))
            else:
                homography = np.eye(3)
                image1 = to_uint8(strong_photometric(rng, reference.astype(np.float32) / 255.0))
            pairs.append(Pair(f"{name}/{kind[0]}{index}", kind, name, reference, image1, homography))
    return pairs


def reference_and_source(photo: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centred crop (image0), the resized photo as float in [0, 1] and the map from it to the crop."""
    h, w = size
    resized, to_crop = cover_crop(photo, size)
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    reference = np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])
    return reference, resized.astype(np.float32) / 255.0, to_crop


def photo_sweep_pairs(name: str, photo: np.ndarray, sweep: str, seed: int, size: tuple[int, int] = SIZE,
                      bins: tuple[float, ...] | None = None) -> list[Pair]:
    """One pair per bin of ``sweep`` (rotation: degrees, sign drawn at random; scale: zoom factor)."""
    h, w = size
    reference, source, to_crop = reference_and_source(photo, size)
    rng = np.random.default_rng((seed, zlib.crc32(name.encode()), 10 + list(SWEEPS).index(sweep)))
    pairs = []
    for value in bins or SWEEPS[sweep]:
        warp = rotation_warp(value, rng) if sweep == "rotation" else scale_warp(value)
        homography = warp.homography(h, w)
        view = cv2.warpPerspective(source, homography @ to_crop, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
        image1 = to_uint8(mild_photometric(rng, view))
        pairs.append(Pair(f"{name}/{sweep}{value:g}", sweep, name, reference, image1, homography, value))
    return pairs


def photo_paths(folder: Path, max_photos: int | None = None) -> list[Path]:
    """The split's photos, sorted by name (the first ``max_photos`` if given)."""
    paths = sorted(Path(folder).glob("*.png"))
    if not paths:
        raise FileNotFoundError(f"no photos in {folder}: run scripts/fetch_data.sh")
    return paths[:max_photos]


def sweep_pairs(folder: Path, sweep: str, seed: int, size: tuple[int, int] = SIZE,
                max_photos: int | None = None) -> list[Pair]:
    """The sweep pairs of every photo in ``folder``."""
    return [p for path in photo_paths(folder, max_photos)
            for p in photo_sweep_pairs(path.stem, read_gray(path), sweep, seed, size)]


def synthetic_pairs(folder: Path, pairs_per_image: int, seed: int, size: tuple[int, int] = SIZE,
                    max_photos: int | None = None) -> list[Pair]:
    """Pairs of every photo in ``folder`` (sorted by name, the first ``max_photos`` if given)."""
    pairs = []
    for path in photo_paths(folder, max_photos):
        pairs.extend(photo_pairs(path.stem, read_gray(path), pairs_per_image, seed, size))
    return pairs


def oxford_pair(folder: Path, size: tuple[int, int] | None = SIZE) -> Pair:
    """graf1 -> graf3 with H1to3p, resized to ``size`` (h, w) with H adjusted; ``size=None`` keeps native."""
    folder = Path(folder)
    names = [folder / f for f in OXFORD_FILES]
    missing = [str(p) for p in names if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing Oxford files {', '.join(missing)}: run scripts/fetch_data.sh")
    image0, image1 = read_gray(names[0]), read_gray(names[1])
    homography = read_homography(names[2])
    if size is not None:
        homography = resize_homography(homography, image0.shape, size, image1.shape, size)
        image0, image1 = (cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_AREA) for im in (image0, image1))
    return Pair("graf1->graf3", "oxford", "graf1", image0, image1, homography)
