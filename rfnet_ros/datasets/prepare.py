"""Turn the extracted Debian packages into the project's data folder, as the committed manifest says.

Writes ``OUT/images/{train,validation,heldout}/<name>.png`` (grayscale, long side at most ``--max-side`` px)
for every manifest row whose package is extracted under ``RAW/<package>/``, removes PNGs in those folders
that the manifest does not put there (an image can never linger in a split it left), and copies the Oxford
graf pair with its homography and the demo video. Prints the photo counts per package and split, and
which packages are missing. Idempotent: existing PNGs are kept.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2

from rfnet_ros.datasets.selection import MANIFEST, SPLITS, read_manifest
from rfnet_ros.datasets.sources import DEMO_VIDEO, OPENCV_DATA, OPENCV_DOC, OXFORD_PAIR, Candidate


def prepare(raw: Path, out: Path, max_side: int = 1600, manifest: Path = MANIFEST) -> dict[str, Counter]:
    """Build ``out/images/<split>``, ``out/oxford`` and ``out/video``.

    Returns ``{"written": Counter((package, split)), "missing": Counter((package, split)), "removed": ...}``.
    """
    rows = read_manifest(manifest)
    written: Counter = Counter()
    missing: Counter = Counter()
    wanted: dict[str, set[str]] = {split: set() for split in SPLITS}
    for row in rows:
        split, package = row["split"], row["package"]
        if not (raw / package).is_dir():
            missing[(package, split)] += 1
            continue
        wanted[split].add(f"{row['name']}.png")
        dst = out / "images" / split / f"{row['name']}.png"
        written[(package, split)] += 1
        if dst.exists():
            continue
        candidate = Candidate(row["name"], package, row["member"], int(row["frame"]) if row["frame"] else None)
        image = candidate.read(raw)
        scale = max_side / max(image.shape)
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(dst), image):
            raise OSError(f"cannot write {dst}")
    removed: Counter = Counter()
    for split in SPLITS:
        for path in sorted((out / "images" / split).glob("*.png")):
            if path.name not in wanted[split]:
                path.unlink()
                removed[split] += 1
    opencv_data = raw / OPENCV_DOC / OPENCV_DATA
    if not opencv_data.is_dir():
        raise FileNotFoundError(f"{opencv_data} not found: run scripts/fetch_data.sh")
    for fname, sub in [(f, "oxford") for f in OXFORD_PAIR] + [(DEMO_VIDEO, "video")]:
        dst = out / sub / fname
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(opencv_data / fname, dst)
    return {"written": written, "missing": missing, "removed": removed}


def count_table(written: Counter, missing: Counter) -> str:
    """Photos per package (rows) and split (columns); missing packages' rows are marked."""
    packages = sorted({p for p, _ in written} | {p for p, _ in missing})
    header = ["package", *SPLITS, "total"]
    body = []
    for package in packages:
        counts = [written[(package, s)] + missing[(package, s)] for s in SPLITS]
        label = package if not any(missing[(package, s)] for s in SPLITS) else f"{package} (not fetched)"
        body.append([label, *map(str, counts), str(sum(counts))])
    totals = [sum(written[(p, s)] for p in packages) for s in SPLITS]
    body.append(["prepared", *map(str, totals), str(sum(totals))])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in [header, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, required=True, help="folder with one extracted folder per package")
    parser.add_argument("--out", type=Path, required=True, help="data folder to write")
    parser.add_argument("--max-side", type=int, default=1600, help="longest side of stored photos (px)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="photo manifest (name, split, source)")
    args = parser.parse_args(argv)
    result = prepare(args.raw, args.out, args.max_side, args.manifest)
    print(count_table(result["written"], result["missing"]))
    if result["removed"]:
        print(f"[prepare] removed PNGs the manifest no longer puts there: {dict(result['removed'])}")
    if result["missing"]:
        print("[prepare] training packages not fetched: run scripts/fetch_training_data.sh for the whole "
              "training split")
    print(f"[prepare] photos in {args.out / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
