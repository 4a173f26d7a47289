"""The evaluation protocol: feature methods run over pairs and sequences, their metrics and summaries.

Pairs (rfnet_ros.evaluation.pairs): the split's synthetic viewpoint and illumination pairs, the Oxford graf1 ->
graf3 pair, and the rotation and scale sweeps (one pair per photo and bin). Sequences
(rfnet_ros.evaluation.sequences): VO-style frames, consecutive frames matched. Every function returns plain
records and rows (dicts); rfnet_ros.evaluation.report turns them into tables.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rfnet_ros.evaluation.bootstrap import paired_bootstrap
from rfnet_ros.evaluation.extractors import Extractor, Features
from rfnet_ros.evaluation.metrics import HA_THRESHOLDS, MMA_THRESHOLDS, evaluate_pair, frame_errors
from rfnet_ros.evaluation.pairs import SIZE, SWEEPS, Pair, oxford_pair, synthetic_pairs
from rfnet_ros.evaluation.sequences import Sequence, sequence_metrics

# Pair set -> the pair kinds it holds.
SETS = {"viewpoint": ("viewpoint",), "illumination": ("illumination",),
        "synthetic": ("viewpoint", "illumination"), "graf1->graf3": ("oxford",)}


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


def environment() -> dict[str, Any]:
    import cv2

    return {"python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__,
            "torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "processor": platform.processor()}
