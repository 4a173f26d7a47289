"""rfnet-bench: per-stage and end-to-end speed of the pipeline per engine and precision, against OpenCV SIFT/ORB.

Every method runs in this one process on the same frames: a real photo at the input size (480x640 by
default) and a copy shifted by a few pixels, alternately, so each frame is matched against a different
previous frame. Methods take turns frame by frame (round robin), so a machine that slows down or speeds up
during the run affects all of them alike; the first ``--warmup`` rounds are not timed.

- Ours: each configuration file (default: config/lite.yaml and config/full.yaml) x engine x precision x top-k,
  timed per stage (preprocess, detect, describe, match; convert is the numpy-to-tensor step) from
  FeaturePipeline.process, and end to end around it.
- SIFT and ORB (OpenCV): detectAndCompute with nfeatures = top-k, then a cross-checked brute-force match to
  the previous frame (L2 for SIFT, Hamming for ORB), as rfnet-eval matches them.

Printed: min / median / max ms per frame, the median CPU time of the process per frame (all its threads;
steadier than wall-clock time on a machine that other work keeps busy, though not what a frame waits), and
the ratios ours/SIFT (same top-k) and lite/full (same engine, precision and top-k) of the median totals, and
ours/SIFT of the CPU times. Speed targets belong here, never in unit tests.

The C allocator keeps freed memory for reuse (``rfnet_ros.allocator``; ``--allocator-as-is`` leaves it): with
glibc's own thresholds, whether a method's large blocks are faulted in afresh every frame depends on what
the process ran before it, and OpenCV's SIFT took half as long again for that alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from rfnet_ros.allocator import keep_freed_memory
from rfnet_ros.config import ENGINES, NodeConfig, load_config
from rfnet_ros.engines import EngineUnavailable, resolve_device
from rfnet_ros.engines.factory import PRECISIONS, installed
from rfnet_ros.evaluation.pairs import cover_crop, read_gray
from rfnet_ros.hardware import device_description, native_bf16
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.pipeline import STAGES, FeaturePipeline
from rfnet_ros.threads import apply_thread_options, engine_threads

DEFAULT_IMAGE = Path("data/images/heldout/building.png")
DEFAULT_CONFIGS = ("lite=config/lite.yaml", "full=config/full.yaml")
OPENCV_STAGES = ("extract", "match")


def benchmark_frames(image_path: Path, height: int, width: int) -> list[np.ndarray]:
    """The photo cropped to ``height x width`` and a copy shifted by (5, 3) px."""
    resized, to_crop = cover_crop(read_gray(image_path), (height, width))
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    frame = np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
    return [frame, np.ascontiguousarray(np.roll(frame, (3, 5), axis=(0, 1)))]


@dataclass
class Method:
    """One timed method: its label, settings for the table and the per-frame measurements."""

    label: str
    settings: dict[str, Any]
    step: Any  # frame -> (stage ms dict, keypoints, matches)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    totals: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    keypoints: list[int] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)

    def run(self, frame: np.ndarray, timed: bool) -> None:
        start, cpu_start = time.perf_counter(), time.process_time()
        stages, keypoints, matches = self.step(frame)
        total = (time.perf_counter() - start) * 1e3
        if timed:
            self.totals.append(total)
            self.cpu.append((time.process_time() - cpu_start) * 1e3)
            for stage, ms in stages.items():
                self.stage_ms.setdefault(stage, []).append(ms)
            self.keypoints.append(keypoints)
            self.matches.append(matches)

    def summary(self) -> dict[str, Any]:
        total = np.array(self.totals)
        return {"label": self.label, **self.settings,
                "stages_median_ms": {s: float(np.median(v)) for s, v in self.stage_ms.items()},
                "total_ms": {"min": float(total.min()), "median": float(np.median(total)), "max": float(total.max())},
                "cpu_ms": float(np.median(self.cpu)),
                "keypoints": float(np.mean(self.keypoints)), "matches": float(np.mean(self.matches)),
                "frames": len(self.totals)}


def pipeline_method(name: str, config_path: Path, engine: str, precision: str, top_k: int,
                    device: str | None = None) -> Method:
    """The configuration file's pipeline with that engine, precision and top-k (and device, when given)."""
    config = load_config(config_path, ignore=NodeConfig.names())
    config = dataclasses.replace(config, engine=engine, precision=precision, top_k=top_k,
                                 **({"device": device} if device else {}))
    pipeline = FeaturePipeline(config)

    def step(frame: np.ndarray):
        result = pipeline.process(frame)
        return result.timings, len(result.features), len(result.matches)

    detector_precision = pipeline.engine.detector_precision
    detector_label = "" if detector_precision == "fp32" else f" (detector {detector_precision})"
    return Method(f"{name} {pipeline.engine.name} {pipeline.precision}{detector_label} k={top_k}",
                  {"kind": "rfnet", "config": name, "config_file": str(config_path), "engine": pipeline.engine.name,
                   "precision": pipeline.precision, "detector_precision": detector_precision, "top_k": top_k,
                   "device": str(pipeline.device),
                   "model_size": list(config.model_size), "replaced_layers": config.replaced_layers,
                   "keypoint_frames": config.keypoint_frames}, step)


def opencv_method(name: str, top_k: int) -> Method:
    detector = cv2.SIFT_create(nfeatures=top_k) if name == "sift" else cv2.ORB_create(nfeatures=top_k)
    matcher = cv2.BFMatcher(cv2.NORM_L2 if name == "sift" else cv2.NORM_HAMMING, crossCheck=True)
    previous: list[np.ndarray | None] = [None]

    def step(frame: np.ndarray):
        start = time.perf_counter()
        keypoints, descriptors = detector.detectAndCompute(frame, None)
        extracted = time.perf_counter()
        matches = []
        if previous[0] is not None and descriptors is not None and len(previous[0]) and len(descriptors):
            matches = matcher.match(previous[0], descriptors)
        previous[0] = descriptors
        end = time.perf_counter()
        return ({"extract": (extracted - start) * 1e3, "match": (end - extracted) * 1e3}, len(keypoints),
                len(matches))

    return Method(f"{name} k={top_k}", {"kind": "opencv", "config": name, "engine": "opencv", "precision": "fp32",
                                        "top_k": top_k}, step)


def default_precisions(engine: str, device: torch.device) -> list[str]:
    """fp32, plus bf16 where the engine offers it and the CPU computes it natively, plus fp16 on CUDA."""
    offered = PRECISIONS[engine].get(device.type, ())
    chosen = [p for p in offered if p == "fp32" or p == "fp16" or (p == "bf16" and native_bf16())]
    return sorted(set(chosen), key=offered.index)


def ratios(summaries: list[dict[str, Any]]) -> None:
    """Add ``vs_sift`` (median total / SIFT's at the same top-k), ``cpu_vs_sift`` (the same of the CPU time) and
    ``lite_vs_full`` in place."""
    sift = {s["top_k"]: s["total_ms"]["median"] for s in summaries if s["config"] == "sift"}
    sift_cpu = {s["top_k"]: s["cpu_ms"] for s in summaries if s["config"] == "sift"}
    full = {(s["engine"], s["precision"], s["top_k"]): s["total_ms"]["median"]
            for s in summaries if s["config"] == "full"}
    for s in summaries:
        median = s["total_ms"]["median"]
        s["vs_sift"] = median / sift[s["top_k"]] if s["top_k"] in sift else None
        s["cpu_vs_sift"] = s["cpu_ms"] / sift_cpu[s["top_k"]] if s["top_k"] in sift_cpu else None
        key = (s["engine"], s["precision"], s["top_k"])
        s["lite_vs_full"] = median / full[key] if s["config"] == "lite" and key in full else None


def format_table(summaries: list[dict[str, Any]]) -> str:
    stages = [*STAGES[1:-1], *OPENCV_STAGES]  # preprocess, detect, describe, extract (OpenCV), match
    header = ["method", *stages, "total min", "median", "max", "CPU ms", "kpts", "matches", "vs SIFT", "CPU vs SIFT",
              "lite/full"]
    body = []
    for s in summaries:
        cells = [s["label"]]
        cells += [f"{s['stages_median_ms'][st]:.1f}" if st in s["stages_median_ms"] else "" for st in stages]
        cells += [f"{s['total_ms'][k]:.1f}" for k in ("min", "median", "max")] + [f"{s['cpu_ms']:.1f}"]
        cells += [f"{s['keypoints']:.0f}", f"{s['matches']:.0f}",
                  f"{s['vs_sift']:.2f}" if s.get("vs_sift") is not None else "",
                  f"{s['cpu_vs_sift']:.2f}" if s.get("cpu_vs_sift") is not None else "",
                  f"{s['lite_vs_full']:.2f}" if s.get("lite_vs_full") is not None else ""]
        body.append(cells)
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
             for cells in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), metavar="NAME=YAML",
                        help="configurations to time (names lite and full give the lite/full ratio)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES[1:], default=None,
                        help="engines (default: every one installed that runs on the device)")
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="descriptor precisions (default: fp32, plus bf16 on CPUs with native bf16, fp16 on CUDA)")
    parser.add_argument("--top-k", type=int, nargs="+", default=[512, 1024], help="keypoints per frame")
    parser.add_argument("--baselines", nargs="*", default=["sift", "orb"], choices=["sift", "orb"])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="grayscale photo to time on")
    parser.add_argument("--height", type=int, default=480, help="frame height (px)")
    parser.add_argument("--width", type=int, default=640, help="frame width (px)")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--device", default="auto", help="device of our methods: auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the engines and OpenCV (default: their own choice)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="CPU threads of PyTorch's own operations between the engines (default 1, as the node "
                             "runs them: rfnet_ros.threads; 0: as many as --threads)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--allocator-as-is", action="store_true",
                        help="leave the C allocator's thresholds as they are (default: freed memory is kept for "
                        "reuse, rfnet_ros.allocator, so that no method's time depends on page faults that what "
                        "ran before in the process decides)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    allocator = "C allocator as it is (--allocator-as-is)" if args.allocator_as_is else keep_freed_memory()
    apply_thread_options(args.threads, args.torch_threads)
    try:
        device = resolve_device(args.device)
        engines = args.engines or [e for e in ENGINES[1:] if installed(e) and device.type in PRECISIONS[e]]
        frames = benchmark_frames(args.image, args.height, args.width)
        methods: list[Method] = []
        for spec in args.configs:
            name, sep, path = spec.partition("=")
            if not (sep and name and path):
                raise ValueError(f"--configs: expected NAME=YAML, got {spec!r}")
            for engine in engines:
                for precision in args.precisions or default_precisions(engine, device):
                    if precision not in PRECISIONS[engine].get(device.type, ()):
                        continue
                    for top_k in args.top_k:
                        methods.append(pipeline_method(name, Path(path), engine, precision, top_k, str(device)))
        methods += [opencv_method(name, k) for name in args.baselines for k in args.top_k]
    except (ValueError, WeightsError, FileNotFoundError, EngineUnavailable) as exc:
        print(f"rfnet-bench: error: {exc}", file=sys.stderr)
        return 2
    for index in range(args.warmup + args.frames):
        for method in methods:
            method.run(frames[index % len(frames)], timed=index >= args.warmup)
    summaries = [m.summary() for m in methods]
    ratios(summaries)
    print(f"ms per frame over {args.frames} frames of {args.image.name} at {args.height}x{args.width} "
          f"(median per stage; min / median / max total), after {args.warmup} warm-up rounds")
    print(f"device: {device_description(device)}; engine threads {engine_threads()}; torch {torch.__version__}, "
          f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads); {allocator}")
    print(format_table(summaries))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.out.write_text(json.dumps({"settings": settings, "device": device_description(device),
                                        "torch": torch.__version__, "opencv": cv2.__version__,
                                        "allocator": allocator,
                                        "results": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
