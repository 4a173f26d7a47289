"""Image sizes written on command lines: "AxB", read in one stated order.

The frame tools (rfnet-track, rfnet-bag, the player, the demo) take ``--resize WxH`` (width first, as
OpenCV's ``cv2.resize`` does); rfnet-eval's ``--model-size HxW`` takes height first (as the model_height and
model_width settings and the (H, W) array shapes do). Both are read by :func:`parse_size` with the order named.
"""
from __future__ import annotations

import argparse

ORDERS = {"WxH": ("WIDTH", "HEIGHT", "320x240"), "HxW": ("HEIGHT", "WIDTH", "480x640")}


def parse_size(text: str, order: str = "WxH") -> tuple[int, int]:
    """``text`` "AxB" -> (A, B), two positive integers in ``order``: "WxH" -> (width, height), "HxW" -> (height,
    width). Raises argparse.ArgumentTypeError naming the expected form."""
    first, second, example = ORDERS[order]
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {first}x{second}, e.g. {example}, got {text!r}") from None
    if a <= 0 or b <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return a, b
