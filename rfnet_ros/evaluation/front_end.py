"""rfnet-eval's front-end sequences: what the node publishes (the front end, after its geometric check) on
VO-style sequences, per front-end setting.

Runs :class:`~rfnet_ros.tracking.tracker.FeatureTracker` (the node's front end) over the sequences of
:mod:`rfnet_ros.evaluation.sequences` (``smooth`` or ``fast_roll`` camera paths over the photos of a split)
and scores its published matches against the true frame-to-frame homography: the share within 3 px
(precision), correct and wrong matches per frame pair, the published tracks' mean length, and the match
stage's ms per frame. With ``match_prediction: imu`` a gyro is simulated from the true motion: the roll
about the optical axis between two frames, at 100 Hz (the sideways drift is left for the search radius).

    python -m rfnet_ros.evaluation.front_end --motion fast_roll \\
        --variant off: --variant imu:match_prediction=imu --variant cv:match_prediction=constant_velocity

Parallax sequences (``--scene parallax``, :mod:`rfnet_ros.evaluation.parallax`): a near panel over a far
wall, two photos of the split per sequence, per-pixel truth. A published match is correct when its keypoint in
the current frame lies within 3 px of where the previous keypoint's point went (under the motion of the plane
it is on; either plane's within ``BOUNDARY_PX`` of the panel's outline); "occluded" counts the wrong matches
whose previous point is hidden by the panel (or out of view) in the current frame. ``--methods`` compares
configuration files (``NAME=CONFIG.yaml``, the front end as the node runs the file, ``top_k`` set to
``--max-keypoints``) with OpenCV's SIFT and ORB (mutual nearest neighbours, then the same geometric check,
with the settings of ``--config`` or the defaults); ``--per-photo`` adds a row per sequence:

    python -m rfnet_ros.evaluation.front_end --scene parallax --per-photo \
        --methods lite=config/lite.yaml lite_native=config/lite_native.yaml full=config/full.yaml sift orb

Settings are chosen on the validation split (the default); the held-out split is not offered here.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from rfnet_ros.config import FeatureConfig, NodeConfig, load_config
from rfnet_ros.evaluation import parallax
from rfnet_ros.evaluation.extractors import OPENCV_METHODS, OpenCVExtractor, parse_config_spec
from rfnet_ros.evaluation.metrics import warp_points
from rfnet_ros.evaluation.report import format_rows
from rfnet_ros.evaluation.sequences import FRAMES, MOTIONS, TRACK_THRESHOLD, Sequence, sequences
from rfnet_ros.tracking.camera import CameraModel
from rfnet_ros.tracking.geometry import check_matches
from rfnet_ros.tracking.tracker import FeatureTracker
from rfnet_ros.tracking.tracks import TrackBook

FRAME_PERIOD_NS = 100_000_000  # 10 Hz frames
GYRO_SAMPLES_PER_FRAME = 10  # 100 Hz gyro


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE,KEY=VALUE`` (values read as YAML) -> (NAME, overrides)."""
    name, _, settings = text.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:KEY=VALUE,...")
        overrides[key.strip()] = yaml.safe_load(value)
    return name, overrides


def centred_camera(sequence: Sequence) -> CameraModel:
    """A pinhole camera whose principal point is the frame centre (the sequences roll about it)."""
    h, w = sequence.frames[0].shape[:2]
    focal = float(max(h, w))
    return CameraModel(np.array([[focal, 0, (w - 1) / 2.0], [0, focal, (h - 1) / 2.0], [0, 0, 1]]), np.zeros(5),
                       "plumb_bob", w, h)


def feed_gyro(tracker: FeatureTracker, sequence: Sequence) -> None:
    """Angular rates about the optical axis that turn each frame into the next (the true step's roll)."""
    for t in range(1, len(sequence.frames)):
        step = sequence.step(t)
        rate = -np.arctan2(step[1, 0], step[0, 0]) / (FRAME_PERIOD_NS * 1e-9)  # rad/s about the camera's z
        for k in range(GYRO_SAMPLES_PER_FRAME + (t == len(sequence.frames) - 1)):
            stamp = (t - 1) * FRAME_PERIOD_NS + k * FRAME_PERIOD_NS // GYRO_SAMPLES_PER_FRAME
            tracker.add_angular_velocity(stamp, np.array([0.0, 0.0, rate]))


class OpenCVFrontEnd:
    """An OpenCV method (sift, orb) as a front end: cross-checked brute-force matches to the previous frame, the
    same geometric check as :class:`FeatureTracker` (``config``'s settings) and track ids; ``process`` returns
    an object with ``features.keypoints``, the published ``matches`` and ``timings`` as the tracker's does."""

    def __init__(self, name: str, config: FeatureConfig, max_keypoints: int):
        self.extractor = OpenCVExtractor(name, max_keypoints)
        self.config = config
        self.tracks = TrackBook()
        self._previous = None

    def process(self, image: np.ndarray, *_) -> argparse.Namespace:
        start = time.perf_counter()
        features = self.extractor.extract(image)
        matches = np.zeros((0, 2), np.int64)
        if self._previous is not None:
            matches = self.extractor.match(self._previous.descriptors, features.descriptors)
            cfg = self.config
            check = check_matches(self._previous.keypoints[matches[:, 0]], features.keypoints[matches[:, 1]],
                                  cfg.geometric_check, cfg.geometric_threshold, cfg.geometric_confidence,
                                  cfg.geometric_min_matches)
            matches = matches[check.inliers]
        self.tracks.update(len(features), matches)
        self._previous = features
        return argparse.Namespace(features=features, matches=matches,
                                  timings={"match": (time.perf_counter() - start) * 1e3})

    def reset(self) -> None:
        self.tracks.reset()
        self._previous = None

    def statistics(self) -> argparse.Namespace:
        return argparse.Namespace(tracks=self.tracks.statistics(), prediction_fallbacks=0)


def score_pair(sequence, t: int, keypoints0: np.ndarray, keypoints1: np.ndarray, matches: np.ndarray
               ) -> tuple[int, int, int]:
    """Correct and wrong published matches (M, 2) from frame t - 1 to frame t of ``sequence``, and the wrong ones
    whose previous point is hidden (or out of view) in frame t (parallax sequences only; 0 otherwise)."""
    points0, points1 = keypoints0[matches[:, 0]], keypoints1[matches[:, 1]]
    if isinstance(sequence, parallax.ParallaxSequence):
        truth = sequence.truth(points0, t)
        near = np.nan_to_num(np.linalg.norm(truth["expected"] - points1, axis=1), nan=np.inf) <= TRACK_THRESHOLD
        near_other = np.nan_to_num(np.linalg.norm(truth["other"] - points1, axis=1), nan=np.inf) <= TRACK_THRESHOLD
        good = (near & truth["visible"]) | (truth["boundary"] & (near | near_other))
        hidden = ~good & ~truth["visible"]
        return int(good.sum()), int((~good).sum()), int(hidden.sum())
    error = np.linalg.norm(warp_points(sequence.step(t), points0) - points1, axis=1)
    good = int(np.count_nonzero(np.nan_to_num(error, nan=np.inf) <= TRACK_THRESHOLD))
    return good, len(error) - good, 0


def score_published(tracker, sequence: Sequence, camera) -> tuple[list[tuple[int, int, int]], list[float]]:
    """``tracker`` (a FeatureTracker or an :class:`OpenCVFrontEnd`, with ``camera`` or None) over the frames of
    ``sequence``: ``score_pair`` of what it published for each frame pair, and its match ms per frame."""
    scores, match_ms = [], []
    previous = None
    for t, frame in enumerate(sequence.frames):
        result = tracker.process(frame, "bgr", t * FRAME_PERIOD_NS, camera)
        match_ms.append(result.timings.get("match", 0.0))
        if previous is not None:
            scores.append(score_pair(sequence, t, previous.features.keypoints, result.features.keypoints,
                                     result.matches) if len(result.matches) else (0, 0, 0))
        previous = result
    return scores, match_ms


def run_sequence(config, sequence: Sequence, front_end=None) -> dict[str, float]:
    """The front end with ``config`` (or ``front_end``, e.g. an :class:`OpenCVFrontEnd`) over ``sequence``:
    precision, correct and wrong per frame pair (and wrong onto hidden points), mean published track length,
    match ms per frame. A given front end is reset first, with a new track book."""
    tracker = front_end or FeatureTracker(config)
    tracker.reset()
    tracker.tracks = TrackBook()
    fallbacks = tracker.statistics().prediction_fallbacks
    camera = centred_camera(sequence)
    if front_end is None and config.match_prediction == "imu":
        feed_gyro(tracker, sequence)
    scores, match_ms = score_published(tracker, sequence, camera)
    correct, wrong, hidden = (sum(score[i] for score in scores) for i in range(3))
    tracker.reset()  # ends every track at the length it reached
    statistics = tracker.statistics()
    pairs = len(sequence.frames) - 1
    return {"precision": correct / max(correct + wrong, 1), "correct": correct / pairs, "wrong": wrong / pairs,
            "hidden": hidden / pairs, "track": statistics.tracks.mean_length, "match_ms": float(np.median(match_ms)),
            "fallbacks": statistics.prediction_fallbacks - fallbacks}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.evaluation.front_end", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (scripts/fetch_data.sh)")
    parser.add_argument("--split", choices=("validation", "train"), default="validation")
    parser.add_argument("--config", type=Path, default=None, help="base settings (default: the defaults)")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        help="NAME:KEY=VALUE,... front-end settings over the base (repeatable)")
    parser.add_argument("--methods", nargs="+", default=[],
                        help="NAME=CONFIG.yaml (top_k set to --max-keypoints), sift, orb")
    parser.add_argument("--max-keypoints", type=int, default=1024, help="keypoint budget of --methods")
    parser.add_argument("--scene", choices=("plane", "parallax"), default="plane",
                        help="plane: the photo sequences (--motion); parallax: a panel over a wall")
    parser.add_argument("--motion", choices=MOTIONS, default="smooth")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames per sequence (default {FRAMES}; parallax {parallax.FRAMES})")
    parser.add_argument("--max-photos", type=int, default=None)
    parser.add_argument("--per-photo", action="store_true", help="also a row per sequence")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def front_ends(args: argparse.Namespace) -> list[tuple[str, FeatureConfig, object]]:
    """(name, settings, front end or None for a FeatureTracker of the settings) of --variant and --methods."""
    out = []
    for name, overrides in args.variant:
        out.append((name, load_config(args.config, ignore=NodeConfig.names(), **{"device": "cpu", **overrides}),
                    None))
    base = load_config(args.config, ignore=NodeConfig.names(), device="cpu")
    for method in args.methods:
        spec = parse_config_spec(method)
        if spec is not None:
            config = load_config(spec[1], ignore=NodeConfig.names(), device="cpu")
            out.append((spec[0], dataclasses.replace(config, top_k=args.max_keypoints), None))
        elif method in OPENCV_METHODS:
            out.append((method, base, method))
        else:
            raise SystemExit(f"--methods: expected NAME=CONFIG.yaml, sift or orb, got {method!r}")
    if not out:
        raise SystemExit("give --variant or --methods")
    return out


def row(name: str, rows: list[dict], seconds: float) -> list[str]:
    correct, wrong = sum(r["correct"] for r in rows), sum(r["wrong"] for r in rows)
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("correct", "wrong", "hidden", "track")}
    return [name, f"{correct / max(correct + wrong, 1e-9):.3f}", f"{mean['correct']:.1f}", f"{mean['wrong']:.1f}",
            f"{mean['hidden']:.1f}", f"{mean['track']:.2f}", f"{np.median([r['match_ms'] for r in rows]):.1f}",
            str(sum(r["fallbacks"] for r in rows)), f"{seconds:.0f}"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    methods = front_ends(args)
    folder = args.data / "images" / args.split
    if args.scene == "parallax":
        all_sequences = parallax.parallax_sequences(folder, args.seed, args.frames or parallax.FRAMES,
                                                    max_photos=args.max_photos)
        what = "parallax"
    else:
        all_sequences = sequences(folder, args.seed, args.frames or FRAMES, max_photos=args.max_photos,
                                  motion=args.motion)
        what = args.motion
    header = ["method", "precision@3", "correct/pair", "wrong/pair", "wrong hidden/pair", "mean track", "match ms",
              "fallbacks", "s"]
    body, photos = [], []
    for name, config, opencv in methods:
        start = time.perf_counter()
        # One front end per method (the engine is built once), except with a gyro, whose samples restart at 0.
        shared = OpenCVFrontEnd(opencv, config, args.max_keypoints) if opencv else \
            None if config.match_prediction == "imu" else FeatureTracker(config)
        rows = [run_sequence(config, sequence, shared) for sequence in all_sequences]
        body.append(row(name, rows, time.perf_counter() - start))
        photos += [row(f"{name} {sequence.name}", [r], 0.0)[:-1] for sequence, r in zip(all_sequences, rows)]
        print(format_rows(header, body[-1:], markdown=False).splitlines()[-1], flush=True)
    frames = len(all_sequences[0].frames)
    print(f"\n{len(all_sequences)} {what} sequences of {frames} frames ({args.split} split), "
          f"{all_sequences[0].frames[0].shape[1]}x{all_sequences[0].frames[0].shape[0]}:")
    print(format_rows(header, body, markdown=True))
    if args.per_photo:
        print("\nper sequence:")
        print(format_rows(header[:-1], sorted(photos, key=lambda r: r[0].split(" ")[1]), markdown=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
