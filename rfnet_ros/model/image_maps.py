"""What the steps after the detector read of the input image, made once per frame: its pyramid (patch cuts,
orientation histograms, match refinement), its Laplacian scale space (keypoint scales measured on the image)
and its contrast tables (``min_contrast``).

They depend on the image only, not on the detector's output, so the pipeline makes them on a second thread
while the detector runs on the model-size copy (rfnet_ros.threads.in_background). On the 2-core development
machine (Intel Xeon with AMX) the detector graph and the scale space took 10.7 ms one after the other and
8.6 ms side by side: OpenCV's filters of one image gain nothing from a second thread, and the detector's
second thread is not busy all the time.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rfnet_ros.model.frames import scale_space
from rfnet_ros.model.patches import image_pyramid
from rfnet_ros.model.texture import contrast_tables


@dataclass
class ImageMaps:
    """One (1, 1, H, W) image's maps: ``pyramid`` (``image_pyramid``), ``scale_space`` (its stacks per octave,
    ``rfnet_ros.model.frames.scale_space``; None when not made) and ``contrast`` (``contrast_tables``; None when
    not made)."""

    pyramid: list[torch.Tensor]
    scale_space: list[torch.Tensor] | None = None
    contrast: tuple[torch.Tensor, torch.Tensor] | None = None


def image_maps(image: torch.Tensor, with_scale_space: bool, with_contrast: bool) -> ImageMaps:
    """The maps of a (1, 1, H, W) image: the pyramid always, the scale space and contrast tables when asked."""
    return ImageMaps(image_pyramid(image), scale_space(image)[0] if with_scale_space else None,
                     contrast_tables(image) if with_contrast else None)
