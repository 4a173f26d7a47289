"""RF-Net: detector + HardNet descriptor, and the geometry that ties model and input resolutions together."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rfnet_ros.config import KeypointSettings
from rfnet_ros.model.descriptor import DESCRIPTORS
from rfnet_ros.model.detector import Detector, DetectorMaps, learned_frames
from rfnet_ros.model.frames import measure_frames
from rfnet_ros.model.image_maps import ImageMaps
from rfnet_ros.model.keypoints import select_keypoints
from rfnet_ros.model.patches import halved


@dataclass
class KeypointBatch:
    """Keypoints of a batch of B frames in input pixels, fixed size K with a validity mask.

    xy: (B, K, 2) sub-pixel (x, y); score: (B, K); scale: (B, K) patch half-width in input px;
    orientation: (B, K, 2) unit (cos, sin); valid: (B, K) bool.
    alternative_frames: further (scale, orientation, present) frames to describe each keypoint under, shaped
    like scale, orientation and valid; ``present`` marks the keypoints that have that alternative.
    """

    xy: torch.Tensor
    score: torch.Tensor
    scale: torch.Tensor
    orientation: torch.Tensor
    valid: torch.Tensor
    alternative_frames: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)


def model_to_input(xy: torch.Tensor, ratio_x: float, ratio_y: float) -> torch.Tensor:
    """Map (..., 2) model-resolution pixel coordinates to input pixels (pixel centres, separate x/y ratios)."""
    ratio = xy.new_tensor([ratio_x, ratio_y])
    return (xy + 0.5) * ratio - 0.5


def model_input(image: torch.Tensor, model_size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) image at input resolution -> the detector's input at ``model_size`` (area-resized)."""
    if tuple(image.shape[-2:]) == tuple(model_size):
        return image
    if tuple(image.shape[-2:]) == (2 * model_size[0], 2 * model_size[1]):
        return halved(image)  # the same 2 x 2 means, several times faster
    return F.interpolate(image, size=tuple(model_size), mode="area")


def keypoints_from_maps(maps: DetectorMaps, small: torch.Tensor, image: torch.Tensor,
                        settings: KeypointSettings, measured: ImageMaps | None = None) -> KeypointBatch:
    """Keypoints in input px from the detector's maps of ``small``, the (B, 1, h, w) model-resolution copy of
    ``image``, the (B, 1, H, W) input.

    ``settings.keypoint_frames`` says where each keypoint's scale and orientation come from: ``learned``, the
    detector's heads (RF-Net); ``image``, measured on the input image (rfnet_ros.model.frames): the
    characteristic scale of the Laplacian and the dominant gradient direction. With image frames, keypoints
    whose score times image contrast is at most ``min_strength`` are marked invalid, and a second scale or
    orientation peak reaching ``second_peak_ratio`` of the first becomes an alternative frame
    (``KeypointBatch.alternative_frames``; 1.0: none); with ``require_scale_peak`` keypoints whose Laplacian
    has no peak within the scales searched are marked invalid. ``measured``: the maps of ``image`` (one image,
    B = 1) when the caller has made them (:func:`rfnet_ros.model.image_maps.image_maps`).
    """
    h, w = image.shape[-2:]
    mh, mw = small.shape[-2:]
    xy_model, score, valid = select_keypoints(maps.score, settings.top_k, settings.nms_size, settings.border,
                                              settings.score_threshold)
    ratio_x, ratio_y = w / mw, h / mh
    xy = model_to_input(xy_model, ratio_x, ratio_y)
    if settings.keypoint_frames == "learned":
        scale, orientation = learned_frames(maps, xy_model)
        # A keypoint of scale s is described by a 2s x 2s square (the patch half-width is the scale); patches
        # stay square: the half-width uses the geometric mean of the two resize ratios.
        return KeypointBatch(xy, score, scale * (ratio_x * ratio_y) ** 0.5, orientation, valid)
    second_peak_ratio = settings.second_peak_ratio
    frames = measure_frames(image, xy, second_peaks=second_peak_ratio < 1, second_scale_min_ratio=second_peak_ratio,
                            pyramid=measured.pyramid if measured else None,
                            stacks=[measured.scale_space] if measured and measured.scale_space else None)
    if settings.min_strength > 0:
        # The detector's instance normalisation removes the image's contrast, so its score ignores how
        # faint a structure is; the Laplacian contrast puts that back, as SIFT's contrast threshold does.
        valid = valid & (score * frames.contrast > settings.min_strength)
    if settings.require_scale_peak:
        valid = valid & frames.scale_peaked
    keypoints = KeypointBatch(xy, score, frames.radius, frames.direction, valid)
    if second_peak_ratio < 1:
        def present(peak_ratio: torch.Tensor) -> torch.Tensor:  # a ratio of 0 means no second peak
            return (peak_ratio >= second_peak_ratio) & (peak_ratio > 0)

        keypoints.alternative_frames = [
            (frames.second_radius, frames.second_radius_direction, present(frames.second_scale_ratio)),
            (frames.radius, frames.second_direction, present(frames.second_orientation_ratio))]
    return keypoints


class RFNet(nn.Module):
    """Detector and descriptor of one weights file (keypoint selection between them: :func:`keypoints_from_maps`).

    ``descriptor`` names the patch descriptor (``DESCRIPTORS``: hardnet, as in RF-Net, or hardnet_lite);
    ``detector_norm`` the detector's normalisation (``rfnet_ros.model.detector.NORMS``).
    """

    def __init__(self, replaced_layers: int = 0, descriptor: str = "hardnet", detector_norm: str = "instance"):
        super().__init__()
        if descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor: {descriptor!r} is not one of {', '.join(DESCRIPTORS)}")
        self.detector = Detector(replaced_layers, norm=detector_norm)
        self.descriptor = DESCRIPTORS[descriptor]()
        self.descriptor_name = descriptor

    @property
    def replaced_layers(self) -> int:
        return self.detector.replaced_layers
