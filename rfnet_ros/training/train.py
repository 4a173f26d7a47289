"""rfnet-train: self-supervised RF-Net training on homography-warped photographs.

Four stages share one command:
  descriptor  HardNet alone on corresponding patches (points with random frames carried through the warp);
  joint       detector (score-map loss, orientation/scale equivariance) with HardNet fine-tuned on the
              detected keypoints (triplet losses on patches cut with warped and with predicted frames);
  distill     a lighter descriptor (--descriptor hardnet_lite) taught by a teacher weights file's detector
              and HardNet (rfnet_ros.training.distill), written with the teacher's detector;
  detector    the detector alone (rfnet_ros.training.detection): score-map, repeatability, sub-pixel
              reprojection and frame-equivariance losses on pairs rendered at twice the model size.
Runs are deterministic for a seed and resumable from their checkpoint.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rfnet_ros.config import FRAME_SOURCES
from rfnet_ros.model.descriptor import DESCRIPTORS
from rfnet_ros.model.detector import DetectorMaps
from rfnet_ros.model.frames import measure_frames
from rfnet_ros.model.keypoints import select_keypoints
from rfnet_ros.model.patches import extract_patches
from rfnet_ros.model.rfnet import RFNet
from rfnet_ros.model.weights import load_model, read_weights, save_weights
from rfnet_ros.training.homography import warp_frames
from rfnet_ros.training.losses import equivariance_loss, hardnet_triplet_loss, repeatability_loss, score_map_loss
from rfnet_ros.training.pairs import PairSampler

MIN_SCALE, MAX_SCALE = 3.0, 21.0
MARGIN = 12.0  # px: keypoints whose warp lands closer than this to image 1's edge are not used


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rfnet-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("descriptor", "joint", "distill", "detector"), default="joint")
    p.add_argument("--reprojection-weight", type=float, default=1.0,
                   help="detector: weight of the sub-pixel reprojection loss (px)")
    p.add_argument("--descriptor", choices=tuple(DESCRIPTORS), default="hardnet",
                   help="descriptor to train (distill: the student)")
    p.add_argument("--patches", type=Path, help="distill: patch dataset folder (rfnet_ros.training.patch_dataset)")
    p.add_argument("--patch-batch", type=int, default=1024, help="distill: correspondences per step")
    p.add_argument("--distill-weight", type=float, default=1.0, help="distill: weight of the distillation loss")
    p.add_argument("--scale-range", type=float, nargs=2, default=(0.7, 1.4), metavar=("LOW", "HIGH"),
                   help="zoom range of the warps")
    p.add_argument("--replaced-layers", type=int, default=9, help="lightweight variant 0..9 (0 = full RF-Net)")
    p.add_argument("--data", type=Path, default=Path("data/images/train"), help="folder of training photos")
    p.add_argument("--out", type=Path, required=True, help="weights file to write")
    p.add_argument("--init", type=Path, help="weights file to start from: its descriptor, and its detector "
                   "when it holds the same variant")
    p.add_argument("--checkpoint", type=Path, help="checkpoint file (default: OUT with .ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=4, help="image pairs per step")
    p.add_argument("--keypoints", type=int, default=64, help="keypoints per image used by the patch losses")
    p.add_argument("--crop", type=int, nargs=2, default=(192, 256), metavar=("H", "W"))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--descriptor-lr", type=float, default=1e-4, help="HardNet learning rate in the joint stage")
    p.add_argument("--score-weight", type=float, default=1000.0)
    p.add_argument("--repeatability-weight", type=float, default=1.0,
                   help="weight of the dense repeatability loss between the two score maps")
    p.add_argument("--equivariance-weight", type=float, default=5.0)
    p.add_argument("--predicted-frame-weight", type=float, default=1.0,
                   help="weight of the triplet loss on patches cut with the frames predicted in image 1 "
                        "(0 skips those patches, a third of the descriptor work of a joint step)")
    p.add_argument("--keypoint-frames", choices=FRAME_SOURCES, default="learned",
                   help="frames the joint stage cuts its patches with: learned (the detector's heads) or "
                        "image (measured on the images, as the pipeline's keypoint_frames: image); the learned "
                        "heads are trained by the equivariance loss either way")
    p.add_argument("--max-angle", type=float, default=30.0, help="largest rotation of the warps, degrees")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16",
                   help="HardNet autocast precision (bf16 uses AMX/AVX-512 on CPUs that have it)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=50)
    return p.parse_args(argv)


def candidate_points(image: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` (x, y) points, corners first (Shi-Tomasi), topped up with uniform random points."""
    h, w = image.shape
    corners = cv2.goodFeaturesToTrack((image * 255).astype(np.uint8), count * 3, 0.001, 4, blockSize=5)
    points = corners.reshape(-1, 2) if corners is not None else np.zeros((0, 2), np.float32)
    points = points[rng.permutation(len(points))[:count]]
    extra = rng.uniform([MARGIN, MARGIN], [w - MARGIN, h - MARGIN], size=(count - len(points), 2))
    return np.concatenate([points, extra]).astype(np.float32)


def inside(xy: torch.Tensor, height: int, width: int, margin: float = MARGIN) -> torch.Tensor:
    return ((xy[..., 0] >= margin) & (xy[..., 0] <= width - 1 - margin)
            & (xy[..., 1] >= margin) & (xy[..., 1] <= height - 1 - margin))


def describe_batch(model: RFNet, images: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor,
                   direction: torch.Tensor) -> torch.Tensor:
    """Descriptors of (B, K) keypoints in (B, 1, H, W) images -> (B*K, 128)."""
    size = model.descriptor.patch_size
    patches = torch.cat([extract_patches(images[i:i + 1], xy[i], radius[i], direction[i], size)
                         for i in range(images.shape[0])])
    return model.descriptor(patches)


def descriptor_step(model: RFNet, batch, args, rng: np.random.Generator, autocast) -> dict[str, torch.Tensor]:
    image0, image1, hom = (torch.from_numpy(x) for x in (batch.image0, batch.image1, batch.homography))
    b, _, h, w = image0.shape
    k = args.keypoints
    xy0 = torch.from_numpy(np.stack([candidate_points(batch.image0[i, 0], k, rng) for i in range(b)]))
    angle = torch.from_numpy(rng.uniform(-np.pi, np.pi, size=(b, k)).astype(np.float32))
    direction0 = torch.stack([angle.cos(), angle.sin()], dim=-1)
    radius0 = torch.from_numpy(np.exp(rng.uniform(np.log(MIN_SCALE), np.log(MAX_SCALE), (b, k))).astype(
        np.float32))
    xy1, direction1, radius1 = warp_frames(hom, xy0, direction0, radius0)
    valid = inside(xy1, h, w).float().flatten()
    with autocast:
        anchor = describe_batch(model, image0, xy0, radius0, direction0)
        positive = describe_batch(model, image1, xy1, radius1, direction1)
    image_id = torch.arange(b).repeat_interleave(k)
    loss = hardnet_triplet_loss(anchor, positive, image_id, xy0.reshape(-1, 2), weight=valid)
    return {"loss": loss, "triplet": loss}


def joint_step(model: RFNet, batch, args, rng: np.random.Generator, autocast) -> dict[str, torch.Tensor]:
    image0, image1, hom = (torch.from_numpy(x) for x in (batch.image0, batch.image1, batch.homography))
    b, _, h, w = image0.shape
    maps = model.detector(torch.cat([image0, image1]))
    score0, score1 = maps.score[:b], maps.score[b:]
    hom_inv = torch.linalg.inv(hom)
    score = score_map_loss(score0, score1, hom, args.score_top_k)
    score = score + score_map_loss(score1, score0, hom_inv, args.score_top_k)
    repeatability = torch.zeros(())
    if args.repeatability_weight > 0:
        repeatability = 0.5 * (repeatability_loss(score0, score1, hom) + repeatability_loss(score1, score0, hom_inv))

    xy0, _, valid0 = select_keypoints(score0, args.keypoints)
    xy0 = xy0.detach()
    maps0 = DetectorMaps(score0, maps.scale_weights[:b], maps.orientations[:b])
    maps1 = DetectorMaps(score1, maps.scale_weights[b:], maps.orientations[b:])
    # The patch half-width is the detector's scale (a keypoint of scale s is described by a 2s x 2s square).
    radius0, direction0 = model.detector.frames_at(maps0, xy0)
    xy1, direction1_gt, radius1_gt = warp_frames(hom, xy0, direction0, radius0)
    radius1, direction1 = model.detector.frames_at(maps1, xy1)
    valid = (valid0 & inside(xy1, h, w)).float()
    equivariance = equivariance_loss(direction1, direction1_gt.detach(), radius1, radius1_gt.detach(), valid)
    if args.keypoint_frames == "image":
        # Patches cut as the pipeline cuts them with keypoint_frames: image; the positives' "true" frames are
        # image 0's measured frames carried through the warp, the predicted ones are measured in image 1.
        with torch.no_grad():
            frames0, frames1 = measure_frames(image0, xy0), measure_frames(image1, xy1)
            radius0, direction0 = frames0.radius, frames0.direction
            radius1, direction1 = frames1.radius, frames1.direction
            _, direction1_gt, radius1_gt = warp_frames(hom, xy0, direction0, radius0)

    with autocast:
        anchor = describe_batch(model, image0, xy0, radius0, direction0)
        positive_gt = describe_batch(model, image1, xy1, radius1_gt, direction1_gt)
        positive_pred = (describe_batch(model, image1, xy1, radius1, direction1)
                         if args.predicted_frame_weight > 0 else None)
    image_id = torch.arange(b).repeat_interleave(xy0.shape[1])
    flat_valid, flat_xy = valid.flatten(), xy0.reshape(-1, 2)
    triplet_gt = hardnet_triplet_loss(anchor, positive_gt, image_id, flat_xy, weight=flat_valid)
    triplet_pred = (hardnet_triplet_loss(anchor, positive_pred, image_id, flat_xy, weight=flat_valid)
                    if positive_pred is not None else torch.zeros(()))
    loss = (triplet_gt + args.predicted_frame_weight * triplet_pred + args.score_weight * score
            + args.repeatability_weight * repeatability + args.equivariance_weight * equivariance)
    return {"loss": loss, "triplet_gt": triplet_gt, "triplet_pred": triplet_pred, "score": score,
            "repeatability": repeatability, "equivariance": equivariance, "keypoints": flat_valid.sum() / b}


def make_optimizer(model: RFNet, args) -> torch.optim.Optimizer:
    if args.stage in ("descriptor", "distill"):
        return torch.optim.Adam(model.descriptor.parameters(), lr=args.lr)
    if args.stage == "detector":
        return torch.optim.Adam(model.detector.parameters(), lr=args.lr)
    return torch.optim.Adam([
        {"params": model.detector.parameters(), "lr": args.lr},
        {"params": model.descriptor.parameters(), "lr": args.descriptor_lr},
    ])


def detector_stage_step(model: RFNet, batch, args, rng, autocast) -> dict[str, torch.Tensor]:
    from rfnet_ros.training.detection import detector_step

    weights = {"score": args.score_weight, "repeatability": args.repeatability_weight,
               "reprojection": args.reprojection_weight, "equivariance": args.equivariance_weight}
    # The score loss's top-k follows the model-resolution area, as in the joint stage.
    top_k = max(16, int(512 * (args.crop[0] // 2) * (args.crop[1] // 2) / (240 * 320)))
    with autocast:
        return detector_step(model, batch, args.keypoints, top_k, weights)


def make_distill_step(model: RFNet, args):
    """The distill stage's step over the patch dataset ``--patches``; the student is written with the detector
    of the weights file the dataset was made with."""
    from rfnet_ros.training.distill import distill_step
    from rfnet_ros.training.patch_dataset import PatchShards

    if args.patches is None:
        raise SystemExit("rfnet-train: error: --stage distill needs --patches (python -m "
                         "rfnet_ros.training.patch_dataset makes them)")
    shards = PatchShards(args.patches)
    if shards.info.get("patch_size", model.descriptor.patch_size) != model.descriptor.patch_size:
        raise SystemExit(f"rfnet-train: error: {args.patches} holds {shards.info['patch_size']} px patches, the "
                         f"{args.descriptor} descriptor takes {model.descriptor.patch_size} px")
    teacher = Path(shards.info.get("teacher", "")) if shards.info.get("teacher") else None
    if teacher is not None and teacher.is_file():
        model.detector.load_state_dict(load_model(teacher, args.replaced_layers).detector.state_dict())
    model.detector.requires_grad_(False)
    args.patch_dataset_info = {k: v for k, v in shards.info.items() if k != "teacher_provenance"}
    args.patch_dataset_info["correspondences"] = len(shards)
    args.teacher_provenance = shards.info.get("teacher_provenance", {})

    def step(model: RFNet, batch, args, rng, autocast) -> dict[str, torch.Tensor]:
        with autocast:
            return distill_step(model, shards, args.patch_batch, rng, args.distill_weight,
                                args.predicted_frame_weight)

    step.samples_pairs = False
    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.score_top_k = max(16, int(512 * args.crop[0] * args.crop[1] / (240 * 320)))
    checkpoint_path = args.checkpoint or args.out.with_suffix(".ckpt")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    sampler = PairSampler(args.data, tuple(args.crop), args.seed, max_angle_deg=args.max_angle,
                          scale_range=tuple(args.scale_range))

    init = read_weights(args.init) if args.init else None
    # A detector started from a file keeps that file's normalisation (rfnet_ros.training.fixed_norm makes fixed ones).
    norm = init.get("detector_norm", "instance") if init and init["replaced_layers"] == args.replaced_layers else (
        "instance")
    model = RFNet(args.replaced_layers, args.descriptor, norm)
    if init:
        if init.get("descriptor_name", "hardnet") == args.descriptor:
            model.descriptor.load_state_dict(init["descriptor"])
        if init["replaced_layers"] == args.replaced_layers:
            model.detector.load_state_dict(init["detector"])
    if args.stage == "distill":
        step_fn = make_distill_step(model, args)
    elif args.stage == "detector":
        step_fn = detector_stage_step
    else:
        step_fn = descriptor_step if args.stage == "descriptor" else joint_step
    model.train()
    optimizer = make_optimizer(model, args)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    start, history = 0, []
    if args.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start, history = state["step"], state["history"]
        print(f"[rfnet-train] resumed from {checkpoint_path} at step {start}", flush=True)

    log_path = args.out.with_suffix(".log.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    running: dict[str, float] = {}
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc=f"{args.stage} n={args.replaced_layers}")
    samples_pairs = getattr(step_fn, "samples_pairs", True)
    for step in bar:
        batch = sampler.sample(args.batch) if samples_pairs else None
        losses = step_fn(model, batch, args, rng, autocast)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        for key, value in losses.items():
            running[key] = running.get(key, 0.0) + float(value.detach())
        if (step + 1) % args.log_every == 0:
            record = {"step": step + 1, **{k: v / args.log_every for k, v in running.items()},
                      "seconds": round(time.time() - t_start, 1)}
            history.append(record)
            running = {}
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k not in ("step", "seconds")})
            with open(log_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1,
                        "sampler_rng": sampler.rng.bit_generator.state, "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "history": history}, checkpoint_path)

    provenance = {
        "stage": args.stage, "steps": max(start, args.steps), "batch": args.batch, "keypoints": args.keypoints,
        "crop": list(args.crop), "seed": args.seed, "lr": args.lr, "max_angle_deg": args.max_angle,
        "keypoint_frames": args.keypoint_frames, "descriptor_lr": args.descriptor_lr,
        "loss_weights": {"score": args.score_weight, "repeatability": args.repeatability_weight,
                         "equivariance": args.equivariance_weight, "predicted_frame": args.predicted_frame_weight,
                         "reprojection": args.reprojection_weight},
        "init": str(args.init) if args.init else None, "training_images": sampler.names,
        "descriptor": args.descriptor, "scale_range": list(args.scale_range),
        "final_losses": history[-1] if history else {}, "precision": args.precision,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.init:
        provenance["init_provenance"] = read_weights(args.init).get("provenance", {})
    if args.stage == "distill":
        provenance.update(patch_dataset=args.patch_dataset_info, distill_weight=args.distill_weight,
                          patch_batch=args.patch_batch, teacher_provenance=args.teacher_provenance)
        provenance["training_images"] = args.patch_dataset_info.get("training_images", [])
    save_weights(args.out, model.eval(), provenance)
    print(f"[rfnet-train] wrote {args.out} after {max(start, args.steps)} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
