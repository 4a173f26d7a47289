"""rfnet-eval: MMA, matching score, repeatability and homography accuracy of feature methods on image pairs.

Pairs (all 480x640 px): HPatches-style viewpoint and illumination pairs made from the held-out photos, and
the Oxford graf1 -> graf3 pair (see rfnet_ros.evaluation.pairs). Methods: our RF-Net variants (weights files)
and OpenCV ORB and SIFT, all with at most --max-keypoints keypoints and mutual nearest-neighbour matching.
Metrics follow rfnet_ros.evaluation.metrics; ratios are averaged over the pairs of a set, counts are means per
pair. ms/image is the median wall-clock extraction time over all images a method processed.

Writes OUT/results.json (settings, every pair's metrics, the summary) and OUT/results.md (the table).
`rfnet-eval --sweep ...` runs rfnet_ros.evaluation.sweep instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.evaluation.extractors import Extractor, Features, make_extractors
from rfnet_ros.evaluation.metrics import HA_THRESHOLDS, MMA_THRESHOLDS, evaluate_pair, frame_errors
from rfnet_ros.evaluation.pairs import SIZE, Pair, oxford_pair, synthetic_pairs
from rfnet_ros.model.weights import WeightsError

DEFAULT_METHODS = ("rfnet_full", "rfnet_lite", "rfnet_full_img480", "rfnet_lite_img480", "rfnet_full_native",
                   "rfnet_lite_native", "orb", "sift")
# Pair set -> the pair kinds it holds.
SETS = {"viewpoint": ("viewpoint",), "illumination": ("illumination",),
        "synthetic": ("viewpoint", "illumination"), "graf1->graf3": ("oxford",)}
# Table columns: header -> (summary key, format).
COLUMNS = {
    "MMA@1": ("mma@1", "{:.3f}"), "MMA@3": ("mma@3", "{:.3f}"), "MMA@5": ("mma@5", "{:.3f}"),
    "HA@3": ("ha@3", "{:.3f}"), "HA@5": ("ha@5", "{:.3f}"), "MS": ("matching_score", "{:.3f}"),
    "Rep@3": ("repeatability", "{:.3f}"), "ori°": ("orientation_error", "{:.1f}"),
    "scale oct": ("scale_error", "{:.2f}"), "kpts": ("keypoints", "{:.0f}"), "matches": ("matches", "{:.0f}"),
    "ms/img": ("ms_per_image", "{:.1f}"),
}


def load_pairs(data: Path, pairs_per_image: int, seed: int, max_photos: int | None = None,
               oxford: bool = True) -> list[Pair]:
    """The synthetic pairs of ``data/images/heldout`` and, if asked, the Oxford pair from ``data/oxford``."""
    pairs = synthetic_pairs(data / "images" / "heldout", pairs_per_image, seed, SIZE, max_photos)
    if oxford:
        pairs.append(oxford_pair(data / "oxford", SIZE))
    return pairs


def evaluate_method(extractor: Extractor, pairs: list[Pair],
                    progress: bool = True) -> tuple[list[dict[str, Any]], list[float]]:
    """Every pair's metrics for one method, and the ms of each extraction.

    image0 is extracted once per reference and reused by all pairs that share it.
    """
    cache: dict[str, Features] = {}
    times: list[float] = []
    records = []
    for pair in tqdm(pairs, desc=extractor.name, disable=not progress, file=sys.stderr, leave=False):
        if pair.reference not in cache:
            cache[pair.reference], ms = extractor.timed_extract(pair.image0)
            times.append(ms)
        features0 = cache[pair.reference]
        features1, ms = extractor.timed_extract(pair.image1)
        times.append(ms)
        matches = extractor.match(features0.descriptors, features1.descriptors)
        metrics = evaluate_pair(features0.keypoints, features1.keypoints, matches, pair.homography,
                                pair.image0.shape, pair.image1.shape)
        record = {"method": extractor.name, "pair": pair.name, "kind": pair.kind, **metrics.to_dict()}
        if features0.orientations is not None and features1.orientations is not None:
            angle, scale = frame_errors(features0.keypoints, features1.keypoints, features0.orientations,
                                        features1.orientations, features0.scales, features1.scales,
                                        pair.homography, pair.image1.shape)
            record["orientation_error"] = float(np.median(angle)) if len(angle) else float("nan")
            record["scale_error"] = float(np.median(scale)) if len(scale) else float("nan")
        records.append(record)
    return records, times


def summarise(records: list[dict[str, Any]]) -> dict[str, float]:
    """Means over pairs: MMA@t, HA@e, matching score, repeatability and per-pair counts."""
    if not records:
        return {"pairs": 0}
    out: dict[str, float] = {"pairs": len(records)}
    for t in MMA_THRESHOLDS:
        out[f"mma@{t}"] = float(np.mean([r["mma"][t] for r in records]))
    for e in HA_THRESHOLDS:
        out[f"ha@{e}"] = float(np.mean([r["ha"][e] for r in records]))
    for key in ("matching_score", "repeatability", "matches", "correct_shared", "inliers"):
        out[key] = float(np.mean([r[key] for r in records]))
    out["correct@3"] = float(np.mean([r["correct"][3] for r in records]))
    # Frame errors: each pair's median over its repeated keypoints, averaged over the pairs that have one.
    for key in ("orientation_error", "scale_error"):
        values = [r[key] for r in records if np.isfinite(r.get(key, float("nan")))]
        out[key] = float(np.mean(values)) if values else float("nan")
    out["keypoints"] = float(np.mean([(r["keypoints0"] + r["keypoints1"]) / 2 for r in records]))
    out["shared"] = float(np.mean([(r["shared0"] + r["shared1"]) / 2 for r in records]))
    return out


def summary_rows(records: list[dict[str, Any]], times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """One row per method and pair set (sets without pairs are left out)."""
    rows = []
    for method, method_times in times.items():
        for set_name, kinds in SETS.items():
            chosen = [r for r in records if r["method"] == method and r["kind"] in kinds]
            if chosen:
                rows.append({"method": method, "set": set_name, **summarise(chosen),
                             "ms_per_image": float(np.median(method_times)) if method_times else float("nan")})
    return rows


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The summary rows as an aligned text table, or a Markdown table."""
    header = ["method", "set", "pairs", *COLUMNS]
    body = [[row["method"], row["set"], str(row["pairs"]),
             *(fmt.format(row[key]) for key, fmt in COLUMNS.values())] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
    lines = []
    for i, cells in enumerate([header, *body]):
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import cv2

    return {"python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__,
            "torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "processor": platform.processor()}


def write_markdown(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                   methods: list[dict[str, Any]]) -> None:
    lines = ["# Feature matching evaluation", "",
             f"Pairs at {SIZE[0]}x{SIZE[1]} px, at most {settings['max_keypoints']} keypoints, mutual "
             f"nearest-neighbour matching; {settings['pairs_per_image']} viewpoint and "
             f"{settings['pairs_per_image']} illumination pairs per held-out photo, seed {settings['seed']}.", "",
             format_table(rows, markdown=True), "",
             "MMA@t: correct (within t px under the true H) / matches. HA@e: RANSAC homography (3 px) with mean "
             "corner error <= e px. MS (matching score): correct@3 matches in the shared region / mean of both "
             "images' shared keypoints. Rep@3: shared keypoints with a detection within 3 px in the other image / "
             "shared keypoints (both images pooled). ori°, scale oct: orientation error (degrees) and scale "
             "error (|log2|, octaves) of image0's repeated keypoints against the true homography's local "
             "rotation and scale (metrics.frame_errors), the median of each pair averaged over pairs. kpts, "
             "matches: means per pair (kpts: mean of both images). ms/img: median wall-clock extraction time.",
             "",
             "graf1->graf3: the Oxford pair resized from 640x800 to 480x640 (separate x and y ratios) with its "
             "ground-truth homography H1to3p adjusted to match; it is a single pair, so its HA values are 0 or 1.",
             "", "## Methods", ""]
    lines += [f"- {m['name']}: " + ", ".join(f"{k}={v}" for k, v in m.items() if k != "name") for m in methods]
    path.write_text("\n".join(lines) + "\n")


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` -> (height, width)."""
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit()):
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 480x640, got {text!r}")
    return int(height), int(width)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (scripts/fetch_data.sh)")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="rfnet_full, rfnet_lite, rfnet_full_img480, rfnet_lite_img480 (detector at 480x640, "
                             "frames measured on the image), rfnet_full_native, rfnet_lite_native (img480 plus "
                             "min_strength and second-peak frames: config/lite_native.yaml), orb, sift, or names "
                             "given with --weights")
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=PATH:N",
                        help="evaluate weights file PATH (replaced_layers N) as method NAME; repeatable; "
                             "NAME rfnet_full/rfnet_lite replaces that variant's file")
    parser.add_argument("--pairs-per-image", type=int, default=5,
                        help="viewpoint pairs and illumination pairs per held-out photo")
    parser.add_argument("--max-photos", type=int, default=None, help="use only the first N held-out photos")
    parser.add_argument("--no-oxford", action="store_true", help="leave out the graf1 -> graf3 pair")
    parser.add_argument("--max-keypoints", type=int, default=1024, help="keypoints per image, every method")
    parser.add_argument("--config", type=Path, help="YAML config (config/lite.yaml format) with the RF-Net "
                        "settings other than weights, variant, top-k, device and precision")
    parser.add_argument("--model-size", type=parse_size, metavar="HxW",
                        help="detector input size, e.g. 480x640 (default: the config's, 240x320)")
    parser.add_argument("--device", default="auto", help="torch device of the RF-Net methods")
    parser.add_argument("--precision", default="auto", help="RF-Net descriptor precision: auto (as the configs), "
                        "fp32, fp16, bf16")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="folder for results.json/.md")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--sweep" in argv:
        from rfnet_ros.evaluation import sweep

        return sweep.main([a for a in argv if a != "--sweep"])
    args = build_parser().parse_args(argv)
    if args.pairs_per_image < 1 or args.max_keypoints < 1:
        print("rfnet-eval: error: --pairs-per-image and --max-keypoints must be positive", file=sys.stderr)
        return 2
    try:
        base = load_config(args.config, ignore=NodeConfig.names())
        if args.model_size:
            base = dataclasses.replace(base, model_height=args.model_size[0], model_width=args.model_size[1])
        extractors = make_extractors(args.methods, args.weights, args.max_keypoints, args.device, args.precision,
                                     base)
        pairs = load_pairs(args.data, args.pairs_per_image, args.seed, args.max_photos, not args.no_oxford)
    except (ValueError, WeightsError, FileNotFoundError) as exc:
        print(f"rfnet-eval: error: {exc}", file=sys.stderr)
        return 2

    records: list[dict[str, Any]] = []
    times: dict[str, list[float]] = {}
    for extractor in extractors:
        method_records, times[extractor.name] = evaluate_method(extractor, pairs, progress=not args.quiet)
        records += method_records
    rows = summary_rows(records, times)

    settings = {"data": str(args.data), "pairs_per_image": args.pairs_per_image, "max_photos": args.max_photos,
                "seed": args.seed, "max_keypoints": args.max_keypoints, "image_size": list(SIZE),
                "model_size": [base.model_height, base.model_width],
                "pairs": len(pairs), "mma_thresholds": list(MMA_THRESHOLDS), "ha_thresholds": list(HA_THRESHOLDS)}
    methods = [e.describe() for e in extractors]
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"settings": settings, "environment": environment(), "methods": methods, "summary": rows,
              "times_ms": times, "pairs": records}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    write_markdown(args.out / "results.md", rows, settings, methods)
    print(format_table(rows))
    print(f"[rfnet-eval] {len(pairs)} pairs; results in {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
