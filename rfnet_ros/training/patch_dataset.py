"""A dataset of corresponding patches for descriptor training, generated once and stored in shards.

Describing patches online costs more than the student learns from them in one step (the teacher's HardNet
and the frame measurements dominate), so correspondences are generated once, HPatches/Brown-style, and the
distill stage trains from them for as many epochs as it needs.

Each pair of a shard comes from a training photo and a homography-warped, photometrically changed view of
it, rendered at twice the detector's resolution (rfnet_ros.training.pairs). The teacher's detector finds
keypoints in view 0 (``keypoint_frames: image``, ``min_strength``); each keypoint gives three patches of the
student's size, cut at full resolution: ``anchor`` (view 0, measured frame), ``true`` (view 1, the anchor's
frame carried through the warp) and ``measured`` (view 1, the frame measured there, as at run time), and the
teacher's descriptors of the same three (its own patch size).

Shard arrays (N correspondences): anchor, true, measured (N, P, P) float16 patches in [0, 1]; teacher_anchor,
teacher_true, teacher_measured (N, 128) float16; pair (N,) int64 global pair index; xy (N, 2) float32 anchor
position (px in view 0). Shard s is drawn with seed seed * 1000003 + s, so shards are independent and a stopped run
resumes by writing the missing ones.

    python -m rfnet_ros.training.patch_dataset --teacher rfnet_ros/weights/rfnet_lite.pt --out runs/patches
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rfnet_ros.config import FeatureConfig, KeypointSettings
from rfnet_ros.engines import Engine, build_engine
from rfnet_ros.model.descriptor import DESCRIPTORS
from rfnet_ros.model.frames import measure_frames
from rfnet_ros.model.patches import extract_patches
from rfnet_ros.model.rfnet import keypoints_from_maps, model_input
from rfnet_ros.model.weights import file_sha256, load_model, provenance
from rfnet_ros.training.homography import warp_frames
from rfnet_ros.training.pairs import PairSampler

MARGIN = 16.0  # px: keypoints whose warp lands closer than this to view 1's edge are not used
SETS = ("anchor", "true", "measured")


@torch.no_grad()
def teacher_config(args: argparse.Namespace) -> FeatureConfig:
    """The teacher's settings: its weights in fp32 on the CPU, the detector at half the rendered views' size, and
    keypoints selected in view 0 with image frames (5 px non-maximum suppression, one description each)."""
    teacher = load_model(args.teacher)
    return FeatureConfig(weights=str(Path(args.teacher).resolve()), replaced_layers=teacher.replaced_layers,
                         descriptor=teacher.descriptor_name, model_height=args.crop[0] // 2,
                         model_width=args.crop[1] // 2, top_k=args.keypoints, nms_size=5, border=8,
                         score_threshold=0.0, keypoint_frames="image", min_strength=args.min_strength,
                         second_peak_ratio=1.0, device="cpu", engine="auto", precision="fp32")


def correspondences(batch, teacher: Engine, keypoints: KeypointSettings, patch_size: int) -> dict[str, np.ndarray]:
    """The three patches and teacher descriptors of every usable keypoint of a batch of pairs (module docstring),
    the keypoints selected with ``keypoints``; ``pair`` holds the index of the pair within the batch."""
    image0, image1, hom = (torch.from_numpy(x) for x in (batch.image0, batch.image1, batch.homography))
    b, _, h, w = image0.shape
    model_size = (h // 2, w // 2)
    out: dict[str, list] = {key: [] for key in (*SETS, *(f"teacher_{s}" for s in SETS), "pair", "xy")}
    for i in range(b):
        small0 = model_input(image0[i:i + 1], model_size)
        found = keypoints_from_maps(teacher.detect(small0), small0, image0[i:i + 1], keypoints)
        xy1, direction1, radius1 = warp_frames(hom[i:i + 1], found.xy, found.orientation, found.scale)
        keep = found.valid & ((xy1[..., 0] >= MARGIN) & (xy1[..., 0] <= w - 1 - MARGIN)
                              & (xy1[..., 1] >= MARGIN) & (xy1[..., 1] <= h - 1 - MARGIN))
        keep = keep[0]
        if not keep.any():
            continue
        measured = measure_frames(image1[i:i + 1], xy1[:, keep])
        frames = {"anchor": (image0[i:i + 1], found.xy[0, keep], found.scale[0, keep], found.orientation[0, keep]),
                  "true": (image1[i:i + 1], xy1[0, keep], radius1[0, keep], direction1[0, keep]),
                  "measured": (image1[i:i + 1], xy1[0, keep], measured.radius[0], measured.direction[0])}
        for name, (image, xy, radius, direction) in frames.items():
            out[name].append(extract_patches(image, xy, radius, direction, patch_size)[:, 0].half().numpy())
            teacher_patches = extract_patches(image, xy, radius, direction, teacher.patch_size)
            out[f"teacher_{name}"].append(teacher.describe(teacher_patches).half().numpy())
        out["pair"].append(np.full(int(keep.sum()), i, np.int64))
        out["xy"].append(found.xy[0, keep].numpy().astype(np.float32))
    return {key: np.concatenate(value) for key, value in out.items() if value}


def write_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def generate(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads or torch.get_num_threads())
    config = teacher_config(args)
    teacher = build_engine(config)
    patch_size = DESCRIPTORS[args.student].patch_size
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"teacher": str(args.teacher), "teacher_sha256": file_sha256(args.teacher),
            "teacher_provenance": provenance(args.teacher), "student": args.student, "patch_size": patch_size,
            "data": str(args.data), "crop": list(args.crop), "keypoints": args.keypoints,
            "min_strength": args.min_strength, "max_angle": args.max_angle, "scale_range": list(args.scale_range),
            "pairs_per_shard": args.pairs_per_shard, "seed": args.seed}
    shards = -(-args.pairs // args.pairs_per_shard)
    start = time.time()
    for shard in tqdm(range(shards), desc="shards"):
        path = args.out / f"shard_{shard:05d}.npz"
        if path.exists():
            continue
        sampler = PairSampler(args.data, tuple(args.crop), seed=args.seed * 1_000_003 + shard,
                              max_angle_deg=args.max_angle, scale_range=tuple(args.scale_range))
        if shard == 0:
            info["training_images"] = sampler.names
        batch = sampler.sample(args.pairs_per_shard)
        arrays = correspondences(batch, teacher, config.keypoint_settings, patch_size)
        arrays["pair"] = arrays["pair"] + shard * args.pairs_per_shard
        write_shard(path, arrays)
    info["seconds_this_run"] = round(time.time() - start, 1)
    info["training_images"] = PairSampler(args.data, tuple(args.crop), 0).names
    (args.out / "dataset.json").write_text(json.dumps(info, indent=1))
    print(f"[patch_dataset] {shards} shards in {args.out}")
    return 0


class PatchShards:
    """The shards of a patch dataset in memory, and random batches of correspondences drawn from them."""

    def __init__(self, folder: Path):
        paths = sorted(Path(folder).glob("shard_*.npz"))
        if not paths:
            raise FileNotFoundError(f"no patch shards in {folder}: run python -m rfnet_ros.training.patch_dataset")
        loaded = [dict(np.load(p)) for p in paths]
        self.arrays = {key: np.concatenate([d[key] for d in loaded]) for key in loaded[0]}
        info = Path(folder) / "dataset.json"
        self.info = json.loads(info.read_text()) if info.exists() else {}

    def __len__(self) -> int:
        return len(self.arrays["pair"])

    def sample(self, count: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``count`` correspondences drawn without replacement with ``rng`` (the caller keeps its state)."""
        index = np.sort(rng.choice(len(self), size=min(count, len(self)), replace=False))
        out = {}
        for key, value in self.arrays.items():
            chosen = value[index]
            tensor = torch.from_numpy(chosen)
            if key in SETS:
                tensor = tensor.float()[:, None]
            elif key.startswith("teacher_"):
                tensor = torch.nn.functional.normalize(tensor.float(), dim=1)
            out[key] = tensor
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="weights file: detector and teaching descriptor")
    parser.add_argument("--student", choices=tuple(DESCRIPTORS), default="hardnet_lite",
                        help="the descriptor the patches are cut for (its patch size)")
    parser.add_argument("--data", type=Path, default=Path("data/images/train"), help="folder of training photos")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards")
    parser.add_argument("--pairs", type=int, default=4000, help="image pairs in all")
    parser.add_argument("--pairs-per-shard", type=int, default=20)
    parser.add_argument("--keypoints", type=int, default=256, help="keypoints detected per view")
    parser.add_argument("--crop", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                        help="rendered view size (the detector sees half of it)")
    parser.add_argument("--min-strength", type=float, default=1e-4)
    parser.add_argument("--max-angle", type=float, default=180.0)
    parser.add_argument("--scale-range", type=float, nargs=2, default=(0.6, 1.6))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    return generate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
