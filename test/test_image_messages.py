"""Unit tests of rfnet_ros.image_messages: every encoding, row padding, byte order, rejections.

Fast and without a ROS graph: messages are plain namespaces with the sensor_msgs fields, and, where the
ROS 2 Python packages are importable, real sensor_msgs messages (which hold their data in array.array).
"""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from fuzz_cases import huge_png

from rfnet_ros.image_messages import (
    SUPPORTED_ENCODINGS,
    ImageRejected,
    array_to_image_fields,
    compressed_to_array,
    image_to_array,
)

RNG = np.random.default_rng(0)


def raw_message(array: np.ndarray, encoding: str, step: int | None = None, bigendian: bool = False,
                data: bytes | None = None) -> SimpleNamespace:
    """A sensor_msgs/Image-like object holding ``array`` with rows ``step`` bytes apart (zero padding)."""
    height, width = array.shape[:2]
    dtype = array.dtype.newbyteorder('>' if bigendian else '<') if array.dtype.itemsize > 1 else array.dtype
    row = array.astype(dtype).reshape(height, -1).view(np.uint8)
    step = row.shape[1] if step is None else step
    padded = np.zeros((height, step), np.uint8)
    padded[:, :row.shape[1]] = row
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                           step=step, data=padded.tobytes() if data is None else data)


CASES = {
    # encoding: (shape, dtype, expected colour order)
    'mono8': ((5, 7), np.uint8, 'bgr'),
    '8UC1': ((5, 7), np.uint8, 'bgr'),
    'mono16': ((5, 7), np.uint16, 'bgr'),
    '16UC1': ((5, 7), np.uint16, 'bgr'),
    'bgr8': ((5, 7, 3), np.uint8, 'bgr'),
    'rgb8': ((5, 7, 3), np.uint8, 'rgb'),
    'bgra8': ((5, 7, 4), np.uint8, 'bgr'),
    'rgba8': ((5, 7, 4), np.uint8, 'rgb'),
    '8UC3': ((5, 7, 3), np.uint8, 'bgr'),
    '8UC4': ((5, 7, 4), np.uint8, 'bgr'),
}


def random_image(shape, dtype) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def test_every_supported_encoding_is_covered():
    assert set(CASES) == set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize('encoding', sorted(CASES))
@pytest.mark.parametrize('padding', [0, 3])
def test_encoding_round_trip(encoding, padding):
    shape, dtype, order = CASES[encoding]
    image = random_image(shape, dtype)
    row_bytes = image[0].nbytes
    array, color_order = image_to_array(raw_message(image, encoding, step=row_bytes + padding))
    assert color_order == order
    assert array.dtype == dtype and array.dtype.isnative
    assert array.shape == image.shape
    np.testing.assert_array_equal(array, image)


def test_padded_rows_are_a_view_of_the_message_data():
    image = random_image((4, 6, 3), np.uint8)
    msg = raw_message(image, 'bgr8', step=6 * 3 + 14)
    array, _ = image_to_array(msg)
    assert np.shares_memory(array, np.frombuffer(msg.data, np.uint8)), 'expected a zero-copy view'
    assert array.strides == (6 * 3 + 14, 3, 1)
    np.testing.assert_array_equal(array, image)


def test_mono16_odd_step_is_read_unaligned():
    image = random_image((3, 4), np.uint16)
    array, _ = image_to_array(raw_message(image, 'mono16', step=9))
    np.testing.assert_array_equal(array, image)


def test_big_endian_mono16_is_converted_to_native():
    image = np.array([[0x0102, 0xA0B0, 65535], [0, 1, 256]], np.uint16)
    msg = raw_message(image, 'mono16', bigendian=True)
    assert msg.data[:2] == b'\x01\x02'
    array, _ = image_to_array(msg)
    assert array.dtype == np.uint16 and array.dtype.isnative
    np.testing.assert_array_equal(array, image)


def test_longer_data_than_needed_is_accepted():
    image = random_image((2, 3), np.uint8)
    msg = raw_message(image, 'mono8')
    msg.data = msg.data + b'\x00' * 5
    np.testing.assert_array_equal(image_to_array(msg)[0], image)


def test_list_data_is_accepted():
    image = random_image((2, 3), np.uint8)
    msg = raw_message(image, 'mono8')
    msg.data = list(msg.data)
    np.testing.assert_array_equal(image_to_array(msg)[0], image)


@pytest.mark.parametrize('encoding', ['yuv422', '32FC1', '16UC3', 'bayer_rggb8', ''])
def test_unsupported_encoding_is_rejected(encoding):
    msg = raw_message(random_image((2, 2), np.uint8), 'mono8')
    msg.encoding = encoding
    with pytest.raises(ImageRejected, match='unsupported encoding') as info:
        image_to_array(msg)
    assert repr(encoding) in info.value.reason


@pytest.mark.parametrize('height, width', [(0, 4), (4, 0), (0, 0)])
def test_empty_image_is_rejected(height, width):
    msg = SimpleNamespace(height=height, width=width, encoding='mono8', is_bigendian=0, step=width, data=b'')
    with pytest.raises(ImageRejected, match='empty image'):
        image_to_array(msg)


def test_short_step_is_rejected():
    msg = raw_message(random_image((3, 4, 3), np.uint8), 'rgb8')
    msg.step = 11
    with pytest.raises(ImageRejected, match='step 11 is shorter than a row') as info:
        image_to_array(msg)
    assert '12 bytes' in info.value.reason


def test_truncated_data_is_rejected():
    msg = raw_message(random_image((3, 4), np.uint16), '16UC1')
    msg.data = msg.data[:-1]
    with pytest.raises(ImageRejected, match='truncated data: 23 bytes, expected .* = 24'):
        image_to_array(msg)


def test_rejection_is_a_value_error_with_the_reason_as_text():
    with pytest.raises(ValueError) as info:
        image_to_array(SimpleNamespace(height=1, width=1, encoding='32FC1', is_bigendian=0, step=4, data=b'1234'))
    assert str(info.value) == info.value.reason


@pytest.mark.parametrize('shape, dtype, order', [((6, 5), np.uint8, 'bgr'), ((6, 5), np.uint16, 'bgr'),
                                                 ((6, 5, 3), np.uint8, 'rgb'), ((6, 5, 4), np.uint8, 'bgr')])
def test_array_to_image_fields_inverts_image_to_array(shape, dtype, order):
    image = random_image(shape, dtype)
    fields = array_to_image_fields(image, order)
    array, color_order = image_to_array(SimpleNamespace(**fields))
    np.testing.assert_array_equal(array, image)
    assert color_order == order


def test_array_to_image_fields_rejects_float_images():
    with pytest.raises(ValueError, match='no sensor_msgs/Image encoding'):
        array_to_image_fields(np.zeros((2, 2), np.float32))


def test_real_sensor_msgs_image():
    sensor_msgs = pytest.importorskip('sensor_msgs.msg')
    image = random_image((8, 10, 3), np.uint8)
    msg = sensor_msgs.Image(**array_to_image_fields(image, 'rgb'))
    array, color_order = image_to_array(msg)
    assert color_order == 'rgb'
    np.testing.assert_array_equal(array, image)
    assert np.shares_memory(array, np.frombuffer(msg.data, np.uint8))


def compressed_message(image: np.ndarray, extension: str, fmt: str) -> SimpleNamespace:
    ok, encoded = cv2.imencode(extension, image)
    assert ok
    return SimpleNamespace(format=fmt, data=encoded.tobytes())


@pytest.mark.parametrize('shape', [(16, 12), (16, 12, 3)])
def test_png_is_decoded_exactly(shape):
    image = random_image(shape, np.uint8)
    array, color_order = compressed_to_array(compressed_message(image, '.png', 'png'))
    assert color_order == 'bgr'
    np.testing.assert_array_equal(array, image)


def test_png16_keeps_its_depth():
    image = random_image((5, 6), np.uint16)
    array, _ = compressed_to_array(compressed_message(image, '.png', 'mono16; png compressed'))
    assert array.dtype == np.uint16
    np.testing.assert_array_equal(array, image)


def test_jpeg_is_decoded():
    image = np.full((16, 16, 3), (10, 120, 240), np.uint8)
    array, _ = compressed_to_array(compressed_message(image, '.jpg', 'bgr8; jpeg compressed bgr8'))
    assert array.shape == image.shape
    assert np.abs(array.astype(int) - image).max() <= 4


@pytest.mark.parametrize('data, reason', [(b'', 'empty compressed image'), (b'not an image', 'does not decode')])
def test_bad_compressed_data_is_rejected(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        compressed_to_array(SimpleNamespace(format='jpeg', data=data))


# --- One pixel-type policy and a size bound for both paths --------------------------------------------------
def encoded(image: np.ndarray, extension: str) -> bytes:
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


# Raw encoding and a compressed file of the same pixel type: both refused, for the same reason.
SAME_PIXEL_TYPE = [
    ('32FC1', '.tiff', np.full((6, 5), np.nan, np.float32), 'float32 with 1 channel(s)'),
    ('32FC1', '.pfm', np.full((6, 5), np.nan, np.float32), 'float32 with 1 channel(s)'),
    ('16SC1', '.tiff', np.ones((6, 5), np.int16), 'int16 with 1 channel(s)'),
    ('32SC1', '.tiff', np.ones((6, 5), np.int32), 'int32 with 1 channel(s)'),
    ('16UC3', '.png', np.ones((6, 5, 3), np.uint16), 'uint16 with 3 channel(s)'),
]


@pytest.mark.parametrize('encoding, extension, image, pixel_type', SAME_PIXEL_TYPE)
def test_raw_and_compressed_refuse_a_pixel_type_with_the_same_reason(encoding, extension, image, pixel_type):
    raw = raw_message(np.zeros(image.shape, np.uint8), 'mono8')
    raw.encoding, raw.step = encoding, image[0].nbytes
    raw.data = image.tobytes()
    with pytest.raises(ImageRejected) as from_raw:
        image_to_array(raw)
    with pytest.raises(ImageRejected) as from_compressed:
        compressed_to_array(SimpleNamespace(format=extension[1:], data=encoded(image, extension)))
    reason = f'pixel type {pixel_type} is not supported'
    assert reason in from_raw.value.reason and reason in from_compressed.value.reason
    assert from_raw.value.reason.split(': ', 1)[1] == from_compressed.value.reason.split(': ', 1)[1]


def test_compressed_size_is_bounded_from_the_header_before_decoding():
    import resource
    data = huge_png(6000, 6000)  # 36 MP from about 35 KB
    assert len(data) < 100_000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageRejected, match='image too large: 6000x6000 = 36000000 pixels exceeds max_image_pixels '
                                            '16777216'):
        compressed_to_array(SimpleNamespace(format='png', data=data), max_pixels=4096 * 4096)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 20_000, 'decoded before refusing'
    array, _ = compressed_to_array(SimpleNamespace(format='png', data=huge_png(64, 48)), max_pixels=64 * 48)
    assert array.shape == (48, 64)


def test_jpeg_declaring_a_huge_size_is_refused_from_its_header():
    data = bytearray(encoded(np.zeros((16, 16), np.uint8), '.jpg'))
    sof = data.index(b'\xff\xc0')  # baseline frame header: length, precision, height, width
    for height, width in ((6000, 5000), (60000, 50000)):  # the second above Pillow's own bound
        data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
        with pytest.raises(ImageRejected, match='image too large: .*max_image_pixels') as info:
            compressed_to_array(SimpleNamespace(format='jpeg', data=bytes(data)), max_pixels=4096 * 4096)
        assert height > 10000 or '5000x6000' in info.value.reason


def test_raw_size_is_bounded():
    msg = raw_message(random_image((30, 40), np.uint8), 'mono8')
    with pytest.raises(ImageRejected, match='image too large: 40x30 = 1200 pixels exceeds max_image_pixels 1000'):
        image_to_array(msg, max_pixels=1000)
    assert image_to_array(msg, max_pixels=1200)[0].shape == (30, 40)


def test_unknown_compressed_format_is_refused_before_decoding():
    # Radiance HDR: OpenCV decodes it (float32), Pillow knows no header for it, so its size cannot be bounded.
    with pytest.raises(ImageRejected, match='does not decode.*no image header found'):
        compressed_to_array(SimpleNamespace(format='hdr', data=encoded(np.ones((4, 4, 3), np.float32), '.hdr')))
