"""How much of the frames measured on the image the detector's own features hold (the frame probe).

    python -m rfnet_ros.evaluation.frame_probe --config config/lite.yaml

Learned keypoint frames (``keypoint_frames: learned``) read the orientation and the scale off the detector:
1x1 orientation heads on each layer's features and a soft-argmax over the layers' scale weights. The shipped
configurations measure both on the image instead (rfnet_ros.model.frames), which costs time on every frame.
Before training the heads to reproduce the measured frames (a fixed teacher), the probe asks whether the
features at a keypoint hold what the measurement finds. With the detector frozen, it collects per keypoint
the ten layers' features, the scale weights and the measured frame on rotated (any angle) and zoomed
(0.8-1.25x) training photos, fits readouts to the measured frames there, and reports their errors on the
rotated and zoomed validation photos:

- orientation (angle to the measured dominant direction): the shipped heads as they are; per-layer linear
  heads of the detector's own form, fused as :func:`learned_frames` fuses them (:func:`fuse_orientations`;
  what training the heads alone can reach); a two-layer MLP on all layers' features and scale weights (a
  bound for any small readout);
- scale (log2 of the measured patch half-width): the training median; the shipped learned scale with its best
  constant factor; a linear and an MLP regression on the same inputs.

Training photos fit, validation photos score; the held-out split is not read.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rfnet_ros.config import NodeConfig, load_config
from rfnet_ros.model.detector import NUM_LAYERS, SCALES, Detector, fuse_orientations
from rfnet_ros.model.keypoints import sample_maps
from rfnet_ros.model.rfnet import keypoints_from_maps, model_input
from rfnet_ros.model.weights import load_model

BORDER = 20  # px of the warped image's valid area kept clear of keypoints (the black outside the photo)


@dataclasses.dataclass
class ProbeSet:
    """Per keypoint: features (N, 10, 16) of the ten layers, scale weights (N, 10), the shipped orientation
    heads' per-layer vectors (N, 10, 2), the measured direction (N, 2) and patch half-width (N,) in input px."""

    features: torch.Tensor
    weights: torch.Tensor
    heads: torch.Tensor
    direction: torch.Tensor
    radius: torch.Tensor


def warp(image: np.ndarray, angle: float, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """The image rotated by angle degrees and zoomed about its centre, and the mask of its valid area."""
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    warped = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    inside = cv2.warpAffine(np.ones_like(image), matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return warped, cv2.erode(inside, np.ones((2 * BORDER + 1, 2 * BORDER + 1), np.uint8)) > 0


def collect(detector: Detector, config, paths: list[Path], warps: int, rng: random.Random) -> ProbeSet:
    """Keypoints of ``warps`` random rotations and zooms of each photo, selected and framed as the pipeline
    does with frames measured on the image, with the frozen detector's features at them."""
    height, width = config.model_size[0] * 2, config.model_size[1] * 2
    settings = dataclasses.replace(config.keypoint_settings, keypoint_frames="image", second_peak_ratio=1.0)
    layers: list[torch.Tensor] = []
    # Each layer's features as the heads read them: leaky_relu of its instance normalisation's output.
    hooks = [norm.register_forward_hook(lambda _m, _i, out: layers.append(F.leaky_relu(out)))
             for norm in detector.norms]
    parts: list[tuple[torch.Tensor, ...]] = []
    try:
        for path in paths:
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise ValueError(f"{path}: not an image")
            photo = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
            for _ in range(warps):
                image, inside = warp(photo, rng.uniform(-180, 180), rng.uniform(0.8, 1.25))
                tensor = torch.from_numpy(image).float().div(255)[None, None]
                small = model_input(tensor, config.model_size)
                layers.clear()
                with torch.inference_mode():
                    maps = detector(small)
                    keypoints = keypoints_from_maps(maps, small, tensor, settings)
                    pixel = keypoints.xy[0].round().long()
                    keep = keypoints.valid[0] & torch.from_numpy(inside)[pixel[:, 1].clamp(0, height - 1),
                                                                         pixel[:, 0].clamp(0, width - 1)]
                    ratio = torch.tensor([width / small.shape[-1], height / small.shape[-2]])
                    xy_model = ((keypoints.xy[:, keep] + 0.5) / ratio - 0.5)
                    parts.append((torch.stack([sample_maps(layer, xy_model)[0] for layer in layers], 1),
                                  sample_maps(maps.scale_weights, xy_model)[0],
                                  sample_maps(maps.orientations, xy_model)[0].unflatten(-1, (NUM_LAYERS, 2)),
                                  keypoints.orientation[0, keep], keypoints.scale[0, keep]))
    finally:
        for hook in hooks:
            hook.remove()
    return ProbeSet(*(torch.cat(column) for column in zip(*parts)))


class LayerHeads(nn.Module):
    """Per-layer linear orientation heads (the detector's 1x1 heads), fused over the layers."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(NUM_LAYERS, channels, 2) * 0.1)
        self.bias = nn.Parameter(torch.zeros(NUM_LAYERS, 2))

    def forward(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return fuse_orientations(torch.einsum("nlc,lco->nlo", features, self.weight) + self.bias, weights)


def mlp(inputs: int, outputs: int, width: int = 128) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, outputs))


def flat(data: ProbeSet) -> torch.Tensor:
    return torch.cat([data.features.flatten(1), data.weights], 1)


def fit(model: nn.Module, loss: Callable[[torch.Tensor], torch.Tensor], count: int, steps: int, lr: float,
        batch: int = 8192) -> nn.Module:
    """Adam with a cosine schedule on random mini-batches; ``loss(index)`` is the batch's mean loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for _ in range(steps):
        value = loss(torch.randint(0, count, (batch,)))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
    return model


def angle_line(name: str, predicted: torch.Tensor, measured: torch.Tensor) -> str:
    error = torch.rad2deg(torch.acos((predicted * measured).sum(-1).clamp(-1, 1)))
    return (f"  {name:48s} median {error.median():5.1f} deg, p90 {error.quantile(0.9):5.1f}, "
            f"within 15 deg {(error < 15).float().mean():.3f}")


def octave_line(name: str, predicted: torch.Tensor, measured: torch.Tensor) -> str:
    error = (predicted - measured).abs()
    return (f"  {name:48s} median {error.median():5.2f} octaves, p90 {error.quantile(0.9):5.2f}, "
            f"within 0.25 {(error < 0.25).float().mean():.3f}")


def probe(train: ProbeSet, validation: ProbeSet, steps: int) -> list[str]:
    """Report lines: each readout's error against the measured frames on the validation keypoints."""
    lines = [f"keypoints: {len(train.radius)} training, {len(validation.radius)} validation",
             "orientation (angle to the measured dominant direction, validation):",
             angle_line("shipped orientation heads", fuse_orientations(validation.heads, validation.weights),
                        validation.direction)]
    heads = LayerHeads(train.features.shape[-1])
    fit(heads, lambda i: (1 - (heads(train.features[i], train.weights[i]) * train.direction[i]).sum(-1)).mean(),
        len(train.radius), steps, 1e-2)
    train_flat, validation_flat = flat(train), flat(validation)
    network = mlp(train_flat.shape[1], 2)
    fit(network, lambda i: (1 - (F.normalize(network(train_flat[i]), dim=-1) * train.direction[i]).sum(-1)).mean(),
        len(train.radius), steps, 3e-3)
    with torch.no_grad():
        lines.append(angle_line("linear heads fitted to it (the detector's form)",
                                heads(validation.features, validation.weights), validation.direction))
        lines.append(angle_line("MLP on all layers fitted to it",
                                F.normalize(network(validation_flat), dim=-1), validation.direction))
    octaves_train, octaves = train.radius.log2(), validation.radius.log2()
    learned = (validation.weights * torch.tensor(SCALES)).sum(-1).log2()
    lines += [f"scale (log2 of the measured patch half-width, validation median {validation.radius.median():.1f} "
              f"px, quartiles {validation.radius.quantile(0.25):.1f}-{validation.radius.quantile(0.75):.1f}):",
              octave_line("training median", torch.full_like(octaves, octaves_train.median()), octaves),
              octave_line("shipped learned scale, best constant factor", learned + (octaves - learned).median(),
                          octaves)]
    for name, model, lr in (("linear regression fitted to it", nn.Linear(train_flat.shape[1], 1), 1e-2),
                            ("MLP on all layers fitted to it", mlp(train_flat.shape[1], 1), 3e-3)):
        fit(model, lambda i, m=model: (m(train_flat[i])[:, 0] - octaves_train[i]).abs().mean(),
            len(train.radius), steps, lr)
        with torch.no_grad():
            lines.append(octave_line(name, model(validation_flat)[:, 0], octaves))
    return lines


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm", ".pgm"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.evaluation.frame_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("config/lite.yaml"),
                        help="configuration whose weights and keypoint settings are probed")
    parser.add_argument("--train", type=Path, default=Path("data/images/train"), help="photos the readouts fit")
    parser.add_argument("--validation", type=Path, default=Path("data/images/validation"),
                        help="photos the readouts are scored on")
    parser.add_argument("--train-photos", type=int, default=150, help="training photos drawn (seeded)")
    parser.add_argument("--warps", type=int, default=2, help="rotated and zoomed copies per photo")
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps per readout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    config = load_config(args.config, ignore=NodeConfig.names())
    detector = load_model(config.weights_path, config.replaced_layers, config.descriptor).detector.eval()
    train_paths = images(args.train)
    rng.shuffle(train_paths)
    validation_paths = images(args.validation)
    if not train_paths or not validation_paths:
        print("frame probe: error: no training or validation photos (bash scripts/fetch_training_data.sh, "
              "bash scripts/fetch_data.sh)", file=sys.stderr)
        return 2
    train = collect(detector, config, train_paths[:args.train_photos], args.warps, rng)
    validation = collect(detector, config, validation_paths, args.warps, rng)
    fitted = min(args.train_photos, len(train_paths))
    print(f"frame probe of {args.config} ({config.weights}): readouts fitted on {fitted} training photos, "
          f"scored on {len(validation_paths)} validation photos, {args.warps} warps each")
    for line in probe(train, validation, args.steps):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
