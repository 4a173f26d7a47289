"""A static keypoint mask (``mask_image``): where the robot's body, propellers or a window frame are in view."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_mask(path: Path) -> np.ndarray:
    """The (H, W) bool mask of an 8-bit image file (True where keypoints may be: non-zero pixels); ValueError
    naming ``mask_image`` when the file cannot be read as one."""
    if not path.is_file():
        raise ValueError(f"mask_image: {path} does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ValueError(f"mask_image: cannot read {path} as an image")
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"mask_image: {path} is not an 8-bit single-channel image "
                         f"({image.dtype}, {image.shape[2] if image.ndim == 3 else 1} channels)")
    return image > 0


class StaticMask:
    """The mask of ``mask_image`` for frames of its size; frames of another size get no mask, and the mismatch
    is reported once per frame size."""

    def __init__(self, path: Path | None):
        self.path = path
        self.mask = read_mask(path) if path is not None else None
        self._reported: set[tuple[int, int]] = set()
        self.status = "none" if self.mask is None else f"{self.mask.shape[1]}x{self.mask.shape[0]}, not used yet"

    def for_image(self, height: int, width: int) -> tuple[np.ndarray | None, str | None]:
        """The mask for a frame of ``height`` x ``width`` (None without one or on a size mismatch), and a note
        the first time frames of a mismatching size come."""
        if self.mask is None:
            return None, None
        mask_height, mask_width = self.mask.shape
        if (height, width) == (mask_height, mask_width):
            self.status = f"{mask_width}x{mask_height}, used"
            return self.mask, None
        self.status = f"not used: mask_image is {mask_width}x{mask_height}, frames are {width}x{height}"
        if (height, width) in self._reported:
            return None, None
        self._reported.add((height, width))
        return None, f"mask_image {self.path} not used: it is {mask_width}x{mask_height}, frames are {width}x{height}"
