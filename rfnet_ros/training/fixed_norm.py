"""A detector with fixed normalisations made from one with instance normalisations (rfnet_ros.model.detector).

The convolutions, heads, affine parameters and the first layer's instance normalisation are kept; what changes
is where the statistics of layers 2..10 come from: each layer's per-channel mean and deviation are measured here
over the training photos, layer by layer (each layer's statistics with the layers before it already fixed), as
a batch normalisation's running statistics. Frames are the photos area-resized to the input size and then to
the model size, as the pipeline sees a camera frame.

    python -m rfnet_ros.training.fixed_norm --weights rfnet_ros/weights/rfnet_lite.pt \\
        --data data/images/train --out rfnet_ros/weights/rfnet_lite_fixed_norm.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from rfnet_ros.frame_sources import IMAGE_SUFFIXES
from rfnet_ros.model.detector import CHANNELS, NUM_LAYERS, Detector
from rfnet_ros.model.rfnet import RFNet
from rfnet_ros.model.weights import file_sha256, load_model, read_weights, save_weights


def calibration_photos(folder: Path) -> list[Path]:
    """The photos of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def calibration_frames(photos: list[Path], input_size: tuple[int, int], model_size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) float32 model-size frames of ``photos``, in [0, 1]."""
    frames = []
    for path in photos:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f"not an image: {path}")
        frame = cv2.resize(gray.astype(np.float32) / 255, input_size[::-1], interpolation=cv2.INTER_AREA)
        frames.append(cv2.resize(frame, model_size[::-1], interpolation=cv2.INTER_AREA))
    if not frames:
        raise ValueError("no photos to measure the statistics on")
    return torch.from_numpy(np.stack(frames))[:, None]


@torch.no_grad()
def fixed_detector(source: Detector, frames: torch.Tensor, chunk: int = 16) -> Detector:
    """A ``fixed`` detector with ``source``'s convolutions, heads, affine parameters and first normalisation, the
    statistics of layers 2..10 measured on ``frames`` (N, 1, h, w): per channel the mean and the variance over
    all frames' samples."""
    if source.norm != "instance":
        raise ValueError("the source detector must have instance normalisations")
    detector = Detector(source.replaced_layers, source.scale_strength, source.nms_strength, source.nms_window,
                        norm="fixed")
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("norms.")}
    detector.load_state_dict(state, strict=False)
    detector.norms[0].load_state_dict(source.norms[0].state_dict())
    for norm, instance in zip(detector.norms[1:], source.norms[1:]):
        norm.weight.copy_(instance.weight)
        norm.bias.copy_(instance.bias)
        norm.eps = instance.eps
    detector.eval()
    # Each chunk's features are carried from layer to layer, so every layer's convolution runs once per frame.
    chunks = [frames[start:start + chunk] for start in range(0, len(frames), chunk)]
    features = [detector.layer(0, block)[1] for block in chunks]
    for layer in range(1, NUM_LAYERS):
        total = torch.zeros(CHANNELS, dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = 0
        for block in features:
            out = detector.convs[layer](block).double()
            total += out.sum(dim=(0, 2, 3))
            squares += out.square().sum(dim=(0, 2, 3))
            count += out.shape[0] * out.shape[2] * out.shape[3]
        mean = total / count
        detector.norms[layer].running_mean.copy_(mean.float())
        detector.norms[layer].running_var.copy_((squares / count - mean.square()).clamp(min=0).float())
        features = [detector.layer(layer, block)[1] for block in features]
    return detector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.training.fixed_norm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="weights file with instance normalisations")
    parser.add_argument("--data", type=Path, default=Path("data/images/train"), help="folder of training photos")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--input-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--model-size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    args = parser.parse_args(argv)
    source = load_model(args.weights)
    photos = calibration_photos(args.data)
    frames = calibration_frames(photos, tuple(args.input_size), tuple(args.model_size))
    model = RFNet(source.replaced_layers, source.descriptor_name, "fixed")
    model.detector = fixed_detector(source.detector, frames)
    model.descriptor.load_state_dict(source.descriptor.state_dict())
    # The source's record (its training stage, steps and photos) stays; the statistics' record is added to it.
    save_weights(args.out, model.eval(), {
        **read_weights(args.weights).get("provenance", {}),
        "fixed_normalisation": {
            "made_by": "python -m rfnet_ros.training.fixed_norm",
            "source_weights": args.weights.name,
            "source_sha256": file_sha256(args.weights),
            "input_size": list(args.input_size),
            "model_size": list(args.model_size),
            "photos": [p.stem for p in photos],
        },
    })
    print(f"wrote {args.out}: fixed normalisations measured on {len(frames)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
