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

Settings are chosen on the validation split (the default); the held-out split is not offered here.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.evaluation.metrics import warp_points
from rfnet_ros.evaluation.report import format_rows
from rfnet_ros.evaluation.sequences import FRAMES, MOTIONS, TRACK_THRESHOLD, Sequence, sequences
from rfnet_ros.tracking.camera import CameraModel
from rfnet_ros.tracking.tracker import FeatureTracker

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


def run_sequence(config, sequence: Sequence) -> dict[str, float]:
    """The front end with ``config`` over ``sequence``: precision, correct and wrong per frame pair, mean
    published track length, match ms per frame."""
    tracker = FeatureTracker(config)
    camera = centred_camera(sequence)
    if config.match_prediction == "imu":
        feed_gyro(tracker, sequence)
    correct = wrong = 0
    match_ms = []
    previous = None
    for t, frame in enumerate(sequence.frames):
        result = tracker.process(frame, "bgr", t * FRAME_PERIOD_NS, camera)
        match_ms.append(result.timings.get("match", 0.0))
        if previous is not None and len(result.matches):
            expected = warp_points(sequence.step(t), previous.features.keypoints[result.matches[:, 0]])
            error = np.linalg.norm(expected - result.features.keypoints[result.matches[:, 1]], axis=1)
            good = int(np.count_nonzero(np.nan_to_num(error, nan=np.inf) <= TRACK_THRESHOLD))
            correct, wrong = correct + good, wrong + len(error) - good
        previous = result
    tracker.reset()  # ends every track at the length it reached
    statistics = tracker.statistics()
    pairs = len(sequence.frames) - 1
    return {"precision": correct / max(correct + wrong, 1), "correct": correct / pairs, "wrong": wrong / pairs,
            "track": statistics.tracks.mean_length, "match_ms": float(np.median(match_ms)),
            "fallbacks": statistics.prediction_fallbacks}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.evaluation.front_end", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (scripts/fetch_data.sh)")
    parser.add_argument("--split", choices=("validation", "train"), default="validation")
    parser.add_argument("--config", type=Path, default=None, help="base settings (default: the defaults)")
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        help="NAME:KEY=VALUE,... front-end settings over the base (repeatable)")
    parser.add_argument("--motion", choices=MOTIONS, default="smooth")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--max-photos", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    all_sequences = sequences(args.data / "images" / args.split, args.seed, args.frames,
                              max_photos=args.max_photos, motion=args.motion)
    header = ["variant", "precision@3", "correct/pair", "wrong/pair", "mean track", "match ms", "fallbacks", "s"]
    body = []
    for name, overrides in args.variant:
        config = load_config(args.config, ignore=NodeConfig.names(), **{"device": "cpu", **overrides})
        start = time.perf_counter()
        rows = [run_sequence(config, sequence) for sequence in all_sequences]
        correct, wrong = sum(r["correct"] for r in rows), sum(r["wrong"] for r in rows)
        mean = {key: float(np.mean([r[key] for r in rows])) for key in ("correct", "wrong", "track")}
        body.append([name, f"{correct / max(correct + wrong, 1e-9):.3f}", f"{mean['correct']:.1f}",
                     f"{mean['wrong']:.1f}", f"{mean['track']:.2f}", f"{np.median([r['match_ms'] for r in rows]):.1f}",
                     str(sum(r["fallbacks"] for r in rows)), f"{time.perf_counter() - start:.0f}"])
        print(format_rows(header, body[-1:], markdown=False).splitlines()[-1], flush=True)
    print(f"\n{len(all_sequences)} {args.motion} sequences of {args.frames} frames ({args.split} split), "
          f"{all_sequences[0].frames[0].shape[1]}x{all_sequences[0].frames[0].shape[0]}:")
    print(format_rows(header, body, markdown=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
