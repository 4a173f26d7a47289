"""rfnet-bench on an NVIDIA GPU, in one command: TensorRT engines built, parity checked, stages timed.

    python -m rfnet_ros.benchmark.gpu                    # lite and full, TensorRT and torch CUDA, fp16 and fp32
    python -m rfnet_ros.benchmark.gpu --configs lite=config/lite.yaml --engines tensorrt --out runs/gpu.json

For each configuration x engine (``tensorrt``, ``torch``) x precision (``fp16``, ``fp32``): builds the engine
(TensorRT plans are built from the exported ONNX graphs on first use and cached, which takes minutes), checks
its parity with the torch engine in fp32 on the same GPU over the two benchmark frames
(rfnet_ros.engine_parity: the fp32 bounds are those of test/test_engines.py, the fp16 ones those of the bf16
test), then times ``--frames`` frames of a 480x640 photo and a shifted copy, alternately, through
FeaturePipeline.process after ``--warmup`` rounds: median ms per stage (CUDA events), median total and frames
per second (1000 / median total). OpenCV SIFT on the CPU is timed in the same rounds for the ratio.

Exit status: 0 when every engine ran and met its parity bounds, 1 when one did not, 2 when there is no CUDA
device (the message says what is missing) or a configuration cannot be read.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from rfnet_ros.allocator import keep_freed_memory
from rfnet_ros.benchmark.bench import Method, benchmark_frames, opencv_method, pipeline_method
from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.engine_parity import Parity, compare
from rfnet_ros.engines import EngineUnavailable
from rfnet_ros.engines.factory import installed
from rfnet_ros.hardware import device_description
from rfnet_ros.model.weights import WeightsError

DEFAULT_IMAGE = Path("data/images/validation/ocvdoc-boat.png")
DEFAULT_CONFIGS = ("lite=config/lite.yaml", "full=config/full.yaml")
STAGES = ("preprocess", "detect", "describe", "match")
# (keypoints within 0.05 px, smallest descriptor cosine, median cosine, match agreement) per precision.
PARITY_BOUNDS = {"fp32": (0.99, 0.9999, 0.9999, 0.98), "fp16": (0.99, 0.98, 0.999, 0.0)}


def cuda_problem() -> str | None:
    """Why this machine cannot run the GPU benchmark, or None when it can."""
    if not torch.cuda.is_available():
        build = torch.version.cuda
        return ("no CUDA device: torch.cuda.is_available() is False "
                + (f"(this torch is built for CUDA {build}: no NVIDIA GPU or driver is visible)" if build else
                   f"(this torch, {torch.__version__}, is a CPU-only build: install a CUDA build of PyTorch)")
                + "; the GPU benchmark needs an NVIDIA GPU")
    return None


def parity_ok(parity: Parity, precision: str) -> bool:
    matched, cosine_min, cosine_median, agreement = PARITY_BOUNDS[precision]
    return (parity.keypoints_matched >= matched and parity.descriptor_cosine_min >= cosine_min
            and parity.descriptor_cosine_median >= cosine_median and parity.match_agreement >= agreement)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.benchmark.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), metavar="NAME=YAML")
    parser.add_argument("--engines", nargs="+", choices=("tensorrt", "torch"), default=["tensorrt", "torch"])
    parser.add_argument("--precisions", nargs="+", choices=("fp16", "fp32"), default=["fp16", "fp32"])
    parser.add_argument("--top-k", type=int, default=1024, help="keypoints per frame (default 1024)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="grayscale photo to time on")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--frames", type=int, default=50, help="timed frames per method")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    parser.add_argument("--device", default="cuda", help="CUDA device (default cuda)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = cuda_problem()
    if problem:
        print(f"rfnet-bench gpu: error: {problem}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    print(f"device: {device_description(device)}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"{keep_freed_memory()}")
    frames = benchmark_frames(args.image, args.height, args.width)
    methods: list[Method] = []
    checks: list[dict[str, Any]] = []
    failed = False
    for spec in args.configs:
        name, _, path = spec.partition("=")
        try:
            config = load_config(Path(path), ignore=NodeConfig.names())
        except (ValueError, FileNotFoundError, WeightsError) as exc:
            print(f"rfnet-bench gpu: error: {exc}", file=sys.stderr)
            return 2
        for engine in args.engines:
            if engine == "tensorrt" and not installed("tensorrt"):
                print(f"{name} tensorrt: skipped, the tensorrt Python package is not installed", file=sys.stderr)
                failed = True
                continue
            for precision in args.precisions:
                settings = dataclasses.replace(config, device=args.device, engine=engine, precision=precision,
                                               top_k=args.top_k)
                label = f"{name} {engine} {precision}"
                try:
                    parity = compare(settings, frames)  # builds (or loads) the engine first
                    method = pipeline_method(name, Path(path), engine, precision, args.top_k, device=args.device)
                except (EngineUnavailable, RuntimeError) as exc:
                    print(f"{label}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    failed = True
                    continue
                ok = parity_ok(parity, precision)
                failed |= not ok
                print(f"{label} parity with torch fp32 ({'ok' if ok else 'OUT OF BOUNDS'}): "
                      + "; ".join(parity.lines()))
                checks.append({"label": label, "parity": dataclasses.asdict(parity), "parity_ok": ok})
                methods.append(method)
    methods.append(opencv_method("sift", args.top_k))
    for index in range(args.warmup + args.frames):
        for method in methods:
            method.run(frames[index % len(frames)], timed=index >= args.warmup)
    summaries = [m.summary() for m in methods]
    sift = summaries[-1]["total_ms"]["median"]
    print(f"\nms per frame over {args.frames} frames of {args.image.name} at {args.height}x{args.width}, "
          f"top_k {args.top_k} (median per stage and total), after {args.warmup} warm-up rounds")
    header = f"{'method':28s}" + "".join(f"{s:>11s}" for s in STAGES) + f"{'total':>9s}{'fps':>8s}{'vs SIFT':>9s}"
    print(header)
    for s in summaries:
        stages = "".join(f"{s['stages_median_ms'].get(st, float('nan')):11.2f}" for st in STAGES)
        total = s["total_ms"]["median"]
        print(f"{s['label']:28s}{stages}{total:9.2f}{1e3 / total:8.1f}{total / sift:9.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": device_description(device), "torch": torch.__version__,
                                        "parity": checks, "results": summaries,
                                        "settings": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
