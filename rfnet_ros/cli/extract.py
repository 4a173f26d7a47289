"""rfnet-extract: keypoints and descriptors of image files, one .npz per image.

Each OUT/<stem>.npz holds ``keypoints`` (N, 2) float32 (x, y) in the input image's pixels, ``scores`` (N,),
``scales`` (N,), ``orientations`` (N,) radians and ``descriptors`` (N, 128) float32; with ``second_peak_ratio``
below 1 also ``descriptor_hypotheses`` (N, 3, 128) (``FrameFeatures``). An unreadable or empty
image is reported and skipped; the others are still processed and the exit status is 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.pipeline import FeaturePipeline


def read_image(path: Path) -> np.ndarray:
    """Image file as stored (8 or 16 bit, gray or BGR); raises ValueError when it cannot be used."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.size == 0:
        raise ValueError(f"{path}: image is empty")
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfnet-extract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path, help="image files")
    parser.add_argument("--config", type=Path, help="YAML config (config/lite.yaml format)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        pipeline = FeaturePipeline(load_config(args.config, ignore=NodeConfig.names()))
    except (ValueError, WeightsError) as exc:
        print(f"rfnet-extract: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in args.images:
        try:
            image = read_image(path)
            features = pipeline.extract(image)
        except ValueError as exc:
            print(f"rfnet-extract: skipped {exc}", file=sys.stderr)
            failures += 1
            continue
        target = args.out / f"{path.stem}.npz"
        arrays = dict(keypoints=features.keypoints, scores=features.scores, scales=features.scales,
                      orientations=features.orientations, descriptors=features.descriptors)
        if features.descriptor_hypotheses is not None:
            arrays["descriptor_hypotheses"] = features.descriptor_hypotheses
        np.savez(target, **arrays)
        print(f"{path}: {len(features)} keypoints -> {target}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
