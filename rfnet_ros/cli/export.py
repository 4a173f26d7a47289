"""rfnet-export: the networks of a configuration as ONNX files, and optionally an engine built and checked.

Writes the detector graph (fixed model size; with the learned-frame maps when ``keypoint_frames: learned``)
and the descriptor graph (dynamic patch count) of the configuration's weights file, named as the engines'
cache names them (rfnet_ros.engines.graphs). By default they go to the cache the engines read, so a later
start finds them; ``--out`` writes them elsewhere (e.g. to copy to a robot). ``--engine`` then builds that
engine from them (TensorRT: serialises its plan files next to them) and ``--check`` compares its keypoints,
descriptors and matches with the PyTorch reference on a photo.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2

from rfnet_ros.config import ENGINES, NodeConfig, load_config
from rfnet_ros.engines import EngineUnavailable, build_engine
from rfnet_ros.engines.graphs import cache_dir, descriptor_onnx, detector_onnx
from rfnet_ros.model.weights import WeightsError, file_sha256, load_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfnet-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML config (config/lite.yaml format); default: the defaults")
    parser.add_argument("--out", type=Path, help=f"folder for the files (default: the engine cache, {cache_dir()})")
    parser.add_argument("--engine", choices=ENGINES, help="also build this engine from the files")
    parser.add_argument("--check", type=Path, metavar="IMAGE",
                        help="compare the engine with the PyTorch reference on this image and a shifted copy")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, ignore=NodeConfig.names())
        if args.engine:
            config = dataclasses.replace(config, engine=args.engine)
        model = load_model(config.weights_path, config.replaced_layers, config.descriptor)
        digest = file_sha256(config.weights_path)
        frame_outputs = config.keypoint_frames == "learned"
        paths = [detector_onnx(model, digest, config.model_size, frame_outputs, args.out),
                 descriptor_onnx(model, digest, args.out)]
        for path in paths:
            print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
        if not args.engine:
            return 0
        engine = build_engine(config, cache=args.out)
        print(f"engine {engine.name} ({engine.precision}) on {engine.device}: ready")
        if args.check:
            from rfnet_ros.engine_parity import compare

            image = cv2.imread(str(args.check), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"--check: cannot read {args.check}")
            shifted = cv2.warpAffine(image, cv2.getRotationMatrix2D((0, 0), 0, 1.0) + [[0, 0, 5], [0, 0, 3]],
                                     image.shape[::-1])
            for line in compare(config, [image, shifted]).lines():
                print(line)
    except (ValueError, WeightsError, EngineUnavailable) as exc:
        print(f"rfnet-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
