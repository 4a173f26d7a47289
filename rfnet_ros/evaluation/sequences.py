"""VO-style sequences: a camera drifting smoothly over a photographed plane, matched frame to frame.

Each sequence is made from one photo of the split (resized to cover the frame size, as the pairs are).
Frame t shows the photo through the homography H_t = Warp(roll(t), zoom(t), tilt(t), shift(t)) of
``rfnet_ros.evaluation.warps`` about the frame centre, so the ground truth between consecutive frames is
H_{t-1 -> t} = H_t · H_{t-1}^-1. The path's parameters are smooth functions of u = t / (frames - 1),
drawn per sequence from ``default_rng((seed, crc32(photo name), 20))``:

- roll(u) = A_roll · sin(π f u + φ) with A_roll up to ``MAX_ROLL`` degrees (a slow roll);
- zoom(u) = exp(A_zoom · sin(π f' u + φ')), A_zoom up to ``MAX_LOG_ZOOM``;
- shift(u): a drift of up to ``MAX_DRIFT`` of the frame size over the sequence plus a small sway;
- tilt(u): a slowly changing perspective tilt up to ``MAX_TILT``;
- exposure: gain exp(A_gain · sin(π g u + ψ)) with A_gain up to ``MAX_LOG_GAIN``, then sensor noise
  (sigma up to ``MAX_NOISE``), and motion blur along the frame centre's motion since the previous
  frame, of length ``BLUR_SHARE`` of that motion (an exposure of that share of the frame interval).

Metrics of a method on a sequence (``sequence_metrics``): for every consecutive frame pair, the pair
metrics of ``rfnet_ros.evaluation.metrics`` (MMA@3 is the correct-match ratio, correct@3 the correct
matches per frame pair, homography accuracy@3), and tracks: correct matches (within 3 px under the true
H) chained from frame to frame; a track's length is the number of frames it spans (2 for one match). Mean
track length and the share of tracks alive after 5 and 10 frames (length >= 5, >= 10) are over all
tracks of the sequence (tracks still alive at the last frame are cut there).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.evaluation.metrics import evaluate_pair, warp_points
from rfnet_ros.evaluation.pairs import SIZE, photo_paths, read_gray, reference_and_source, to_uint8
from rfnet_ros.evaluation.warps import Warp

FRAMES = 30
MAX_ROLL = 20.0
MAX_LOG_ZOOM = 0.25
MAX_DRIFT = 0.2
MAX_TILT = 0.15
MAX_LOG_GAIN = 0.4
MAX_NOISE = 0.02
BLUR_SHARE = 0.5
TRACK_THRESHOLD = 3.0
# Fast-roll sequences (``motion="fast_roll"``): the camera rolls about its optical axis at a constant rate
# drawn from this range (degrees per frame, either direction), drifting sideways as the smooth path does.
FAST_ROLL_DEG = (8.0, 15.0)
MOTIONS = ("smooth", "fast_roll")
ALIVE_AFTER = (5, 10)


@dataclass
class Sequence:
    """Frames (grayscale uint8) and homographies[t]: frame-0 px -> frame-t px (homographies[0] = I)."""

    name: str
    frames: list[np.ndarray]
    homographies: list[np.ndarray]

    def step(self, t: int) -> np.ndarray:
        """The homography from frame t - 1 to frame t."""
        h = self.homographies[t] @ np.linalg.inv(self.homographies[t - 1])
        return h / h[2, 2]


def camera_path(rng: np.random.Generator, frames: int, height: int, width: int) -> list[Warp]:
    """The smooth path's warp of each frame, relative to the photo's centred crop (module docstring)."""
    u = np.linspace(0.0, 1.0, frames)

    def wave(amplitude: float) -> np.ndarray:
        return amplitude * np.sin(np.pi * rng.uniform(0.5, 1.5) * u + rng.uniform(0, 2 * np.pi))

    roll = wave(rng.uniform(0.3, 1.0) * MAX_ROLL)
    zoom = np.exp(wave(rng.uniform(0.3, 1.0) * MAX_LOG_ZOOM))
    direction = rng.uniform(0, 2 * np.pi)
    drift = rng.uniform(0.3, 1.0) * MAX_DRIFT * u
    shift_x = (drift * np.cos(direction) + wave(0.02)) * width
    shift_y = (drift * np.sin(direction) + wave(0.02)) * height
    tilt_x, tilt_y = wave(rng.uniform(0, 1) * MAX_TILT), wave(rng.uniform(0, 1) * MAX_TILT)
    warps = [Warp(float(roll[t]), float(zoom[t]), (float(tilt_x[t]), float(tilt_y[t])),
                  (float(shift_x[t]), float(shift_y[t]))) for t in range(frames)]
    return warps


def fast_roll_path(rng: np.random.Generator, frames: int, height: int, width: int) -> list[Warp]:
    """A constant fast roll (``FAST_ROLL_DEG`` per frame) with a slow sideways drift, about the frame centre."""
    rate = rng.uniform(*FAST_ROLL_DEG) * rng.choice([-1.0, 1.0])
    direction = rng.uniform(0, 2 * np.pi)
    drift = rng.uniform(0.3, 1.0) * MAX_DRIFT * np.linspace(0.0, 1.0, frames)
    return [Warp(float(rate * t), 1.0, (0.0, 0.0), (float(drift[t] * np.cos(direction) * width),
                                                   float(drift[t] * np.sin(direction) * height)))
            for t in range(frames)]


PATHS = {"smooth": camera_path, "fast_roll": fast_roll_path}


def motion_blur(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Blur along the (dx, dy) motion by a centred line kernel of that length (no blur below 1 px)."""
    length = float(np.hypot(*motion))
    if length < 1.0:
        return image
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    d = motion / length * (length / 2)
    cv2.line(kernel, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))),
             1.0, 1, cv2.LINE_AA)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def photo_sequence(name: str, photo: np.ndarray, seed: int, frames: int = FRAMES,
                   size: tuple[int, int] = SIZE, motion: str = "smooth") -> Sequence:
    """One sequence of ``frames`` frames over ``photo`` (module docstring) along the ``motion`` path (one of
    ``MOTIONS``)."""
    h, w = size
    _, source, to_crop = reference_and_source(photo, size)
    rng = np.random.default_rng((seed, zlib.crc32(name.encode()), 20))
    warps = PATHS[motion](rng, frames, h, w)
    first = np.linalg.inv(warps[0].homography(h, w))
    gain = np.exp(rng.uniform(0.3, 1.0) * MAX_LOG_GAIN * np.sin(np.pi * rng.uniform(0.5, 1.5)
                                                                  * np.linspace(0, 1, frames) + rng.uniform(0, 6.3)))
    noise = rng.uniform(0.003, MAX_NOISE)
    images, homographies = [], []
    centre = np.array([[(w - 1) / 2.0, (h - 1) / 2.0]])
    for t, warp in enumerate(warps):
        homography = warp.homography(h, w) @ first
        homography /= homography[2, 2]
        view = cv2.warpPerspective(source, warp.homography(h, w) @ to_crop, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
        if t > 0:
            # The frame centre's motion since the previous frame, in this frame's pixels.
            previous = warp_points(homographies[-1] @ np.linalg.inv(homography), centre)[0]
            view = motion_blur(view, BLUR_SHARE * (centre[0] - previous))
        view = view * gain[t] + rng.normal(0.0, noise, size=view.shape)
        images.append(to_uint8(np.clip(view, 0.0, 1.0)))
        homographies.append(homography)
    return Sequence(name, images, homographies)


def sequences(folder: Path, seed: int, frames: int = FRAMES, size: tuple[int, int] = SIZE,
              max_photos: int | None = None, motion: str = "smooth") -> list[Sequence]:
    """One sequence per photo of ``folder`` (sorted by name) along the ``motion`` path."""
    return [photo_sequence(path.stem, read_gray(path), seed, frames, size, motion)
            for path in photo_paths(folder, max_photos)]


def chain_tracks(correct_matches: list[np.ndarray]) -> list[int]:
    """Track lengths (frames) from each consecutive frame pair's correct matches (M_t, 2) (index in frame
    t - 1, index in frame t), t = 1..T-1: a match continues the track that ended at its first keypoint."""
    lengths: list[int] = []
    alive: dict[int, int] = {}
    for matches in correct_matches:
        following: dict[int, int] = {}
        for i, j in np.asarray(matches, np.int64).reshape(-1, 2):
            following[int(j)] = alive.pop(int(i), 1) + 1
        lengths += alive.values()
        alive = following
    return lengths + list(alive.values())


def track_summary(lengths: list[int]) -> dict[str, float]:
    """Number of tracks, mean length and the share alive after ``ALIVE_AFTER`` frames."""
    out = {"tracks": float(len(lengths)), "mean_track_length": float(np.mean(lengths)) if lengths else 0.0}
    for n in ALIVE_AFTER:
        out[f"alive@{n}"] = float(np.mean([length >= n for length in lengths])) if lengths else 0.0
    return out


def sequence_metrics(features: list, match_features, sequence: Sequence) -> tuple[list[dict], dict[str, float]]:
    """Per frame pair metrics and the sequence's summary for one method.

    ``features``: each frame's :class:`~rfnet_ros.evaluation.extractors.Features`; ``match_features``: the
    method's ``match_features(f0, f1)`` -> matches and the keypoints of f1 they are measured at.
    """
    pairs, correct_matches = [], []
    for t in range(1, len(sequence.frames)):
        f0, f1 = features[t - 1], features[t]
        matches, keypoints1 = match_features(f0, f1)
        step = sequence.step(t)
        metrics = evaluate_pair(f0.keypoints, f1.keypoints, matches, step, sequence.frames[t - 1].shape,
                                sequence.frames[t].shape, mma_thresholds=(1, 3, 5), ha_thresholds=(3, 5),
                                matched_keypoints1=keypoints1)
        error = np.linalg.norm(warp_points(step, f0.keypoints[matches[:, 0]]) - keypoints1[matches[:, 1]], axis=1)
        correct_matches.append(matches[np.nan_to_num(error, nan=np.inf) <= TRACK_THRESHOLD])
        pairs.append({"pair": f"{sequence.name}/{t - 1}-{t}", "sequence": sequence.name, "mma@3": metrics.mma[3],
                      "correct@3": metrics.correct[3], "matches": metrics.matches, "ha@3": float(metrics.ha[3]),
                      "keypoints": (metrics.keypoints0 + metrics.keypoints1) / 2})
    summary = {"sequence": sequence.name, "frames": len(sequence.frames),
               **{k: float(np.mean([p[k] for p in pairs])) for k in ("mma@3", "correct@3", "matches", "ha@3",
                                                                         "keypoints")},
               **track_summary(chain_tracks(correct_matches))}
    return pairs, summary
