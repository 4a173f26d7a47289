"""What the pipeline measures on an input image before it knows the image's keypoints.

Three things depend on the image alone: the pyramid every patch cut reads (``image_pyramid``), the
scale space the keypoints' characteristic scales are read from (``scale_space``) and the integral images
of the contrast test (``contrast_tables``). None needs the detector's output, so the pipeline computes them
beside the detector network (rfnet_ros.threads.start_beside) instead of after it: OpenCV's filters and the
inference engines release the interpreter lock, and the network leaves a core idle between its layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rfnet_ros.model.frames import scale_space
from rfnet_ros.model.patches import image_pyramid
from rfnet_ros.model.texture import contrast_tables


@dataclass
class ImageMeasures:
    """The keypoint-independent measurements of one (1, 1, H, W) image.

    pyramid: ``image_pyramid(image)``; stacks: ``scale_space(image)`` (None: keypoint frames not measured on
    the image); tables: ``contrast_tables(image)`` (None: no contrast test)."""

    pyramid: list[torch.Tensor]
    stacks: list[list[torch.Tensor]] | None
    tables: tuple[torch.Tensor, torch.Tensor] | None


def measure_image(image: torch.Tensor, frames: bool, contrast: bool) -> ImageMeasures:
    """:class:`ImageMeasures` of a (1, 1, H, W) image; the scale space only with ``frames`` (keypoint frames
    measured on the image) and the contrast tables only with ``contrast`` (a contrast test)."""
    return ImageMeasures(image_pyramid(image), scale_space(image) if frames else None,
                         contrast_tables(image) if contrast else None)


__all__ = ["ImageMeasures", "measure_image"]
