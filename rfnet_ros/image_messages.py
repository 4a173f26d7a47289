"""sensor_msgs/Image and sensor_msgs/CompressedImage messages -> numpy arrays for the feature pipeline.

Nothing here imports rclpy: the functions take any object with the message's fields (an rclpy message, a
rosbags message, or a test double), so they are unit-tested without a ROS graph.

Raw images are wrapped without copying wherever possible: the array is a strided view of ``msg.data``
that honours ``step`` (row padding), and it keeps the message buffer alive. Only big-endian 16-bit data on
a little-endian machine (or the reverse) is copied, into native byte order.

Both input paths follow one policy (:func:`pixel_type_problem`, :func:`check_size`): the pixel types of the
supported encodings (8-bit unsigned with 1, 3 or 4 channels, 16-bit unsigned with 1), and at most
``max_pixels`` pixels. A compressed image's size
is read from its header (Pillow's lazy ``Image.open``, which parses only the header) before anything is
decoded, so a small file declaring a huge image costs nothing; its pixel type is checked on OpenCV's decoded
array, the same array type the raw path yields, so float (even all-NaN) and signed-integer files are refused
with the same reason as 32FC1 or 16SC1 raw images.
"""
from __future__ import annotations

import array
import io
import sys
import warnings
from struct import error as struct_error
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageRejected(ValueError):
    """An image message that cannot be used; ``reason`` says why in one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Encoding(NamedTuple):
    """How one ``sensor_msgs/Image`` encoding is laid out in memory."""

    dtype: type
    channels: int
    color_order: str  # "bgr" or "rgb": channel order for FeaturePipeline.process (ignored for mono)


ENCODINGS: dict[str, Encoding] = {
    "mono8": Encoding(np.uint8, 1, "bgr"),
    "8UC1": Encoding(np.uint8, 1, "bgr"),
    "mono16": Encoding(np.uint16, 1, "bgr"),
    "16UC1": Encoding(np.uint16, 1, "bgr"),
    "bgr8": Encoding(np.uint8, 3, "bgr"),
    "rgb8": Encoding(np.uint8, 3, "rgb"),
    "bgra8": Encoding(np.uint8, 4, "bgr"),
    "rgba8": Encoding(np.uint8, 4, "rgb"),
    # OpenCV's default channel order: cv_bridge writes 8UC3 for a cv::Mat of BGR pixels.
    "8UC3": Encoding(np.uint8, 3, "bgr"),
    "8UC4": Encoding(np.uint8, 4, "bgr"),
}
SUPPORTED_ENCODINGS = tuple(ENCODINGS)
# The pixel policy of both input paths, (sample type, channels) -> the encodings above: what the pipeline
# computes on.
PIXEL_TYPES = {(np.dtype(e.dtype), e.channels) for e in ENCODINGS.values()}
SUPPORTED_PIXELS = "8-bit unsigned with 1, 3 or 4 channels, or 16-bit unsigned with 1"
# The other OpenCV-style encodings of sensor_msgs (8SC1, 16UC3, 32FC1, 64FC4, 8UC2, ...) have a known pixel
# type outside the policy: they are refused for it, with the reason a compressed file of that type gets.
_CV_DEPTHS = {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16, "32S": np.int32,
              "32F": np.float32, "64F": np.float64}
_CV_ENCODINGS = {f"{depth}C{channels}": (np.dtype(dtype), channels)
                 for depth, dtype in _CV_DEPTHS.items() for channels in (1, 2, 3, 4)}
_LITTLE_ENDIAN_HOST = sys.byteorder == "little"


def pixel_type_problem(dtype: np.dtype, channels: int) -> str | None:
    """Why ``dtype`` x ``channels`` pixels are refused (the same words for both input paths), or None."""
    if (np.dtype(dtype), channels) in PIXEL_TYPES:
        return None
    return (f"pixel type {np.dtype(dtype).name} with {channels} channel(s) is not supported "
            f"(supported: {SUPPORTED_PIXELS})")


def check_size(width: int, height: int, max_pixels: int | None, source: str) -> None:
    """Raise :class:`ImageRejected` when a ``width`` x ``height`` image exceeds ``max_pixels`` (None: no bound)."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageRejected(f"image too large: {width}x{height} = {width * height} pixels exceeds max_image_pixels "
                            f"{max_pixels} ({source})")


def _byte_view(data) -> np.ndarray:
    """The message's data as a flat uint8 array, sharing memory when it exposes a buffer."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        # A plain list of ints (hand-built messages): one copy.
        return np.asarray(data, dtype=np.uint8).ravel()


def image_to_array(msg, max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """``sensor_msgs/Image`` -> ((H, W) or (H, W, C) array, color order "bgr"/"rgb").

    The array is uint8 or native-endian uint16, a view of ``msg.data`` (read-only when the data is) with
    rows ``msg.step`` bytes apart. Raises :class:`ImageRejected` for an unsupported encoding or pixel type,
    an empty image, one of more than ``max_pixels`` pixels, a ``step`` shorter than a row, or data shorter
    than ``step * height``.
    """
    encoding = ENCODINGS.get(msg.encoding)
    if encoding is None:
        problem = pixel_type_problem(*_CV_ENCODINGS[msg.encoding]) if msg.encoding in _CV_ENCODINGS else None
        if problem:
            raise ImageRejected(f"unsupported encoding {msg.encoding!r}: {problem}")
        raise ImageRejected(f"unsupported encoding {msg.encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageRejected(f"empty image: {width}x{height}")
    check_size(width, height, max_pixels, f"encoding {msg.encoding!r}")
    itemsize = np.dtype(encoding.dtype).itemsize
    row_bytes = width * encoding.channels * itemsize
    if step < row_bytes:
        raise ImageRejected(f"step {step} is shorter than a row of {width} {msg.encoding} pixels ({row_bytes} bytes)")
    data = _byte_view(msg.data)
    if data.size < step * height:
        raise ImageRejected(f"truncated data: {data.size} bytes, expected step*height = {step}*{height} = "
                            f"{step * height}")
    dtype = np.dtype(encoding.dtype)
    if itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    shape: tuple[int, ...] = (height, width)
    strides: tuple[int, ...] = (step, itemsize)
    if encoding.channels > 1:
        shape += (encoding.channels,)
        strides = (step, encoding.channels * itemsize, itemsize)
    array = np.ndarray(shape, dtype=dtype, buffer=data, strides=strides)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array, encoding.color_order


def compressed_size(data: np.ndarray, fmt: str) -> tuple[int, int]:
    """(width, height) declared by a compressed image's header, read without decoding the pixels.

    Raises :class:`ImageRejected` when no header Pillow knows is found: such data could not be bounded before
    decoding.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns of odd headers (they are refused below, or by the decoder) and of its own bound on
            # decoded size (a warning, then an error above twice Image.MAX_IMAGE_PIXELS): the caller's
            # max_pixels is the bound here, and it stays below Pillow's error threshold.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data.tobytes())) as header:
                return header.size
    except Image.DecompressionBombError:
        raise ImageRejected(f"image too large: more than {2 * Image.MAX_IMAGE_PIXELS} pixels declared, above "
                            f"max_image_pixels (format {fmt!r})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct_error) as exc:
        raise ImageRejected(f"compressed image does not decode (format {fmt!r}, {data.size} bytes): "
                            f"no image header found ({type(exc).__name__})") from None


def compressed_to_array(msg, max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """``sensor_msgs/CompressedImage`` (JPEG, PNG, or another format both Pillow and OpenCV read) -> (array, "bgr").

    The array is (H, W) or (H, W, 3|4), uint8 or uint16, in OpenCV's BGR(A) order. Raises
    :class:`ImageRejected` when the data is empty, has no header, declares more than ``max_pixels`` pixels
    (checked before decoding), does not decode, or decodes to a pixel type outside the policy.
    """
    data = _byte_view(msg.data)
    if data.size == 0:
        raise ImageRejected(f"empty compressed image (format {msg.format!r})")
    width, height = compressed_size(data, msg.format)
    check_size(width, height, max_pixels, f"format {msg.format!r}")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageRejected(f"compressed image does not decode (format {msg.format!r}, {data.size} bytes)")
    problem = pixel_type_problem(image.dtype, 1 if image.ndim == 2 else image.shape[2])
    if problem:
        raise ImageRejected(f"unsupported compressed image (format {msg.format!r}): {problem}")
    if image.shape[:2] != (height, width):
        raise ImageRejected(f"compressed image decodes to {image.shape[1]}x{image.shape[0]}, its header says "
                            f"{width}x{height} (format {msg.format!r})")
    return image, "bgr"


def array_to_image_fields(image: np.ndarray, color_order: str = "bgr") -> dict:
    """(H, W) uint8/uint16 or (H, W, 3|4) uint8 array -> keyword arguments of a ``sensor_msgs/Image``.

    Returns height, width, encoding, is_bigendian, step and data (rows packed, as ``array.array("B")``,
    which message setters take without a per-byte check): the inverse of :func:`image_to_array`, used by
    the player and the tests.
    """
    image = np.ascontiguousarray(image)
    if image.ndim == 2 and image.dtype == np.uint8:
        encoding = "mono8"
    elif image.ndim == 2 and image.dtype == np.uint16:
        encoding = "mono16"
    elif image.ndim == 3 and image.dtype == np.uint8 and image.shape[2] in (3, 4):
        encoding = ("bgr8" if color_order == "bgr" else "rgb8") if image.shape[2] == 3 else \
            ("bgra8" if color_order == "bgr" else "rgba8")
    else:
        raise ValueError(f"no sensor_msgs/Image encoding for a {image.dtype} array of shape {image.shape}")
    return {"height": image.shape[0], "width": image.shape[1], "encoding": encoding,
            "is_bigendian": int(not _LITTLE_ENDIAN_HOST and image.dtype.itemsize > 1),
            "step": image.strides[0], "data": _bytes_array(image)}


def _bytes_array(image: np.ndarray) -> array.array:
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(image).data.cast("B"))
    return data
