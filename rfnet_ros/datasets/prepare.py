"""Turn the extracted Debian packages into the project's data folder.

Writes ``train/`` and ``heldout/`` grayscale PNGs (long side at most ``--max-side`` px), and copies
the Oxford graf pair with its homography and the demo video. Idempotent.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

from rfnet_ros.datasets.sources import DEMO_VIDEO, HELDOUT, OPENCV_DATA, OXFORD_PAIR, photo_sources


def prepare(raw: Path, out: Path, max_side: int = 1600) -> dict[str, int]:
    """Build ``out/images/{train,heldout}``, ``out/oxford`` and ``out/video``; return counts."""
    counts = {"train": 0, "heldout": 0}
    sources = photo_sources(raw)
    if not sources:
        raise FileNotFoundError(f"no source photographs under {raw}: run scripts/fetch_data.sh")
    for name, src in sorted(sources.items()):
        split = "heldout" if name in HELDOUT else "train"
        dst = out / "images" / split / f"{name}.png"
        counts[split] += 1
        if dst.exists():
            continue
        image = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise OSError(f"cannot read {src}")
        scale = max_side / max(image.shape)
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        dst.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dst), image)
    for fname, sub in [(f, "oxford") for f in OXFORD_PAIR] + [(DEMO_VIDEO, "video")]:
        dst = out / sub / fname
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(raw / OPENCV_DATA / fname, dst)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, required=True, help="folder the .deb files were extracted to")
    parser.add_argument("--out", type=Path, required=True, help="data folder to write")
    parser.add_argument("--max-side", type=int, default=1600, help="longest side of stored photos (px)")
    args = parser.parse_args(argv)
    counts = prepare(args.raw, args.out, args.max_side)
    print(f"[prepare] {counts['train']} training and {counts['heldout']} held-out photos in {args.out / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
