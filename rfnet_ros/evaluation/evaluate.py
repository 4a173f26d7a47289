"""rfnet-eval: how well feature methods match, on one split of photos, in one run.

Sets (``--sets``, all by default), every image 480x640 px:
  pairs      HPatches-style viewpoint and illumination pairs of the split's photos, and the Oxford graf1 ->
             graf3 pair (rfnet_ros.evaluation.pairs; warps from rfnet_ros.evaluation.warps, independent of
             training's): MMA, matching score, repeatability, homography accuracy, frame errors;
  rotation   one pair per photo and rotation bin (0-180 degrees), reported per bin;
  scale      one pair per photo and zoom bin (0.5-2x), reported per bin;
  sequences  VO-style sequences, one per photo (rfnet_ros.evaluation.sequences): correct-match ratio
             (MMA@3 of consecutive frames), correct matches per frame pair, homography accuracy@3, tracks;
  stereo     rectified two-layer stereo pairs with known disparity, one per photo
             (rfnet_ros.evaluation.stereo): configurations run the stereo front end, the other methods are
             matched among the pairs on the same row with a disparity in range; correct ratio (disparity and
             row within 1 px), correct matches per pair, median disparity error. Printed and in results.json.
Methods: NAME=CONFIG.yaml (our pipeline exactly as the node runs that file, top_k = --max-keypoints), the
named RF-Net variants, sift, orb and xfeat (optional), all with mutual nearest-neighbour matching. Where a
configuration has ``refine_matches``, its matches are measured where the pipeline places the matched
keypoints of the second image (``Extractor.match_features``), as the node publishes them.
Comparisons (``--compare A:B``, by default every method against sift): paired bootstrap 95% intervals of
the per-pair and per-sequence differences (rfnet_ros.evaluation.bootstrap).

Splits: ``validation`` (the default; settings are chosen on it) or ``heldout``, which must be asked for and
is logged (rfnet_ros.evaluation.ledger): the held-out photos are read once per shipped model.

Writes OUT/results.json (settings, every pair's, frame pair's and sequence's metrics, the summaries) and
OUT/results.md (the tables). `rfnet-eval --sweep ...` runs the replaced-layers variant sweep
(rfnet_ros.evaluation.variants) instead. This module is the command line: the protocol is
rfnet_ros.evaluation.protocol, the tables rfnet_ros.evaluation.report.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.evaluation.extractors import make_extractors
from rfnet_ros.evaluation.ledger import DEFAULT_LEDGER, read_count, record_read
from rfnet_ros.evaluation.metrics import HA_THRESHOLDS, MMA_THRESHOLDS
from rfnet_ros.evaluation.pairs import SIZE, SWEEPS, sweep_pairs
from rfnet_ros.evaluation.protocol import (
    comparisons,
    environment,
    evaluate_method,
    evaluate_sequences,
    load_pairs,
    sequence_rows,
    summary_rows,
    sweep_rows,
)
from rfnet_ros.evaluation.report import (
    format_comparisons,
    format_sequences,
    format_sweeps,
    format_table,
    per_photo_rows,
    write_markdown,
)
from rfnet_ros.evaluation.sequences import FRAMES, sequences
from rfnet_ros.evaluation.stereo import evaluate_stereo, format_stereo, stereo_pairs
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.sizes import parse_size

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_METHODS = ("lite=config/lite.yaml", "sift", "orb")
ALL_SETS = ("pairs", "rotation", "scale", "sequences", "stereo")
SPLIT_CHOICES = ("validation", "heldout")
REFERENCE = "sift"


def parse_compare(specs: list[str] | None, methods: list[str]) -> list[tuple[str, str]]:
    """``A:B`` pairs to compare; by default every method against sift when sift was run."""
    if specs is None:
        return [(m, REFERENCE) for m in methods if m != REFERENCE] if REFERENCE in methods else []
    out = []
    for spec in specs:
        a, sep, b = spec.partition(":")
        if not sep or a not in methods or b not in methods:
            raise ValueError(f"--compare: expected A:B with two evaluated methods ({', '.join(methods)}), got {spec!r}")
        out.append((a, b))
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (scripts/fetch_data.sh)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="validation",
                        help="photos to evaluate on: validation (default) or heldout (logged in --ledger; read "
                             "it once per shipped model)")
    parser.add_argument("--sets", nargs="+", choices=ALL_SETS, default=list(ALL_SETS),
                        help="what to run: pairs (viewpoint, illumination, graf), rotation and scale sweeps, "
                             "sequences (default: all)")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="NAME=CONFIG.yaml (our pipeline as the node runs the file, top_k = --max-keypoints), "
                             "sift, orb, xfeat (needs requirements/eval-extras.txt), the named variants "
                             "rfnet_full, rfnet_lite, rfnet_*_img480, rfnet_*_native, or names given with "
                             "--weights (default: lite=config/lite.yaml sift orb)")
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=PATH:N",
                        help="evaluate weights file PATH (replaced_layers N) as method NAME; repeatable; "
                             "NAME rfnet_full/rfnet_lite replaces that variant's file")
    parser.add_argument("--compare", nargs="+", metavar="A:B",
                        help="bootstrap intervals of A - B (default: every method against sift)")
    parser.add_argument("--pairs-per-image", type=int, default=5,
                        help="viewpoint pairs and illumination pairs per photo")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per sequence")
    parser.add_argument("--max-photos", type=int, default=None, help="use only the first N photos of the split")
    parser.add_argument("--no-oxford", action="store_true", help="leave out the graf1 -> graf3 pair")
    parser.add_argument("--max-keypoints", type=int, default=1024, help="keypoints per image, every method")
    parser.add_argument("--config", type=Path, help="YAML config (config/lite.yaml format) with the settings "
                        "other than weights, variant, top-k, device and precision of the named RF-Net variants")
    parser.add_argument("--model-size", type=partial(parse_size, order="HxW"), metavar="HxW",
                        help="detector input size of the named variants, e.g. 480x640 (default: 240x320)")
    parser.add_argument("--device", default=None, help="torch device (default: auto for the named variants, the "
                        "file's for NAME=CONFIG.yaml methods)")
    parser.add_argument("--precision", default=None, help="RF-Net descriptor precision: auto, fp32, fp16, bf16 "
                        "(default: auto for the named variants, the file's for NAME=CONFIG.yaml methods)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs and sequences")
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER,
                        help="held-out read log, one JSON line per --split heldout run (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="folder for results.json/.md")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def resolve_methods(methods: list[str]) -> list[str]:
    """NAME=CONFIG.yaml specs whose file is not found from here are looked up in the repository."""
    out = []
    for method in methods:
        name, sep, path = method.partition("=")
        if sep and path.lower().endswith((".yaml", ".yml")) and not Path(path).is_file() \
                and (REPOSITORY / path).is_file():
            method = f"{name}={REPOSITORY / path}"
        out.append(method)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--sweep" in argv:
        from rfnet_ros.evaluation import variants

        return variants.main([a for a in argv if a != "--sweep"])
    args = build_parser().parse_args(argv)
    if args.pairs_per_image < 1 or args.max_keypoints < 1 or args.frames < 2:
        print("rfnet-eval: error: --pairs-per-image and --max-keypoints must be positive, --frames at least 2",
              file=sys.stderr)
        return 2
    folder = args.data / "images" / args.split
    try:
        base = load_config(args.config, ignore=NodeConfig.names())
        if args.model_size:
            base = dataclasses.replace(base, model_height=args.model_size[0], model_width=args.model_size[1])
        extractors = make_extractors(resolve_methods(args.methods), args.weights, args.max_keypoints, args.device,
                                     args.precision, base)
        names = [e.name for e in extractors]
        if len(set(names)) != len(names):
            raise ValueError(f"methods: names must be unique, got {', '.join(names)}")
        compare = parse_compare(args.compare, names)
        pairs = load_pairs(args.data, args.pairs_per_image, args.seed, args.max_photos,
                           not args.no_oxford, args.split) if "pairs" in args.sets else []
        for sweep in ("rotation", "scale"):
            if sweep in args.sets:
                pairs += sweep_pairs(folder, sweep, args.seed, SIZE, args.max_photos)
        all_sequences = (sequences(folder, args.seed, args.frames, SIZE, args.max_photos)
                         if "sequences" in args.sets else [])
        all_stereo = stereo_pairs(folder, args.seed, SIZE, args.max_photos) if "stereo" in args.sets else []
    except (ValueError, WeightsError, FileNotFoundError) as exc:
        print(f"rfnet-eval: error: {exc}", file=sys.stderr)
        return 2
    methods = [e.describe() for e in extractors]
    settings = {"data": str(args.data), "split": args.split, "sets": args.sets,
                "pairs_per_image": args.pairs_per_image, "max_photos": args.max_photos, "seed": args.seed,
                "max_keypoints": args.max_keypoints, "image_size": list(SIZE), "frames": args.frames,
                "model_size": [base.model_height, base.model_width], "pairs": len(pairs),
                "sequences": len(all_sequences), "stereo_pairs": len(all_stereo),
                "mma_thresholds": list(MMA_THRESHOLDS), "ha_thresholds": list(HA_THRESHOLDS)}
    if args.split == "heldout":
        entry = record_read(args.ledger, methods, settings, argv)
        print(f"[rfnet-eval] held-out read #{read_count(args.ledger)} recorded in {args.ledger} "
              f"(commit {entry['commit']})", file=sys.stderr)

    records: list[dict[str, Any]] = []
    seq_pairs: list[dict[str, Any]] = []
    seq_summaries: list[dict[str, Any]] = []
    times: dict[str, list[float]] = {}
    for extractor in extractors:
        method_records, times[extractor.name] = evaluate_method(extractor, pairs, progress=not args.quiet)
        records += method_records
        if all_sequences:
            p, s, t = evaluate_sequences(extractor, all_sequences, progress=not args.quiet)
            seq_pairs, seq_summaries = seq_pairs + p, seq_summaries + s
            times[extractor.name] += t
    rows = summary_rows([r for r in records if r["kind"] not in SWEEPS], times)
    sweeps = sweep_rows(records)
    sequence_table = sequence_rows(seq_summaries, seq_pairs)
    compared = comparisons(compare, records, seq_pairs, seq_summaries)
    photos = per_photo_rows([r for r in records if r["kind"] not in SWEEPS], seq_summaries)
    stereo_records, stereo_rows = evaluate_stereo(extractors, all_stereo) if all_stereo else ([], [])

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"settings": settings, "environment": environment(), "methods": methods, "summary": rows,
              "sweeps": sweeps, "sequences": sequence_table, "comparisons": compared, "times_ms": times,
              "pairs": [r for r in records if r["kind"] not in SWEEPS],
              "sweep_pairs": [r for r in records if r["kind"] in SWEEPS],
              "sequence_pairs": seq_pairs, "sequence_summaries": seq_summaries, "stereo": stereo_rows,
              "stereo_pairs": stereo_records, "per_photo": photos}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    write_markdown(args.out / "results.md", rows, settings, methods, sweeps, sequence_table, compared, photos)
    blocks = [format_table(rows) if rows else "", format_sweeps(sweeps) if sweeps else "",
              f"sequences ({len(all_sequences)} x {args.frames} frames)\n" + format_sequences(sequence_table)
              if sequence_table else "", "paired bootstrap, 95% intervals\n" + format_comparisons(compared)
              if compared else "", format_stereo(stereo_rows) if stereo_rows else ""]
    print("\n\n".join(b for b in blocks if b))
    print(f"[rfnet-eval] split {args.split}: {len(pairs)} pairs, {len(all_sequences)} sequences; results in "
          f"{args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
