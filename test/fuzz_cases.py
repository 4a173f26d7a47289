"""Seeded malformed and odd image messages for the reliability suite: raw sensor_msgs/Image fields and
compressed data, drawn from a fixed seed so that every run tries the same cases."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

from rfnet_ros.image_messages import SUPPORTED_ENCODINGS

ENCODINGS = (*SUPPORTED_ENCODINGS, '32FC1', '64FC1', '16SC1', '32SC1', '8SC3', '16UC3', '8UC2', 'rgb16',
             'yuv422', 'bayer_rggb8', 'nv21', '', 'MONO8', 'bgr8 ', '8UC', '\x00')
BYTES_PER_PIXEL = {'mono8': 1, '8UC1': 1, 'mono16': 2, '16UC1': 2, 'bgr8': 3, 'rgb8': 3, '8UC3': 3,
                   'bgra8': 4, 'rgba8': 4, '8UC4': 4, '32FC1': 4, '64FC1': 8, '16SC1': 2, '32SC1': 4, '8SC3': 3,
                   '16UC3': 6, '8UC2': 2, 'rgb16': 6, 'yuv422': 2}


def raw_cases(seed: int, count: int) -> list[dict]:
    """``count`` sets of sensor_msgs/Image fields: mostly plausible sizes with a wrong detail (encoding, step,
    data length, byte order), some with absurd declared sizes, some valid."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        encoding = str(rng.choice(ENCODINGS))
        kind = rng.integers(0, 10)
        if kind == 0:  # absurd declared size, little data
            height, width = (int(v) for v in rng.choice([0, 1, 65535, 2 ** 31 - 1, 2 ** 32 - 1], size=2))
        else:
            height, width = (int(v) for v in rng.integers(0, 80, size=2))
        bpp = BYTES_PER_PIXEL.get(encoding, int(rng.integers(1, 5)))
        row = width * bpp
        step = int(rng.choice([row, row + int(rng.integers(1, 9)), max(row - 1, 0), int(rng.integers(0, 2 ** 32))]))
        step = min(step, 2 ** 32 - 1)
        needed = min(step * height, 1 << 20)
        length = int(rng.choice([needed, max(needed - int(rng.integers(1, 64)), 0), needed + int(rng.integers(1, 64)),
                                 int(rng.integers(0, 4096))]))
        cases.append(dict(height=height, width=width, encoding=encoding, is_bigendian=int(rng.integers(0, 2)),
                          step=step, data=rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()))
    return cases


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))


def huge_png(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG of zeros, compressed as well as deflate can (about 1 KB per MB decoded)."""
    deflate = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 and a row of zeros
    body = b''.join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    return (b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0))
            + png_chunk(b'IDAT', body) + png_chunk(b'IEND', b''))


def _encoded(image: np.ndarray, extension: str) -> bytes:
    ok, data = cv2.imencode(extension, image)
    assert ok, extension
    return data.tobytes()


def seed_files(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """Valid files of every kind the fuzzing starts from: (format, data)."""
    texture = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 1.0)
    return [
        ('jpeg', _encoded(texture, '.jpg')), ('jpeg', _encoded(texture[..., 0], '.jpg')),
        ('png', _encoded(texture, '.png')), ('png', _encoded(texture[..., 1], '.png')),
        ('png', _encoded(np.dstack([texture, texture[..., :1]]), '.png')),
        ('png', _encoded(texture[..., 0].astype(np.uint16) * 257, '.png')),
        ('png', _encoded(texture.astype(np.uint16) * 257, '.png')),  # 16-bit colour: outside the policy
        ('tiff', _encoded(np.full((24, 32), np.nan, np.float32), '.tiff')),
        ('tiff', _encoded(texture[..., 0].astype(np.int16) - 128, '.tiff')),
        ('tiff', _encoded(texture[..., 0].astype(np.int32), '.tiff')),
        ('pfm', _encoded(texture[..., 0].astype(np.float32) / 255, '.pfm')),
        ('bmp', _encoded(texture, '.bmp')), ('webp', _encoded(texture, '.webp')),
        ('png', huge_png(20000, 20000)),
    ]


def _with_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG with its IHDR size replaced (and the chunk's CRC recomputed, so the header stays valid)."""
    ihdr = data.index(b'IHDR')
    body = struct.pack('>II', width, height) + data[ihdr + 12:ihdr + 17]
    return data[:ihdr - 4] + png_chunk(b'IHDR', body) + data[ihdr + 21:]


def compressed_cases(seed: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` (format, data) pairs: the seed files, then mutations of them (bit flips, truncation,
    spliced bytes, forged PNG sizes) and random bytes."""
    rng = np.random.default_rng(seed)
    seeds = seed_files(rng)
    small = [s for s in seeds if len(s[1]) < 100_000]
    cases = list(seeds)
    while len(cases) < count:
        fmt, data = small[int(rng.integers(len(small)))]
        data = bytearray(data)
        kind = rng.integers(0, 6)
        if kind == 0:
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 16))):
                data[position] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            data = data[:int(rng.integers(0, len(data)))]
        elif kind == 2:
            start = int(rng.integers(0, len(data)))
            data[start:start + 8] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
        elif kind == 3 and fmt == 'png':
            data = bytearray(_with_png_size(bytes(data), *(int(v) for v in rng.choice(
                [1, 7, 4096, 30000, 2 ** 31 - 1], size=2))))
        elif kind == 4:
            data = rng.integers(0, 256, size=int(rng.integers(0, 2048)), dtype=np.uint8).tobytes()
            fmt = str(rng.choice(['jpeg', 'png', '']))
        else:
            data = data + data[:int(rng.integers(0, len(data)))]
        cases.append((fmt, bytes(data)))
    return cases[:count]
