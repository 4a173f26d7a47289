"""rfnet-eval: how well feature methods match, on one split of photos, in one run.

Sets (``--sets``, all by default), every image 480x640 px:
  pairs      HPatches-style viewpoint and illumination pairs of the split's photos, and the Oxford graf1 ->
             graf3 pair (rfnet_ros.evaluation.pairs; warps from rfnet_ros.evaluation.warps, independent of
             training's): MMA, matching score, repeatability, homography accuracy, frame errors;
  rotation   one pair per photo and rotation bin (0-180 degrees), reported per bin;
  scale      one pair per photo and zoom bin (0.5-2x), reported per bin;
  sequences  VO-style sequences, one per photo (rfnet_ros.evaluation.sequences): correct-match ratio
             (MMA@3 of consecutive frames), correct matches per frame pair, homography accuracy@3, tracks.
Methods: NAME=CONFIG.yaml (our pipeline exactly as the node runs that file, top_k = --max-keypoints), the
named RF-Net variants, sift, orb and xfeat (optional), all with mutual nearest-neighbour matching. Where a
configuration has ``refine_matches``, its matches are measured where the pipeline places the matched
keypoints of the second image (``Extractor.match_features``), as the node publishes them.
Comparisons (``--compare A:B``, by default every method against sift): paired bootstrap 95% intervals of
the per-pair and per-sequence differences (rfnet_ros.evaluation.bootstrap).

Splits: ``validation`` (the default; settings are chosen on it) or ``heldout``, which must be asked for and
is logged (rfnet_ros.evaluation.ledger): the held-out photos are read once per shipped model.

Writes OUT/results.json (settings, every pair's, frame pair's and sequence's metrics, the summaries) and
OUT/results.md (the tables). `rfnet-eval --sweep ...` runs rfnet_ros.evaluation.sweep (replaced layers) instead.
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
from rfnet_ros.evaluation.bootstrap import paired_bootstrap
from rfnet_ros.evaluation.extractors import Extractor, Features, make_extractors
from rfnet_ros.evaluation.ledger import DEFAULT_LEDGER, read_count, record_read
from rfnet_ros.evaluation.metrics import HA_THRESHOLDS, MMA_THRESHOLDS, evaluate_pair, frame_errors
from rfnet_ros.evaluation.pairs import SIZE, SWEEPS, Pair, oxford_pair, sweep_pairs, synthetic_pairs
from rfnet_ros.evaluation.sequences import FRAMES, Sequence, sequence_metrics, sequences
from rfnet_ros.model.weights import WeightsError

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_METHODS = ("lite=config/lite.yaml", "sift", "orb")
ALL_SETS = ("pairs", "rotation", "scale", "sequences")
SPLIT_CHOICES = ("validation", "heldout")
REFERENCE = "sift"
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
               oxford: bool = True, split: str = "validation") -> list[Pair]:
    """The synthetic pairs of ``data/images/<split>`` and, if asked, the Oxford pair from ``data/oxford``."""
    pairs = synthetic_pairs(data / "images" / split, pairs_per_image, seed, SIZE, max_photos)
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
        matches, keypoints1 = extractor.match_features(features0, features1)
        metrics = evaluate_pair(features0.keypoints, features1.keypoints, matches, pair.homography,
                                pair.image0.shape, pair.image1.shape, matched_keypoints1=keypoints1)
        record = {"method": extractor.name, "pair": pair.name, "kind": pair.kind, "bin": pair.bin,
                  **metrics.to_dict()}
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
                   methods: list[dict[str, Any]], sweeps: list[dict[str, Any]] = (),
                   sequence_table: list[dict[str, Any]] = (), compared: list[dict[str, Any]] = ()) -> None:
    lines = ["# Feature matching evaluation", "",
             f"Split `{settings.get('split', 'validation')}`. Pairs at {SIZE[0]}x{SIZE[1]} px, at most "
             f"{settings['max_keypoints']} keypoints, mutual nearest-neighbour matching; "
             f"{settings['pairs_per_image']} viewpoint and {settings['pairs_per_image']} illumination pairs per "
             f"photo, seed {settings['seed']}.", "",
             format_table(rows, markdown=True) if rows else "(no pairs)", "",
             "MMA@t: correct (within t px under the true H) / matches. HA@e: RANSAC homography (3 px) with mean "
             "corner error <= e px. MS (matching score): correct@3 matches in the shared region / mean of both "
             "images' shared keypoints. Rep@3: shared keypoints with a detection within 3 px in the other image / "
             "shared keypoints (both images pooled). ori°, scale oct: orientation error (degrees) and scale "
             "error (|log2|, octaves) of image0's repeated keypoints against the true homography's local "
             "rotation and scale (metrics.frame_errors), the median of each pair averaged over pairs. kpts, "
             "matches: means per pair (kpts: mean of both images). ms/img: median wall-clock extraction time. "
             "Methods with refine_matches (Methods below) are measured where their matching places image1's "
             "matched keypoints (MMA, MS, HA); Rep@3 and the frame errors use the detections.",
             "",
             "graf1->graf3: the Oxford pair resized from 640x800 to 480x640 (separate x and y ratios) with its "
             "ground-truth homography H1to3p adjusted to match; it is a single pair, so its HA values are 0 or 1.",
             ""]
    if sweeps:
        lines += ["## Rotation and scale sweeps", "", "One pair per photo and bin: an exact rotation about the "
                  "centre (random sign) or zoom, with mild photometric noise. MMA@3, HA@3 and mean matches per bin.",
                  "", format_sweeps(list(sweeps), markdown=True), ""]
    if sequence_table:
        lines += ["## Sequences", "", f"One {settings.get('frames')}-frame sequence per photo (slow roll, zoom, "
                  "drift, tilt, exposure drift, motion blur, noise), consecutive frames matched. Ratios and counts "
                  "are means over frame pairs; tracks chain correct (3 px) matches, their statistics are means "
                  "over sequences.", "", format_sequences(list(sequence_table), markdown=True), ""]
    if compared:
        lines += ["## Paired bootstrap", "", "Mean of A - B over the units both were measured on, with the 95% "
                  "percentile interval of 10,000 resamples of the units.", "",
                  format_comparisons(list(compared), markdown=True), ""]
    lines += ["## Methods", ""]
    lines += [f"- {m['name']}: " + ", ".join(f"{k}={v}" for k, v in m.items() if k != "name") for m in methods]
    path.write_text("\n".join(lines) + "\n")


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` -> (height, width)."""
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit()):
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 480x640, got {text!r}")
    return int(height), int(width)


def sweep_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method, sweep and bin: MMA@3, HA@3 and mean matches over the bin's pairs."""
    rows = []
    keys = sorted({(r["method"], r["kind"], r["bin"]) for r in records if r["kind"] in SWEEPS},
                  key=lambda k: (k[0], list(SWEEPS).index(k[1]), k[2]))
    for method, sweep, value in keys:
        chosen = [r for r in records if (r["method"], r["kind"], r["bin"]) == (method, sweep, value)]
        rows.append({"method": method, "sweep": sweep, "bin": value, "pairs": len(chosen),
                     "mma@3": float(np.mean([r["mma"][3] for r in chosen])),
                     "ha@3": float(np.mean([r["ha"][3] for r in chosen])),
                     "matches": float(np.mean([r["matches"] for r in chosen])),
                     "correct@3": float(np.mean([r["correct"][3] for r in chosen]))})
    return rows


def evaluate_sequences(extractor: Extractor, all_sequences: list[Sequence], progress: bool = True
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[float]]:
    """Frame-pair records, per-sequence summaries and extraction ms of one method on the sequences."""
    pairs, summaries, times = [], [], []
    for sequence in tqdm(all_sequences, desc=f"{extractor.name} sequences", disable=not progress, file=sys.stderr,
                         leave=False):
        features = []
        for frame in sequence.frames:
            f, ms = extractor.timed_extract(frame)
            features.append(f)
            times.append(ms)
        frame_pairs, summary = sequence_metrics(features, extractor.match_features, sequence)
        pairs += [{"method": extractor.name, **p} for p in frame_pairs]
        summaries.append({"method": extractor.name, **summary})
    return pairs, summaries, times


SEQUENCE_COLUMNS = {"correct ratio (MMA@3)": ("mma@3", "{:.3f}"), "correct/pair": ("correct@3", "{:.0f}"),
                    "HA@3": ("ha@3", "{:.3f}"), "mean track": ("mean_track_length", "{:.2f}"),
                    "alive@5": ("alive@5", "{:.3f}"), "alive@10": ("alive@10", "{:.3f}"),
                    "matches": ("matches", "{:.0f}"), "kpts": ("keypoints", "{:.0f}")}


def sequence_rows(summaries: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: frame-pair means of the ratios and counts, and track statistics over sequences."""
    rows = []
    for method in dict.fromkeys(s["method"] for s in summaries):
        chosen = [p for p in pairs if p["method"] == method]
        seqs = [s for s in summaries if s["method"] == method]
        row = {"method": method, "sequences": len(seqs), "frame_pairs": len(chosen)}
        for key in ("mma@3", "correct@3", "ha@3", "matches", "keypoints"):
            row[key] = float(np.mean([p[key] for p in chosen]))
        for key in ("mean_track_length", "alive@5", "alive@10", "tracks"):
            row[key] = float(np.mean([s[key] for s in seqs]))
        rows.append(row)
    return rows


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


def comparisons(pairs: list[tuple[str, str]], records: list[dict[str, Any]], seq_pairs: list[dict[str, Any]],
                seq_summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bootstrap intervals of A - B: MMA@3 and HA@3 per synthetic pair, per sweep pair, and per sequence
    (correct-match ratio and HA@3) and per frame pair (correct-match ratio)."""
    synthetic = [r for r in records if r["kind"] in SETS["synthetic"]]
    units: list[tuple[str, str, list[dict[str, Any]], str, Any]] = [
        ("synthetic pairs", "MMA@3", synthetic, "pair", lambda r: r["mma"][3]),
        ("synthetic pairs", "HA@3", synthetic, "pair", lambda r: float(r["ha"][3])),
        ("rotation sweep", "MMA@3", [r for r in records if r["kind"] == "rotation"], "pair", lambda r: r["mma"][3]),
        ("scale sweep", "MMA@3", [r for r in records if r["kind"] == "scale"], "pair", lambda r: r["mma"][3]),
        ("sequences", "correct ratio", seq_summaries, "sequence", lambda r: r["mma@3"]),
        ("sequences", "HA@3", seq_summaries, "sequence", lambda r: r["ha@3"]),
        ("frame pairs", "correct ratio", seq_pairs, "pair", lambda r: r["mma@3"]),
    ]
    out = []
    for a, b in pairs:
        for set_name, metric, chosen, unit, value in units:
            va = {r[unit]: value(r) for r in chosen if r["method"] == a}
            vb = {r[unit]: value(r) for r in chosen if r["method"] == b}
            if set(va) & set(vb):
                out.append({"a": a, "b": b, "set": set_name, "metric": metric, **paired_bootstrap(va, vb)})
    return out


def format_rows(header: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
                         + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_sweeps(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """Per sweep, one line per method with MMA@3 / HA@3 / matches per bin."""
    blocks = []
    for sweep in dict.fromkeys(r["sweep"] for r in rows):
        bins = sorted({r["bin"] for r in rows if r["sweep"] == sweep})
        unit = "°" if sweep == "rotation" else "x"
        header = ["method", "metric", *(f"{b:g}{unit}" for b in bins)]
        body = []
        for method in dict.fromkeys(r["method"] for r in rows):
            by_bin = {r["bin"]: r for r in rows if r["sweep"] == sweep and r["method"] == method}
            for key, fmt in (("mma@3", "{:.3f}"), ("ha@3", "{:.2f}"), ("matches", "{:.0f}")):
                body.append([method, key.upper() if key != "matches" else key,
                             *(fmt.format(by_bin[b][key]) if b in by_bin else "-" for b in bins)])
        title = f"{sweep} sweep ({rows[0]['pairs'] if rows else 0} pairs per bin)"
        blocks.append(title + "\n" + format_rows(header, body, markdown))
    return "\n\n".join(blocks)


def format_sequences(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    header = ["method", "sequences", "frame pairs", *SEQUENCE_COLUMNS]
    body = [[r["method"], str(r["sequences"]), str(r["frame_pairs"]),
             *(fmt.format(r[key]) for key, fmt in SEQUENCE_COLUMNS.values())] for r in rows]
    return format_rows(header, body, markdown)


def format_comparisons(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    header = ["A - B", "set", "metric", "units", "A", "B", "difference", "95% interval", "A ahead/behind"]
    body = [[f"{r['a']} - {r['b']}", r["set"], r["metric"], str(r["units"]), f"{r['mean_a']:.3f}",
             f"{r['mean_b']:.3f}", f"{r['difference']:+.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]",
             f"{r['ahead']}/{r['behind']}"] for r in rows]
    return format_rows(header, body, markdown)


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
    parser.add_argument("--model-size", type=parse_size, metavar="HxW",
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
        from rfnet_ros.evaluation import sweep

        return sweep.main([a for a in argv if a != "--sweep"])
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
    except (ValueError, WeightsError, FileNotFoundError) as exc:
        print(f"rfnet-eval: error: {exc}", file=sys.stderr)
        return 2
    methods = [e.describe() for e in extractors]
    settings = {"data": str(args.data), "split": args.split, "sets": args.sets,
                "pairs_per_image": args.pairs_per_image, "max_photos": args.max_photos, "seed": args.seed,
                "max_keypoints": args.max_keypoints, "image_size": list(SIZE), "frames": args.frames,
                "model_size": [base.model_height, base.model_width], "pairs": len(pairs),
                "sequences": len(all_sequences), "mma_thresholds": list(MMA_THRESHOLDS),
                "ha_thresholds": list(HA_THRESHOLDS)}
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

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"settings": settings, "environment": environment(), "methods": methods, "summary": rows,
              "sweeps": sweeps, "sequences": sequence_table, "comparisons": compared, "times_ms": times,
              "pairs": [r for r in records if r["kind"] not in SWEEPS],
              "sweep_pairs": [r for r in records if r["kind"] in SWEEPS],
              "sequence_pairs": seq_pairs, "sequence_summaries": seq_summaries}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    write_markdown(args.out / "results.md", rows, settings, methods, sweeps, sequence_table, compared)
    blocks = [format_table(rows) if rows else "", format_sweeps(sweeps) if sweeps else "",
              f"sequences ({len(all_sequences)} x {args.frames} frames)\n" + format_sequences(sequence_table)
              if sequence_table else "", "paired bootstrap, 95% intervals\n" + format_comparisons(compared)
              if compared else ""]
    print("\n\n".join(b for b in blocks if b))
    print(f"[rfnet-eval] split {args.split}: {len(pairs)} pairs, {len(all_sequences)} sequences; results in "
          f"{args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
