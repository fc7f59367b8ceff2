"""Checks of PNG files that the package and the docs tests write (figures, screenshots)."""

import struct

import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, size, max_bytes=300 * 1024):
    """A valid PNG of exactly ``size`` = (width, height) pixels, 5 KiB to ``max_bytes``, that is not blank."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == size
    assert 5 * 1024 < len(data) < max_bytes, f"{len(data)} bytes"
    assert data.endswith(b"IEND\xaeB`\x82")
    image = pytest.importorskip("matplotlib.image").imread(path)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # something is drawn
