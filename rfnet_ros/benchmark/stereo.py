"""rfnet-bench for stereo: the stereo front end against two mono front ends, per stage, in one process.

    python -m rfnet_ros.benchmark.stereo --config config/stereo.yaml --top-k 512 --frames 20 --threads 2

The pair: a photo at the input size and the same photo shifted ``--disparity`` px (the right view of a wall
at that disparity), and a second pair moved by (5, 3) px, alternately, so each pair is matched against a
different previous one. Timed, taking turns pair by pair (so a machine that slows down affects both alike;
the first ``--warmup`` rounds are not timed):

- stereo: :class:`rfnet_ros.tracking.stereo.StereoFrontEnd` on the pair (both images through the networks
  together, left tracks, left-right matching; ``match`` holds both matchings, ``stereo match`` the second);
- 2x mono: two :class:`rfnet_ros.tracking.tracker.FeatureTracker` (what two feature nodes run), one per image,
  their stage times added.

Printed: median ms per stage and min / median / max total per pair, and stereo / 2x mono of the medians.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from rfnet_ros.config import NodeConfig, StereoConfig, load_config
from rfnet_ros.engines import EngineUnavailable
from rfnet_ros.evaluation.pairs import cover_crop, read_gray
from rfnet_ros.hardware import device_description
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.pipeline import STAGES
from rfnet_ros.threads import apply_thread_options
from rfnet_ros.tracking.stereo import StereoFrontEnd
from rfnet_ros.tracking.tracker import FeatureTracker

DEFAULT_IMAGE = Path("data/images/heldout/building.png")
DEFAULT_CONFIG = Path("config/stereo.yaml")
COLUMNS = (*STAGES, "stereo match")


def stereo_pairs(image_path: Path, height: int, width: int, disparity: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two (left, right) grey pairs: the photo cropped to ``height x width`` and its view ``disparity`` px to the
    right, then both moved by (5, 3) px."""
    resized, to_crop = cover_crop(read_gray(image_path), (height + 3, width + disparity + 5))
    x0, y0 = int(-to_crop[0, 2]), int(-to_crop[1, 2])
    pairs = []
    for dx, dy in ((0, 0), (5, 3)):
        rows = slice(y0 + dy, y0 + dy + height)
        pairs.append((np.ascontiguousarray(resized[rows, x0 + dx:x0 + dx + width]),
                      np.ascontiguousarray(resized[rows, x0 + dx + disparity:x0 + dx + disparity + width])))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfnet-bench-stereo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="parameters file of both front ends")
    parser.add_argument("--engine", default=None, help="engine (default: the file's)")
    parser.add_argument("--top-k", type=int, default=None, help="keypoints per image (default: the file's)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="photo to time on")
    parser.add_argument("--height", type=int, default=480, help="image height (px)")
    parser.add_argument("--width", type=int, default=640, help="image width (px)")
    parser.add_argument("--disparity", type=int, default=16, help="disparity of the right view (px)")
    parser.add_argument("--frames", type=int, default=20, help="timed pairs per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the engines and OpenCV (default: their own choice)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="CPU threads of PyTorch's own operations between the engines (default 1, as the nodes "
                             "run them: rfnet_ros.threads; 0: as many as --threads)")
    args = parser.parse_args(argv)
    apply_thread_options(args.threads, args.torch_threads)
    try:
        overrides = {key: value for key, value in (("engine", args.engine), ("top_k", args.top_k)) if value}
        config = load_config(args.config, ignore=NodeConfig.names() + StereoConfig.names(), **overrides)
        stereo = StereoFrontEnd(config, StereoConfig())
        monos = [FeatureTracker(config), FeatureTracker(config)]
        pairs = stereo_pairs(args.image, args.height, args.width, args.disparity)
    except (ValueError, WeightsError, FileNotFoundError, EngineUnavailable) as exc:
        print(f"rfnet-bench-stereo: error: {exc}", file=sys.stderr)
        return 2
    stage_ms: dict[str, dict[str, list[float]]] = {"stereo": {}, "2x mono": {}}
    totals: dict[str, list[float]] = {"stereo": [], "2x mono": []}
    counts: dict[str, list[tuple[int, int]]] = {"stereo": [], "2x mono": []}
    stamp = 0
    for index in range(args.warmup + args.frames):
        left, right = pairs[index % len(pairs)]
        stamp += 100_000_000
        timed = index >= args.warmup
        start = time.perf_counter()
        frame = stereo.process(left, right, "bgr", stamp)
        total = (time.perf_counter() - start) * 1e3
        if timed:
            record(stage_ms["stereo"], {**frame.timings, "stereo match": frame.stereo_match_ms})
            totals["stereo"].append(total)
            counts["stereo"].append((len(frame.left.features) + len(frame.right), len(frame.stereo_matches)))
        start = time.perf_counter()
        tracked = [tracker.process(image, "bgr", stamp) for tracker, image in zip(monos, (left, right))]
        total = (time.perf_counter() - start) * 1e3
        if timed:
            summed: dict[str, float] = {}
            for result in tracked:
                for stage, ms in result.timings.items():
                    summed[stage] = summed.get(stage, 0.0) + ms
            record(stage_ms["2x mono"], summed)
            totals["2x mono"].append(total)
            counts["2x mono"].append((sum(len(result.features) for result in tracked), 0))
    print(f"ms per stereo pair over {args.frames} pairs of {args.image.name} at {args.height}x{args.width} "
          f"(median per stage; min / median / max total), after {args.warmup} warm-up rounds, methods taking turns")
    print(f"device: {device_description(stereo.device)}; engine {stereo.engine_name} ({stereo.precision}), "
          f"top_k {config.top_k} per image; torch {torch.__version__}, OpenCV {cv2.__version__}")
    header = ["method", *COLUMNS, "total min", "median", "max", "kpts", "stereo matches"]
    rows = []
    for method in ("stereo", "2x mono"):
        total = np.array(totals[method])
        keypoints, matches = np.mean(counts[method], axis=0)
        rows.append([method, *(f"{np.median(stage_ms[method][c]):.1f}" if c in stage_ms[method] else ""
                               for c in COLUMNS),
                     *(f"{v:.1f}" for v in (total.min(), np.median(total), total.max())),
                     f"{keypoints:.0f}", f"{matches:.0f}" if method == "stereo" else ""])
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    for cells in (header, ["-" * w for w in widths], *rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    ratio = np.median(totals["stereo"]) / np.median(totals["2x mono"])
    print(f"stereo / 2x mono (median totals): {ratio:.2f}")
    return 0


def record(into: dict[str, list[float]], stages: dict[str, float]) -> None:
    for stage, ms in stages.items():
        into.setdefault(stage, []).append(ms)


if __name__ == "__main__":
    sys.exit(main())
