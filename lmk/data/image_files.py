"""Image files: decode, verify and write, with truncated and corrupt files named, not decoded.

OpenCV decodes a JPEG that was cut off part-way without an error: libjpeg prints a warning and
fills the missing rows with grey, and a model would happily train on it. So before decoding,
:func:`verify_image` checks that the file is *complete* from its structure:

* **JPEG** (starts ``FF D8``): the end-of-image marker ``FF D9`` must follow the first
  start-of-scan marker ``FF DA`` of the main image. Inside the compressed data every ``FF`` byte
  is stuffed as ``FF 00``, so ``FF D9`` there can only be the real end. (An EXIF thumbnail, which
  carries its own ``FF D9``, sits in an ``APP1`` segment before the scan and is stepped over.)
  Bytes after the marker (camera padding) are allowed.
* **PNG** (starts ``89 50 4E 47 0D 0A 1A 0A``): the chain of chunks must reach ``IEND``.
* **BMP** (starts ``BM``): the file must be as long as its header says.

Anything else is left to the decoder, and a file the decoder rejects is an error too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError

_JPEG, _PNG, _BMP = b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"BM"
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}     # markers without a length field (TEM, RSTn)


def _jpeg_end_missing(data: bytes) -> bool:
    """True when no end-of-image marker follows the first start-of-scan marker."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:                # not on a marker: resync like libjpeg does
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return True
            continue
        marker = data[pos + 1]
        if marker == 0xFF:                   # fill byte before a marker
            pos += 1
        elif marker == 0xDA:                 # start of scan: the compressed data begins
            return data.find(b"\xff\xd9", pos + 2) < 0
        elif marker in _JPEG_STANDALONE:
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return True                              # cut off before the image data


def _png_end_missing(data: bytes) -> bool:
    """True when the chunk chain (4-byte length, 4-byte type, data, 4-byte CRC) ends early."""
    pos = len(_PNG)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IEND":
            return False
        pos += 12 + length
    return True


def _incomplete(data: bytes) -> tuple[str, str] | None:
    """``(expected, found)`` when the bytes are an image cut short, else ``None``."""
    cut = f"cut off after {len(data)} bytes"
    if data.startswith(_JPEG) and _jpeg_end_missing(data):
        return "a complete JPEG ending with the end-of-image marker FF D9", cut
    if data.startswith(_PNG) and _png_end_missing(data):
        return "a complete PNG ending with an IEND chunk", cut
    if data.startswith(_BMP) and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        if len(data) < size:
            return f"a complete BMP of {size} bytes (its header's file size)", cut
    return None


def _read_bytes(path: Path, annotation) -> bytes:
    if path.is_dir():
        raise ImageError(path, "an image file", "a directory", annotation)
    if not path.is_file():
        raise ImageError(path, "an image file", "no such file", annotation)
    try:
        data = path.read_bytes()
    except OSError as exc:                   # permissions, I/O errors: name the file
        raise ImageError(path, "a readable image file",
                         f"{type(exc).__name__}: {exc.strerror or exc}", annotation) from exc
    if not data:
        raise ImageError(path, "an image file", "an empty file", annotation)
    return data


def _checked_decode(path, annotation, decode: bool) -> np.ndarray | None:
    path = Path(path)
    data = _read_bytes(path, annotation)
    problem = _incomplete(data)
    if problem is not None:
        raise ImageError(path, *problem, annotation)
    if not decode:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(path, "a decodable image", "unreadable data", annotation)
    return image


def verify_image(path, annotation=None, decode: bool = True) -> None:
    """Check that an image file exists, is complete and (if ``decode``) decodes.

    ``decode=False`` reads the bytes and checks only the structure (the JPEG end marker, the PNG
    ``IEND`` chunk, the BMP size): much faster than decoding a large photo, and enough to catch
    files cut off by an interrupted copy or download.

    Args:
        path: the image file.
        annotation: the annotation that refers to it, named in the error message.
        decode: also decode the pixels with OpenCV.
    Raises:
        ImageError: (an :class:`~lmk.data.AnnotationError`) naming the file when it is missing,
            a directory, unreadable, empty, truncated or undecodable.
    """
    _checked_decode(path, annotation, decode)


def read_image(path, annotation=None) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB, after :func:`verify_image`'s checks.

    EXIF orientation is applied as by ``cv2.imread``. Raises :class:`~lmk.data.ImageError`
    (an ``AnnotationError``) naming the file, and ``annotation`` if given, when it cannot be.
    """
    image = _checked_decode(path, annotation, decode=True)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path, image) -> None:
    """Encode ``(H, W, 3)`` uint8 RGB (format from the suffix, PNG is lossless)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")
