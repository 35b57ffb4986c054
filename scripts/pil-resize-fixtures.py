#!/usr/bin/python3
"""Writes dataset/testdata/pil/: Pillow's Image.resize of generated images, the
reference that dataset's resampler is tested against (TestResizeMatchesPIL).

    /usr/bin/python3 scripts/pil-resize-fixtures.py     (Debian's python3-pil, Pillow 9.4)

The inputs are not stored: pattern() below and pattern() in
dataset/resample_test.go make the same pixels from a 32-bit integer hash
(noise), gradients and hard edges, so only the small outputs are committed.
Keep the two in step. The fixtures come from Python, not from the project's
own code, because Pillow's output is the thing under test.
"""
import os
import sys

import PIL
from PIL import Image

M = 0xFFFFFFFF

# (name, width, height, mode, filters) of the generated inputs; each is resized
# to 224x224 with the filters named.
BB = ("bilinear", "bicubic")
CASES = [
    ("rgb640x480", 640, 480, "RGB", BB + ("lanczos3",)),  # photo-sized: downsampling 2.9x by 2.1x
    ("rgb1000x300", 1000, 300, "RGB", BB),  # 4.5x horizontally, 1.3x vertically
    ("rgb300x40", 300, 40, "RGB", BB),  # down in x, up 5.6x in y
    ("rgb32x32", 32, 32, "RGB", BB),  # CIFAR-sized: upsampling 7x
    ("gray640x480", 640, 480, "L", ("bicubic",)),
]
FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}
SIZE = 224


def hash32(x, y, c):
    h = ((x * 73856093) ^ (y * 19349663) ^ (c * 83492791)) & M
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def pattern(x, y, c, w, h):
    """Level 0..255 of channel c at (x, y) of a w x h input."""
    if y < h // 8:  # noise
        return hash32(x, y, c) & 255
    if y < h // 2:  # gradients, one direction per channel
        return (255 * x // (w - 1), 255 * y // (h - 1), 255 * (x + y) // (w + h - 2))[c]
    if x < w // 2:  # checkerboard of 7x5 cells: hard edges in both directions
        return 235 if ((x // 7) + (y // 5) + c) % 2 else 20
    # thin lines (1 and 2 pixels) on a mid level
    return 255 if x % 11 == 0 or y % 13 < 2 else 100 + 40 * c


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataset", "testdata", "pil")
    os.makedirs(out, exist_ok=True)
    for name, w, h, mode, filters in CASES:
        bands = 1 if mode == "L" else 3
        data = bytes(pattern(x, y, c, w, h) for y in range(h) for x in range(w) for c in range(bands))
        img = Image.frombytes(mode, (w, h), data)
        for fname in filters:
            path = os.path.join(out, "%s-%s.png" % (name, fname))
            img.resize((SIZE, SIZE), FILTERS[fname]).save(path, optimize=True)
    with open(os.path.join(out, "VERSION"), "w") as fh:
        fh.write("Pillow %s\n" % PIL.__version__)
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
