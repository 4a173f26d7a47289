"""rfnet-bag: turn a video or an image folder into a rosbag2 bag (MCAP), to try the node on your own data.

    python -m rfnet_ros.cli.make_bag my_video.mp4 my_bag --rate 30 --resize 640x480
    python -m rfnet_ros.cli.make_bag frames/ my_bag --topic /cam0/image_raw --camera-info cam0.yaml

Writes sensor_msgs/Image (bgr8, or mono8 with --mono), or sensor_msgs/CompressedImage with --compressed
jpeg|png, on --topic, stamped --start + i / --rate seconds; with --camera-info (a camera_calibration_parsers
YAML file) also a sensor_msgs/CameraInfo with the same stamp on the camera_info beside the image topic
(/cam0/image_raw -> /cam0/camera_info). Play it with `ros2 bag play my_bag` or the player
(`ros2 run rfnet_ros player my_bag --bag-stamps`). Needs no ROS install (the `rosbags` library writes it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from rfnet_ros.bags import camera_info_message, compressed_message, image_message, open_writer, typestore
from rfnet_ros.frame_sources import SourceError, frames
from rfnet_ros.sizes import parse_size
from rfnet_ros.stream_settings import StreamSettings
from rfnet_ros.tracking.camera import read_calibration, sibling_camera_info

FORMATS = {"jpeg": ".jpg", "png": ".png"}


def make_bag(source: Path, out: Path, stream: StreamSettings, *, start_ns: int | None = None,
             resize: tuple[int, int] | None = None, mono: bool = False, compressed: str | None = None) -> int:
    """Write the frames of ``source`` into a new bag folder ``out``, the i-th stamped ``start_ns`` (default: now)
    plus i / ``stream.rate`` seconds, resized to ``resize`` (width, height), in mono8 with ``mono``, as
    CompressedImage with ``compressed`` (jpeg or png); returns the number of frames written."""
    calibration = read_calibration(stream.camera_info) if stream.camera_info else None
    store = typestore(())
    start_ns = time.time_ns() if start_ns is None else start_ns
    image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    image_topic = f"{stream.topic}/compressed" if compressed else stream.topic
    source_frames = frames(source, mono=mono, resize=resize)
    count = 0
    writer = open_writer(out)
    try:
        image_connection = writer.add_connection(image_topic, image_type, typestore=store)
        info_connection = (writer.add_connection(sibling_camera_info(stream.topic), "sensor_msgs/msg/CameraInfo",
                                                 typestore=store) if calibration else None)
        for image, _ in source_frames:
            if stream.max_frames is not None and count >= stream.max_frames:
                break
            stamp = start_ns + round(count * 1e9 / stream.rate)
            if calibration and (calibration["width"], calibration["height"]) != (image.shape[1], image.shape[0]):
                raise ValueError(f"{stream.camera_info} is for {calibration['width']}x{calibration['height']} images, "
                                 f"the frames are {image.shape[1]}x{image.shape[0]}")
            if compressed:
                ok, data = cv2.imencode(FORMATS[compressed], image)
                if not ok:
                    raise ValueError(f"cannot encode frame {count} as {compressed}")
                msg = compressed_message(store, data.tobytes(), compressed, stamp, stream.frame_id)
            else:
                msg = image_message(store, image, stamp, stream.frame_id)
            if info_connection is not None:
                info = camera_info_message(store, calibration, stamp, stream.frame_id)
                writer.write(info_connection, stamp, store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            writer.write(image_connection, stamp, store.serialize_cdr(msg, image_type))
            count += 1
    finally:
        writer.close()
    if count == 0:
        raise SourceError(f"{source}: no frames")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rfnet-bag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="video file or image folder (images in name order)")
    parser.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    parser.add_argument("--topic", default="/camera/image_raw", help="image topic (default /camera/image_raw)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second of the stamps (default 10)")
    parser.add_argument("--start", type=float, help="stamp of the first frame in seconds (default: now)")
    parser.add_argument("--resize", type=parse_size, metavar="WxH", help="resize frames, e.g. 640x480")
    parser.add_argument("--mono", action="store_true", help="mono8 instead of bgr8")
    parser.add_argument("--frame-id", default="camera", help="header.frame_id (default camera)")
    parser.add_argument("--compressed", choices=tuple(FORMATS), help="write CompressedImage on <topic>/compressed")
    parser.add_argument("--camera-info", type=Path, help="calibration YAML (camera_calibration_parsers format)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    start_ns = None if options.start is None else round(options.start * 1e9)
    try:
        stream = StreamSettings(options.topic, options.rate, options.frame_id, options.max_frames, options.camera_info)
        count = make_bag(options.source, options.out, stream, start_ns=start_ns, resize=options.resize,
                         mono=options.mono, compressed=options.compressed)
    except (ValueError, OSError) as exc:  # SourceError, BagError and calibration errors are ValueErrors
        print(f"rfnet-bag: error: {exc}", file=sys.stderr)
        return 1
    print(f"rfnet-bag: wrote {count} frames to {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
