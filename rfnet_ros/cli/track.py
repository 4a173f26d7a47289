"""rfnet-track: feature tracks over a video, an image folder or a bag, with statistics and a picture.

    python -m rfnet_ros.cli.track data/video/vtest.avi --frames 100 --picture docs/tracked_keypoints.png

Runs the front end the node runs (rfnet_ros.tracking.tracker.FeatureTracker: pipeline, geometric check,
track ids) on every frame, without ROS, and prints:

- keypoints and matches per frame, and the inlier ratio of the geometric check (mean over frames);
- the mean track length in frames (tracks still alive at the last frame count with the length they reached:
  the sequence cuts them) and the share of tracks alive after 10 frames (of the tracks whose fate at 10
  frames is known by the last frame);
- the mean time per frame.

--picture writes the last frame (or --picture-frame N) with its keypoints coloured by track length (blue:
new, red: 10 frames or more) and each track's path over its last 10 frames.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.frame_sources import SourceError, frames
from rfnet_ros.model.weights import WeightsError
from rfnet_ros.sizes import parse_size
from rfnet_ros.tracking.camera import CameraModel, read_calibration
from rfnet_ros.tracking.drawing import TrackTrails, draw_tracks
from rfnet_ros.tracking.tracker import FeatureTracker
from rfnet_ros.tracking.tracks import ALIVE_AFTER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-track", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="video file, image folder or rosbag2 bag")
    parser.add_argument("--config", type=Path, help="parameters file (config/lite.yaml format; default lite's)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting, repeatable, e.g. --set top_k=256 --set geometric_check=off")
    parser.add_argument("--frames", type=int, help="stop after this many frames (default: all)")
    parser.add_argument("--resize", type=parse_size, metavar="WxH", help="resize frames, e.g. 640x480")
    parser.add_argument("--rate", type=float, default=10.0, help="frame rate for the velocities (default 10)")
    parser.add_argument("--camera-info", type=Path, help="calibration YAML: check on undistorted pixels")
    parser.add_argument("--bag-topic", help="image topic of a bag with several")
    parser.add_argument("--picture", type=Path, help="write a PNG of the tracks on the last frame")
    parser.add_argument("--picture-frame", type=int, help="frame index (from 0) to draw instead of the last")
    parser.add_argument("--picture-width", type=int, help="scale the picture to this width in px")
    return parser


def parse_overrides(items: list[str]) -> dict:
    import yaml

    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE")
        overrides[name.strip()] = yaml.safe_load(value)
    return overrides


def run(options: argparse.Namespace) -> int:
    config = load_config(options.config, ignore=NodeConfig.names(), **parse_overrides(options.set))
    camera = None
    if options.camera_info:
        fields = read_calibration(options.camera_info)
        camera = CameraModel.from_camera_info(argparse.Namespace(
            **fields, binning_x=0, binning_y=0, roi=argparse.Namespace(width=0, height=0)))
    tracker = FeatureTracker(config)
    trails = TrackTrails()
    picture = None
    keypoints, matches, seconds = [], [], []
    for index, (image, _) in enumerate(frames(options.source, resize=options.resize, bag_topic=options.bag_topic)):
        if options.frames is not None and index >= options.frames:
            break
        if camera is not None and camera.size_mismatch(image.shape[1], image.shape[0]):
            raise ValueError(camera.size_mismatch(image.shape[1], image.shape[0]))
        start = time.perf_counter()
        frame = tracker.process(image, stamp_ns=round(index * 1e9 / options.rate), camera=camera)
        seconds.append(time.perf_counter() - start)
        keypoints.append(len(frame.features))
        if frame.has_previous:
            matches.append(len(frame.matches))
        paths = trails.update(frame.track_ids, frame.features.keypoints)
        if options.picture and (options.picture_frame is None or options.picture_frame == index):
            picture = draw_tracks(image, frame.features.keypoints, frame.track_lengths, paths)
        print(f"frame {index:4d}: {len(frame.features):4d} keypoints, {len(frame.matches):4d} matches "
              f"(inlier ratio {frame.inlier_ratio:.3f}), {seconds[-1] * 1e3:6.0f} ms", flush=True)
    if not keypoints:
        raise SourceError(f"{options.source}: no frames")
    check = tracker.statistics()  # fates at 10 frames known by the last frame
    tracker.reset()  # ends the tracks still alive, at the length they reached
    tracks = tracker.statistics().tracks
    print(f"rfnet-track: {len(keypoints)} frames of {options.source.name} "
          f"({image.shape[1]}x{image.shape[0]}, detector {config.model_width}x{config.model_height}, "
          f"top_k {config.top_k}, geometric check {config.geometric_check}, {tracker.device} "
          f"{tracker.engine_name} {tracker.precision})")
    print(f"  keypoints per frame {np.mean(keypoints):.0f}, matches per frame {np.mean(matches or [0]):.0f}, "
          f"inlier ratio {check.inlier_ratio_mean:.3f} (mean over frames)")
    print(f"  tracks {tracks.started}: mean length {tracks.mean_length:.2f} frames, "
          f"alive after {ALIVE_AFTER} frames {check.tracks.alive_share:.1%} (of {check.tracks.alive_known})")
    print(f"  {np.median(seconds) * 1e3:.0f} ms per frame (median)")
    if options.picture:
        if picture is None:
            raise ValueError(f"--picture-frame {options.picture_frame}: the sequence has {len(keypoints)} frames")
        if options.picture_width:
            height = round(picture.shape[0] * options.picture_width / picture.shape[1])
            picture = cv2.resize(picture, (options.picture_width, height), interpolation=cv2.INTER_AREA)
        options.picture.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(options.picture), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise ValueError(f"cannot write {options.picture}")
        print(f"  picture: {options.picture} ({options.picture.stat().st_size // 1024} KB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        return run(options)
    except (ValueError, WeightsError) as exc:  # settings, sources, calibration and weights name the problem
        print(f"rfnet-track: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
