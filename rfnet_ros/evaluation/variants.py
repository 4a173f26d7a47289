"""The replaced-layers variant sweep (`rfnet-eval --sweep`): detector size and cost against matching score (the
paper's Fig. 6). Not the rotation and scale sweeps of pairs, which are part of rfnet-eval's protocol.

For every variant n = 0..9: detector parameters and conv multiply-adds (rfnet_ros.model.complexity, at the
model input size) and, for each variant that has a weights file, its matching score on the synthetic
evaluation pairs (viewpoint, illumination, both). Weights files: the packaged rfnet_full.pt (n = 0) and
rfnet_lite.pt (n = 9) when present, plus any files passed with --weights (their n is read from the file).
Variants without weights are listed with '-' for the score.

Writes OUT/sweep.json, OUT/sweep.md and OUT/sweep.png (matching score against detector GMACs).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rfnet_ros.config import WEIGHTS_DIR, FeatureConfig
from rfnet_ros.evaluation.extractors import RFNetExtractor
from rfnet_ros.evaluation.ledger import DEFAULT_LEDGER, record_read
from rfnet_ros.evaluation.plot import Series, line_plot
from rfnet_ros.evaluation.protocol import environment, evaluate_method, load_pairs, summarise
from rfnet_ros.evaluation.report import format_rows
from rfnet_ros.model.complexity import detector_complexity
from rfnet_ros.model.detector import MAX_REPLACED
from rfnet_ros.model.weights import WeightsError, file_sha256, read_weights

PACKAGED = ("rfnet_full.pt", "rfnet_lite.pt")
SCORE_SETS = {"viewpoint": ("viewpoint",), "illumination": ("illumination",),
              "synthetic": ("viewpoint", "illumination")}


def find_weights(extra: list[Path]) -> list[tuple[int, Path]]:
    """(replaced_layers, path) of the packaged weights files that exist and of ``extra`` (n read from each)."""
    paths = [WEIGHTS_DIR / name for name in PACKAGED if (WEIGHTS_DIR / name).is_file()] + list(extra)
    found, seen = [], set()
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        found.append((int(read_weights(resolved)["replaced_layers"]), resolved))
    return sorted(found)


def complexity_rows(height: int, width: int) -> list[dict[str, Any]]:
    """Parameters and conv MACs of every detector variant, with the change relative to n = 0."""
    rows = [detector_complexity(n, height, width) for n in range(MAX_REPLACED + 1)]
    for row in rows:
        row["macs_change"] = row["macs"] / rows[0]["macs"] - 1
        row["parameters_change"] = row["parameters"] / rows[0]["parameters"] - 1
    return rows


def variant_rows(complexity: list[dict[str, Any]], scored: dict[tuple[int, Path], dict[str, Any]]) -> list[dict]:
    """One row per variant without weights and per weights file of a variant."""
    rows = []
    for c in complexity:
        files = [(key, s) for key, s in scored.items() if key[0] == c["replaced_layers"]]
        if not files:
            rows.append({**c, "weights": None})
        for (_, path), scores in files:
            rows.append({**c, "weights": str(path), **scores})
    return rows


def format_table(rows: list[dict[str, Any]], height: int, width: int) -> str:
    header = ["n", "params", "vs n=0", f"GMACs@{height}x{width}", "vs n=0", "weights",
              *(f"MS {s}" for s in SCORE_SETS), "matches", "kpts"]

    def score(row: dict, key: str, fmt: str) -> str:
        return fmt.format(row[key]) if row.get(key) is not None else "-"

    body = [[str(r["replaced_layers"]), f"{r['parameters']:,}", f"{r['parameters_change']:+.0%}",
             f"{r['macs'] / 1e9:.3f}", f"{r['macs_change']:+.0%}",
             Path(r["weights"]).name if r["weights"] else "-",
             *(score(r, f"ms_{s}", "{:.3f}") for s in SCORE_SETS), score(r, "matches", "{:.0f}"),
             score(r, "keypoints", "{:.0f}")] for r in rows]
    return format_rows(header, body, markdown=False)


def plot(path: Path, rows: list[dict[str, Any]], height: int, width: int) -> None:
    scored = [r for r in rows if r.get("ms_synthetic") is not None]
    series = [Series(f"matching score, {s}", [r["macs"] / 1e9 for r in scored], [r[f"ms_{s}"] for r in scored],
                     [f"n={r['replaced_layers']}" for r in scored]) for s in SCORE_SETS]
    marks = [(r["macs"] / 1e9, f"n={r['replaced_layers']}") for r in rows if r["weights"] is None]
    line_plot(path, series, "Matching score against detector cost (replaced layers n marked)",
              f"detector conv GMACs at {height}x{width} (ticks: variants without weights)", "matching score",
              x_marks=marks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-eval --sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", type=Path, default=[], metavar="PATH",
                        help="more weights files (e.g. runs/*.pt); replaced_layers is read from each")
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (scripts/fetch_data.sh)")
    parser.add_argument("--split", choices=("validation", "heldout"), default="validation",
                        help="photos to score on (heldout is logged in --ledger)")
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER, help="held-out read log")
    parser.add_argument("--pairs-per-image", type=int, default=5,
                        help="viewpoint pairs and illumination pairs per photo")
    parser.add_argument("--max-photos", type=int, default=None, help="use only the first N held-out photos")
    parser.add_argument("--max-keypoints", type=int, default=1024, help="keypoints per image")
    parser.add_argument("--device", default="auto", help="torch device")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    defaults = FeatureConfig()
    parser.add_argument("--height", type=int, default=defaults.model_height, help="model input height for MACs")
    parser.add_argument("--width", type=int, default=defaults.model_width, help="model input width for MACs")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"), help="folder for sweep.json/.md/.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        weights = find_weights(args.weights)
        pairs = load_pairs(args.data, args.pairs_per_image, args.seed, args.max_photos, oxford=False,
                           split=args.split) if weights else []
    except (WeightsError, FileNotFoundError) as exc:
        print(f"rfnet-eval --sweep: error: {exc}", file=sys.stderr)
        return 2
    if args.split == "heldout" and weights:
        record_read(args.ledger, [{"name": p.stem, "weights": str(p), "weights_sha256": file_sha256(p)}
                                  for _, p in weights], {"sweep": "replaced_layers", "seed": args.seed})
    scored: dict[tuple[int, Path], dict[str, Any]] = {}
    for n, path in weights:
        config = FeatureConfig(weights=str(path), replaced_layers=n, top_k=args.max_keypoints, device=args.device,
                               model_height=args.height, model_width=args.width)
        records, _ = evaluate_method(RFNetExtractor(path.stem, config), pairs, progress=not args.quiet)
        scores = {f"ms_{s}": summarise([r for r in records if r["kind"] in kinds])["matching_score"]
                  for s, kinds in SCORE_SETS.items()}
        total = summarise(records)
        scored[(n, path)] = {**scores, "matches": total["matches"], "keypoints": total["keypoints"]}
    rows = variant_rows(complexity_rows(args.height, args.width), scored)
    table = format_table(rows, args.height, args.width)

    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"data": str(args.data), "split": args.split, "pairs_per_image": args.pairs_per_image,
                "max_photos": args.max_photos,
                "seed": args.seed, "max_keypoints": args.max_keypoints, "model_size": [args.height, args.width],
                "pairs": len(pairs)}
    (args.out / "sweep.json").write_text(json.dumps({"settings": settings, "environment": environment(),
                                                     "rows": rows}, indent=1))
    note = ("Detector parameters and conv multiply-adds per replaced-layers variant n; matching score (correct@3 "
            f"matches in the shared region / mean shared keypoints) on the synthetic {args.split} pairs for the "
            "variants "
            f"with a weights file ({len(pairs)} pairs, at most {args.max_keypoints} keypoints); '-': no weights.")
    (args.out / "sweep.md").write_text(f"# Replaced-layers sweep\n\n{note}\n\n```\n{table}\n```\n\n"
                                       "![matching score against detector GMACs](sweep.png)\n")
    plot(args.out / "sweep.png", rows, args.height, args.width)
    print(table)
    if not weights:
        print("[sweep] no weights files found: complexity only (pass --weights PATH ...)")
    print(f"[sweep] written to {args.out / 'sweep.json'}, sweep.md and sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
