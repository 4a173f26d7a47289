"""The ROS-free feature pipeline: image array in; keypoints, descriptors, matches and stage timings out.

Training, evaluation, the command-line tools and the ROS node all call this; none re-implements a step.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from rfnet_ros.config import FeatureConfig
from rfnet_ros.engines import build_engine
from rfnet_ros.matching import match_mutual_nn
from rfnet_ros.matching.narrow_check import NarrowCheck, check_wide_windows
from rfnet_ros.matching.refinement import FramedKeypoints, RefinementSettings, prepare_refinement, refine_matches
from rfnet_ros.model.detector import DetectorMaps
from rfnet_ros.model.image_maps import ImageMaps, image_maps
from rfnet_ros.model.patches import extract_patches, orientation_angle
from rfnet_ros.model.rfnet import keypoints_from_maps, model_input
from rfnet_ros.model.texture import local_contrast
from rfnet_ros.threads import in_background
from rfnet_ros.timing import StageTimer

STAGES = ("convert", "preprocess", "detect", "describe", "match")


def to_gray(image: np.ndarray, color_order: str = "bgr") -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8/uint16/float array -> (H, W) array of the same dtype.

    Colour uses ITU-R BT.601 luma weights; ``color_order`` says whether channels are "bgr" or "rgb"
    (a fourth, alpha, channel is ignored).
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        weights = np.array([0.114, 0.587, 0.299] if color_order == "bgr" else [0.299, 0.587, 0.114], np.float32)
        gray = image[..., :3].astype(np.float32) @ weights
        if image.dtype != np.float32:
            gray = np.rint(gray).astype(image.dtype)
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 1|3|4), got shape {image.shape}")
    if gray.shape[0] == 0 or gray.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    return gray


def _scale_of(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if dtype in (np.float32, np.float64):
        return 1.0
    raise ValueError(f"unsupported image dtype {dtype} (use uint8, uint16 or float in [0, 1])")


def image_tensor(image: np.ndarray, color_order: str, device: torch.device) -> torch.Tensor:
    """An image array (``to_gray``'s inputs) -> (1, 1, H, W) float32 grey levels in [0, 1] on ``device``."""
    gray = to_gray(image, color_order)
    tensor = torch.from_numpy(np.ascontiguousarray(gray)).to(device, non_blocking=True)
    return (tensor.float() / _scale_of(gray.dtype))[None, None]


class KeypointFrames(Protocol):
    """Keypoints with their frames: keypoints (N, 2) x, y px; scales (N,) patch half-width px; orientations (N,)
    radians. :class:`FrameFeatures` is one."""

    keypoints: np.ndarray
    scales: np.ndarray
    orientations: np.ndarray


@dataclass
class FrameFeatures:
    """Features of one frame, in the input image's pixel grid.

    keypoints: (N, 2) float32 sub-pixel (x, y); scores: (N,); scales: (N,) patch half-width in px;
    orientations: (N,) radians; descriptors: (N, 128) float32 unit rows; image_size: (height, width).
    descriptor_hypotheses: with ``second_peak_ratio`` < 1, (N, 3, 128): each keypoint described under its
    frame, its second scale and its second orientation (a copy of the first where it has no such peak);
    matching takes the closest pair of descriptions. None otherwise.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    scales: np.ndarray
    orientations: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int]
    descriptor_hypotheses: np.ndarray | None = None

    @property
    def matchable(self) -> np.ndarray:
        """What the matcher compares: the descriptor hypotheses where there are some, else the descriptors."""
        return self.descriptors if self.descriptor_hypotheses is None else self.descriptor_hypotheses

    def __len__(self) -> int:
        return len(self.keypoints)

    def take(self, index: np.ndarray) -> FrameFeatures:
        """The features of the keypoints at ``index`` (N,) int, in that order."""
        hypotheses = None if self.descriptor_hypotheses is None else self.descriptor_hypotheses[index]
        return FrameFeatures(self.keypoints[index], self.scores[index], self.scales[index],
                             self.orientations[index], self.descriptors[index], self.image_size, hypotheses)



@dataclass
class MatchState:
    """What matching and refinement need of a frame: its descriptions (N, D) or (N, H, D) and its keypoints in
    their frames on the image they were measured on. The pipeline keeps the previous frame's state in
    ``process``; the front end (rfnet_ros.tracking.tracker) keeps its own."""

    matchable: torch.Tensor
    keypoints: FramedKeypoints

    def take(self, index: np.ndarray) -> MatchState:
        """The state of the keypoints at ``index`` (N,) int, in that order."""
        rows = torch.as_tensor(index, device=self.matchable.device, dtype=torch.long)
        return MatchState(self.matchable[rows], self.keypoints.take(rows))



@dataclass
class FrameResult:
    """Features of a frame, its matches to the previous frame and how long each stage took.

    matches: (M, 2) int64 (index in the previous frame, index in this frame); match_distances: (M,) float32;
    timings: stage -> ms for ``STAGES``; has_previous: whether a previous frame existed to match.
    """

    features: FrameFeatures
    matches: np.ndarray
    match_distances: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    has_previous: bool = False


@dataclass
class _Selected:
    """One frame's valid keypoints before description: xy (N, 2) px, radius (N,), direction (N, 2) unit (cos,
    sin), score (N,); alternatives: (radius (N,), direction (N, 2), index (A,) of the keypoints that have it)."""

    xy: torch.Tensor
    radius: torch.Tensor
    direction: torch.Tensor
    score: torch.Tensor
    alternatives: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class FeaturePipeline:
    """Lightweight RF-Net on numpy frames; keeps the previous frame's descriptors to match against.

    The networks run in an inference engine (rfnet_ros.engines, setting ``engine``); everything between them
    (resizing, keypoint selection and frames, patch sampling, matching) runs here in PyTorch.
    """

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.engine = build_engine(self.config)
        self._previous: MatchState | None = None
        if self.config.refine_matches:
            prepare_refinement(self.device)

    def configure(self, config: FeatureConfig) -> bool:
        """Use ``config`` from the next frame; the engine is rebuilt only when a setting it was built for changed
        (``FeatureConfig.engine_settings``). Returns whether earlier frames' descriptions stay comparable with the
        next ones (not when the weights, precision or engine changed); when not, the previous frame is
        forgotten."""
        comparable = True
        if any(getattr(config, key) != getattr(self.config, key) for key in FeatureConfig.engine_settings()):
            self.engine = build_engine(config)
            comparable = (config.weights, config.precision, config.engine) == (self.config.weights,
                                                                                self.config.precision,
                                                                                self.config.engine)
        if not comparable:
            self._previous = None
        if config.refine_matches:
            prepare_refinement(self.device)
        self.config = config
        return comparable

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def detector_precision(self) -> str:
        return self.engine.detector_precision

    def reset(self) -> None:
        """Forget the previous frame (the next frame is matched to nothing)."""
        self._previous = None

    def new_timer(self) -> StageTimer:
        """A stage timer for one frame on this pipeline's device."""
        return StageTimer(self.device)

    def extract_frame(self, image: np.ndarray, color_order: str, timer: StageTimer, mask: np.ndarray | None = None
                      ) -> tuple[FrameFeatures, MatchState]:
        """Features of one frame and the state ``match_frames`` needs of it; stages timed in ``timer``.

        ``mask``: (H, W) bool of the image's size, False where no keypoint may be: the detector's response is
        cleared there before keypoints are selected (the top-k goes to the rest of the image) and a keypoint
        whose centre falls there is dropped before it is described.
        """
        return self.extract_frames([image], color_order, timer, [mask])[0]

    @torch.inference_mode()
    def extract_frames(self, images: list[np.ndarray], color_order: str, timer: StageTimer,
                       masks: list[np.ndarray | None] | None = None) -> list[tuple[FrameFeatures, MatchState]]:
        """``extract_frame`` of several frames (the two images of a stereo pair; ``masks`` one per frame or None),
        with the networks run once for all of them: the descriptor on every frame's patches in one call, and the
        detector in one batch when the frames share a size (``Engine.detect_batch``)."""
        cfg = self.config
        with timer.stage("convert"):
            tensors = [image_tensor(image, color_order, self.device) for image in images]
            allowed = [None if mask is None else torch.from_numpy(np.ascontiguousarray(mask)).to(self.device)
                       for mask in (masks or [None] * len(images))]
        with timer.stage("preprocess"):
            smalls = [model_input(tensor, cfg.model_size) for tensor in tensors]
        with timer.stage("detect"):
            # What the frames, contrast and patch cuts read of each image is made on a second thread while the
            # detector runs (rfnet_ros.model.image_maps).
            measuring = in_background(lambda: [image_maps(tensor, cfg.keypoint_frames == "image", cfg.min_contrast > 0)
                                               for tensor in tensors])
            if len({tuple(tensor.shape) for tensor in tensors}) == 1:
                maps = self.engine.detect_batch(torch.cat(smalls))
            else:
                maps = [self.engine.detect(small) for small in smalls]
            measured = measuring.result()
            selected = [self._select(*frame) for frame in zip(maps, smalls, tensors, measured, allowed)]
        pyramids = [image.pyramid for image in measured]
        with timer.stage("describe"):
            # Every description of every frame in one engine call: per frame, one patch cut of each keypoint under
            # its frame, then of the keypoints with a second peak under that frame (the others repeat their
            # descriptor).
            patches = [extract_patches(
                tensor, torch.cat([k.xy, *(k.xy[index] for _, _, index in k.alternatives)]),
                torch.cat([k.radius, *(radius[index] for radius, _, index in k.alternatives)]),
                torch.cat([k.direction, *(direction[index] for _, direction, index in k.alternatives)]),
                self.engine.patch_size, pyramid) for tensor, k, pyramid in zip(tensors, selected, pyramids)]
            hypotheses = []
            for k, described in zip(selected, self._split(self.engine.describe(torch.cat(patches)), patches)):
                descriptors, start = described[:len(k.xy)], len(k.xy)
                frame_hypotheses = [descriptors]
                for _, _, index in k.alternatives:
                    alternative = descriptors.clone()
                    alternative[index] = described[start:start + len(index)]
                    start += len(index)
                    frame_hypotheses.append(alternative)
                hypotheses.append(frame_hypotheses)
        results = []
        for tensor, pyramid, k, frame_hypotheses in zip(tensors, pyramids, selected, hypotheses):
            described = frame_hypotheses[0]
            matchable = torch.stack(frame_hypotheses, dim=1) if len(frame_hypotheses) > 1 else described
            features = FrameFeatures(
                keypoints=k.xy.float().cpu().numpy(), scores=k.score.float().cpu().numpy(),
                scales=k.radius.float().cpu().numpy(),
                orientations=orientation_angle(k.direction).float().cpu().numpy(),
                descriptors=described.cpu().numpy(), image_size=(int(tensor.shape[2]), int(tensor.shape[3])),
                descriptor_hypotheses=matchable.cpu().numpy() if len(frame_hypotheses) > 1 else None)
            results.append((features, MatchState(matchable, FramedKeypoints(tensor, k.xy, k.radius, k.direction,
                                                                                 pyramid))))
        return results

    def _select(self, maps: DetectorMaps, small: torch.Tensor, tensor: torch.Tensor, measured: ImageMaps,
                allowed: torch.Tensor | None) -> _Selected:
        """The valid keypoints of one frame from its detector maps (keypoint selection, frames, mask, contrast)."""
        cfg = self.config
        if allowed is not None:  # a model pixel counts as allowed when every input pixel under it is
            coverage = F.interpolate(allowed[None, None].float(), size=small.shape[-2:], mode="area")
            maps = dataclasses.replace(maps, score=maps.score * (coverage > 1 - 1e-6))
        keypoints = keypoints_from_maps(maps, small, tensor, cfg.keypoint_settings, measured)
        valid = keypoints.valid[0]
        if allowed is not None:
            pixel = keypoints.xy[0].round().long()
            pixel[:, 0].clamp_(0, allowed.shape[1] - 1)
            pixel[:, 1].clamp_(0, allowed.shape[0] - 1)
            valid = valid & allowed[pixel[:, 1], pixel[:, 0]]
        if cfg.min_contrast > 0:  # flat surroundings: no keypoint, whatever the detector scored
            valid = valid & (local_contrast(tensor, keypoints.xy[0], keypoints.scale[0], measured.contrast)
                             > cfg.min_contrast)
        alternatives = [(alt_radius[0][valid], alt_direction[0][valid], present[0][valid].nonzero().squeeze(1))
                        for alt_radius, alt_direction, present in keypoints.alternative_frames]
        return _Selected(keypoints.xy[0][valid], keypoints.scale[0][valid], keypoints.orientation[0][valid],
                         keypoints.score[0][valid], alternatives)

    @staticmethod
    def _split(descriptors: torch.Tensor, patches: list[torch.Tensor]) -> list[torch.Tensor]:
        """One describe call's descriptors split back into the frames whose ``patches`` went into it."""
        return list(torch.split(descriptors, [len(p) for p in patches]))

    def extract(self, image: np.ndarray, color_order: str = "bgr") -> FrameFeatures:
        """Keypoints and descriptors of one frame, without matching."""
        return self.extract_frame(image, color_order, self.new_timer())[0]

    @torch.inference_mode()
    def match(self, desc0: np.ndarray | torch.Tensor,
              desc1: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mutual nearest-neighbour matches (M, 2) and distances (M,) with this pipeline's thresholds.

        Takes descriptors (N, D) or descriptor hypotheses (N, H, D), e.g. ``FrameFeatures.matchable``.
        """
        d0, d1 = (torch.as_tensor(d, device=self.device) for d in (desc0, desc1))
        matches, distances = match_mutual_nn(d0, d1, self.config.match_max_distance, self.config.match_ratio)
        return matches.cpu().numpy(), distances.cpu().numpy()

    @torch.inference_mode()
    def refine(self, image0: np.ndarray, features0: KeypointFrames, image1: np.ndarray, features1: KeypointFrames,
               matches: np.ndarray, color_order: str = "bgr", with_aligned: bool = False
               ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """``features1.keypoints`` (N1, 2) with each keypoint of ``matches`` (M, 2: index in features0, index in
        features1) moved to where it aligns with its match (:func:`rfnet_ros.matching.refinement.refine_matches`);
        the images are the ones the features were extracted from. With ``with_aligned`` also which matches (M,)
        bool the refinement aligned (what ``refine_drop_unaligned`` keeps)."""
        def frame(image: np.ndarray, features: KeypointFrames) -> FramedKeypoints:
            xy, radius, angle = (torch.as_tensor(array, device=self.device).float()
                                 for array in (features.keypoints, features.scales, features.orientations))
            return FramedKeypoints(image_tensor(image, color_order, self.device), xy, radius,
                                   torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1))

        refined, aligned = self._refined(frame(image0, features0), frame(image1, features1),
                                         torch.as_tensor(matches, device=self.device).long())
        refined = refined.cpu().numpy().astype(np.float32)
        return (refined, aligned.cpu().numpy()) if with_aligned else refined

    def _refined(self, keypoints0: FramedKeypoints, keypoints1: FramedKeypoints, matches: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """keypoints1's xy with the keypoints matched to keypoints0 (``matches`` (M, 2)) refined, and which
        matches (M,) the refinement aligned; with ``refine_narrow_window`` the matches of wide windows are
        checked in narrow ones (``check_wide_windows``)."""
        cfg = self.config
        settings = RefinementSettings(max_window=cfg.refine_max_window, size=cfg.refine_window_samples,
                                      samples=cfg.refine_aligned_samples)
        first, second = keypoints0.take(matches[:, 0]), keypoints1.take(matches[:, 1])
        moved, aligned = refine_matches(first, second, settings)
        if cfg.refine_narrow_window > 0:
            moved = check_wide_windows(first, second, moved, settings, NarrowCheck(window=cfg.refine_narrow_window))
        xy = keypoints1.xy.clone()
        xy[matches[:, 1]] = moved
        return xy, aligned

    def match_frames(self, previous: MatchState, current: MatchState, features: FrameFeatures,
                     timer: StageTimer, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mutual nearest-neighbour matches (M, 2) of ``current`` to ``previous`` and their distances (M,), timed
        as "match"; ``allowed`` (N0, N1) bool, when given, limits the pairs that may match (a search window, a
        stereo pair's row band). With ``refine_matches`` the matched keypoints of ``current`` (and
        ``features.keypoints``) are placed where they align with their matches (``refine``)."""
        with timer.stage("match"), torch.inference_mode():
            window = None if allowed is None else torch.from_numpy(allowed).to(self.device)
            matches, distances = match_mutual_nn(previous.matchable, current.matchable,
                                                 self.config.match_max_distance, self.config.match_ratio, window)
            if self.config.refine_matches and len(matches):
                refined, aligned = self._refined(previous.keypoints, current.keypoints, matches)
                current.keypoints = dataclasses.replace(current.keypoints, xy=refined)
                features.keypoints = refined.float().cpu().numpy()
                if self.config.refine_drop_unaligned:  # not placed to better than the detector's ~2 px
                    matches, distances = matches[aligned], distances[aligned]
            return matches.cpu().numpy(), distances.float().cpu().numpy()

    def process(self, image: np.ndarray, color_order: str = "bgr") -> FrameResult:
        """Features of ``image`` and its matches to the previous processed frame (``match_frames``)."""
        timer = self.new_timer()
        features, state = self.extract_frame(image, color_order, timer)
        has_previous = self._previous is not None
        if has_previous:
            matches, distances = self.match_frames(self._previous, state, features, timer)
        else:
            matches, distances = np.zeros((0, 2), np.int64), np.zeros((0,), np.float32)
        self._previous = state
        return FrameResult(features, matches, distances, timer.results(), has_previous)
