"""Per-stage timing of the feature pipeline: convert, preprocess, detect, describe, match.

Runs FeaturePipeline.process on N frames of one real photo (alternately the photo and the photo shifted by
a few pixels, so every frame is matched against a different previous frame) for each detector variant
(replaced_layers, default 0 and 9) and precision (default fp32 and bf16; bf16 autocast on a CPU runs HardNet
on AMX / AVX-512 BF16 where the processor has them). Reports mean and median ms per stage, total and
keypoint/match counts, with the device, precision and torch threads.

Speed targets belong here (--max-total-ms), never in unit tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rfnet_ros.config import FRAME_SOURCES, WEIGHTS_DIR, FeatureConfig
from rfnet_ros.evaluation.pairs import cover_crop, read_gray
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.pipeline import STAGES, FeaturePipeline

PACKAGED = {0: "rfnet_full.pt", 9: "rfnet_lite.pt"}
DEFAULT_IMAGE = Path("data/images/heldout/stuff.png")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def device_description(device: torch.device) -> str:
    """The accelerator's name, or the CPU's model and the vector extensions torch and bf16 care about."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    present = [f for f in CPU_FLAGS if f in flags]
    return f"{name}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}" + \
        (f", flags {' '.join(present)}" if present else "")


def benchmark_frames(image_path: Path, height: int, width: int) -> list[np.ndarray]:
    """The photo cropped to ``height x width`` and a copy shifted by (5, 3) px."""
    resized, to_crop = cover_crop(read_gray(image_path), (height, width))
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    frame = np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
    return [frame, np.ascontiguousarray(np.roll(frame, (3, 5), axis=(0, 1)))]


def run_variant(config: FeatureConfig, frames: list[np.ndarray], count: int, warmup: int) -> dict[str, Any]:
    """Stage timings over ``count`` frames after ``warmup`` untimed ones."""
    pipeline = FeaturePipeline(config)
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    totals, keypoints, matches = [], [], []
    for index in range(warmup + count):
        result = pipeline.process(frames[index % len(frames)])
        if index < warmup or not result.has_previous:
            continue
        for stage in STAGES:
            stage_ms[stage].append(result.timings.get(stage, 0.0))
        totals.append(sum(result.timings.values()))
        keypoints.append(len(result.features))
        matches.append(len(result.matches))
    stats = {s: {"mean": float(np.mean(v)), "median": float(np.median(v))} for s, v in stage_ms.items()}
    stats["total"] = {"mean": float(np.mean(totals)), "median": float(np.median(totals))}
    return {"replaced_layers": config.replaced_layers, "precision": config.precision,
            "weights": str(config.weights_path), "device": str(pipeline.device), "frames": len(totals),
            "ms": stats, "keypoints": float(np.mean(keypoints)), "matches": float(np.mean(matches))}


def format_table(results: list[dict[str, Any]]) -> str:
    header = ["n", "precision", *STAGES, "total", "kpts", "matches"]
    body = [[str(r["replaced_layers"]), r["precision"],
             *(f"{r['ms'][s]['median']:.1f} / {r['ms'][s]['mean']:.1f}" for s in (*STAGES, "total")),
             f"{r['keypoints']:.0f}", f"{r['matches']:.0f}"] for r in results]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="grayscale photo to time on")
    parser.add_argument("--height", type=int, default=480, help="frame height (px)")
    parser.add_argument("--width", type=int, default=640, help="frame width (px)")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per variant and precision")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--variants", type=int, nargs="+", default=[0, 9], help="replaced_layers to time")
    parser.add_argument("--weights", action="append", default=[], metavar="N=PATH",
                        help="weights file for variant N (default: the packaged rfnet_full.pt / rfnet_lite.pt)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp16 (CUDA)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--top-k", type=int, default=1024, help="keypoints per frame")
    parser.add_argument("--model-height", type=int, default=None, help="detector input height (config default)")
    parser.add_argument("--model-width", type=int, default=None, help="detector input width (config default)")
    parser.add_argument("--keypoint-frames", choices=FRAME_SOURCES, default="learned",
                        help="keypoint scales and orientations: learned or measured on the image")
    parser.add_argument("--min-strength", type=float, default=0.0,
                        help="min_strength setting (needs --keypoint-frames image; lite_native.yaml: 1e-4)")
    parser.add_argument("--second-peak-ratio", type=float, default=1.0,
                        help="second_peak_ratio setting (needs --keypoint-frames image; lite_native.yaml: 0.7)")
    parser.add_argument("--max-total-ms", type=float, default=None,
                        help="speed target: exit 1 when a run's median total exceeds it")
    parser.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = {n: WEIGHTS_DIR / name for n, name in PACKAGED.items()}
    try:
        for spec in args.weights:
            n, sep, path = spec.partition("=")
            if not (sep and n.isdigit() and path):
                raise ValueError(f"--weights: expected N=PATH, got {spec!r}")
            weights[int(n)] = Path(path).resolve()
        frames = benchmark_frames(args.image, args.height, args.width)
        model_size = {k: v for k, v in (("model_height", args.model_height), ("model_width", args.model_width)) if v}
        configs = []
        for n in args.variants:
            if n not in weights:
                raise ValueError(f"--variants: no weights file for replaced_layers {n}: pass --weights {n}=PATH")
            configs += [FeatureConfig(weights=str(weights[n]), replaced_layers=n, top_k=args.top_k,
                                      device=args.device, precision=p, keypoint_frames=args.keypoint_frames,
                                      min_strength=args.min_strength, second_peak_ratio=args.second_peak_ratio,
                                      **model_size) for p in args.precisions]
        results = [run_variant(c, frames, args.frames, args.warmup) for c in configs]
    except (ValueError, WeightsError, FileNotFoundError) as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(results[0]["device"])
    header = {"image": str(args.image), "resolution": [args.height, args.width],
              "model_size": list(configs[0].model_size), "keypoint_frames": args.keypoint_frames,
              "min_strength": args.min_strength, "second_peak_ratio": args.second_peak_ratio,
              "top_k": args.top_k, "frames": args.frames,
              "device": device_description(device), "torch": torch.__version__,
              "torch_threads": torch.get_num_threads()}
    print(f"Per-stage ms, median / mean over {args.frames} frames of {args.image.name} at {args.height}x{args.width} "
          f"(detector at {configs[0].model_height}x{configs[0].model_width}, {args.keypoint_frames} keypoint frames), "
          f"top-k {args.top_k}")
    print(f"device: {results[0]['device']} ({header['device']}); torch {torch.__version__}, "
          f"{header['torch_threads']} threads")
    print(format_table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"settings": header, "results": results}, indent=1))
    if args.max_total_ms is not None:
        slow = [r for r in results if r["ms"]["total"]["median"] > args.max_total_ms]
        for r in slow:
            print(f"benchmark: n={r['replaced_layers']} {r['precision']}: median total "
                  f"{r['ms']['total']['median']:.1f} ms exceeds the target {args.max_total_ms:.1f} ms", file=sys.stderr)
        return 1 if slow else 0
    return 0
