"""Readers and writers of the real landmark formats: 300W ``.pts``, WFLW, JD-landmark, 300VW.

Every reader returns landmarks in the project's convention (pixel centre at the integer, the
top-left pixel centre at ``(0, 0)``) and raises :class:`~lmk.data.AnnotationError`, naming the
file and line, on anything malformed; every writer is lossless (numbers are written in the
shortest text that reads back as the same float64). Images are read by
:mod:`lmk.data.image_files`. The formats:

* **300W / iBUG ``.pts``** (Sagonas et al., 2016), image beside it with the same stem::

      version: 1
      n_points:  68
      {
      x y          <- one line per point, 1-based: the top-left pixel centre is (1, 1)
      }

* **WFLW** (Wu et al., 2018): one text line per face, see :mod:`lmk.data.wflw`.
* **JD-landmark** (Liu et al., 2019): one file per image (``NAME.jpg.txt``), the first line is
  the point count ``106``, then one ``x y`` line per point, 0-based.
* **300VW** (Shen et al., 2015): a folder per video with ``vid.avi`` and ``annot/000001.pts``
  ... (one ``.pts`` per frame, frame ``k`` is ``annot/{k+1:06d}.pts``), decoded with OpenCV.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .._backend import check_positive_int
from .annotation_text import decimal_text, read_lines, read_point_line
from .errors import AnnotationError
# Re-exported: every format is importable from here.
from .image_files import read_image, verify_image, write_image  # noqa: F401
from .wflw import WFLW_ATTRIBUTES, WFLW_FIELDS, read_wflw, write_wflw  # noqa: F401

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


# --- 300W .pts ---------------------------------------------------------------------------------

def read_pts(path, num_points: int | None = None, one_based: bool = True) -> np.ndarray:
    """Read a 300W/iBUG ``.pts`` file.

    Args:
        path: the ``.pts`` file.
        num_points: if given, the count the file must declare and contain (68 for 300W).
        one_based: subtract 1 from both coordinates (300W's top-left pixel centre is (1, 1)).
    Returns:
        ``(N, 2)`` float64 landmarks in the project's convention.
    Raises:
        AnnotationError: a missing header / brace, a non-numeric or non-finite token, a line
            that is not ``x y``, or a point count that differs from ``n_points``/``num_points``.
    """
    lines = read_lines(path)
    declared, number = None, 0
    for number, text in enumerate(lines, start=1):    # header: "key: value" lines up to "{"
        if text.strip() == "{":
            break
        if not text.strip():
            continue
        key, sep, value = text.partition(":")
        if not sep:
            raise AnnotationError(path, number, "a header line 'key: value' or '{'", text.strip())
        if key.strip() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise AnnotationError(path, number, "an integer n_points", value.strip()) from None
            if num_points is not None and declared != num_points:
                raise AnnotationError(path, number, f"n_points: {num_points}", declared)
    else:
        raise AnnotationError(path, number or 1, "an opening '{' after the header", "end of file")
    if declared is None:
        raise AnnotationError(path, number, "an 'n_points:' header line before '{'", "{")
    points = []
    for number, text in enumerate(lines[number:], start=number + 1):
        if text.strip() == "}":
            break
        if text.strip():
            points.append(read_point_line(text, path, number))
    else:
        raise AnnotationError(path, len(lines), f"a closing '}}' after {declared} points",
                              "end of file")
    if len(points) != declared:
        raise AnnotationError(path, number, f"{declared} points (n_points)",
                              f"{len(points)} points")
    out = np.array(points, dtype=np.float64).reshape(-1, 2)
    return out - 1.0 if one_based else out


def write_pts(path, points, one_based: bool = True, decimals: int | None = None) -> None:
    """Write ``(N, 2)`` landmarks as a 300W ``.pts`` file (adds 1 when ``one_based``).

    Args:
        path: the ``.pts`` file to write.
        points: ``(N, 2)`` finite landmarks in the project's convention.
        one_based: add 1 to both coordinates (300W's top-left pixel centre is (1, 1)).
        decimals: round to this many decimals. ``None`` (the default) is lossless: each number
            is written in the shortest form that :func:`read_pts` reads back exactly, so
            ``read -> write -> read`` is the identity and a 300W file keeps its values (the
            one-based ``x + 1`` on disk can hold ``x`` only to the last bit of ``x + 1``).
    Raises:
        ValueError: points that are not ``(N, 2)`` or not finite, or a negative ``decimals``.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite (found NaN or inf)")
    offset = 1.0 if one_based else 0.0
    if decimals is None:
        text = decimal_text(p, offset)
    elif isinstance(decimals, (int, np.integer)) and not isinstance(decimals, bool) \
            and decimals >= 0:
        text = np.char.mod(f"%.{int(decimals)}f", p + offset)
    else:
        raise ValueError(f"decimals must be None (lossless) or an int >= 0, got {decimals!r}")
    body = "\n".join(f"{x} {y}" for x, y in text)
    Path(path).write_text(f"version: 1\nn_points:  {len(p)}\n{{\n{body}\n}}\n")


# --- images -------------------------------------------------------------------------------------

def find_image(annotation_path) -> Path:
    """The image beside an annotation file: same stem, one of :data:`IMAGE_EXTENSIONS`.

    ``face.pts`` -> ``face.png`` / ``face.jpg`` ...; ``face.jpg.txt`` -> ``face.jpg``.
    """
    path = Path(annotation_path)
    stem = path.with_suffix("")
    if stem.suffix.lower() in IMAGE_EXTENSIONS and stem.is_file():
        return stem
    for ext in IMAGE_EXTENSIONS:
        for candidate in (stem.with_suffix(ext), stem.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    raise AnnotationError(path, None, f"an image beside it named {stem.name}"
                          f"{{{','.join(IMAGE_EXTENSIONS)}}}", "none")


# --- JD-landmark -----------------------------------------------------------------------------

def read_jd106(path, num_points: int = 106) -> np.ndarray:
    """Read a JD-landmark file: the count on line 1, then ``x y`` lines. ``(N, 2)`` float64."""
    lines = read_lines(path)
    if not lines or lines[0].strip() != str(num_points):
        raise AnnotationError(path, 1, f"the point count {num_points}",
                              lines[0].strip() if lines else "empty file")
    points = [read_point_line(t, path, k) for k, t in enumerate(lines[1:], start=2) if t.strip()]
    if len(points) != num_points:
        raise AnnotationError(path, len(lines), f"{num_points} point lines", len(points))
    return np.array(points, dtype=np.float64)


def write_jd106(path, points) -> None:
    """Write ``(N, 2)`` landmarks in the JD-landmark format (lossless numbers)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or not np.isfinite(p).all():
        raise ValueError(f"points must be finite with shape (N, 2), got {p.shape}")
    Path(path).write_text(f"{len(p)}\n" + "".join(f"{x} {y}\n" for x, y in decimal_text(p)))


# --- 300VW ---------------------------------------------------------------------------------

def _frame_annotations(folder: Path) -> list[Path]:
    """``annot/000001.pts``, ``000002.pts`` ... of a 300VW video folder, checked: at least one,
    numbered from 1 without a gap."""
    annots = sorted((folder / "annot").glob("*.pts"))
    if not annots:
        raise AnnotationError(folder / "annot", None, "per-frame annotations 000001.pts ...",
                              "none")
    for k, a in enumerate(annots):
        if a.name != f"{k + 1:06d}.pts":
            raise AnnotationError(a, None, f"consecutive frame annotations, {k + 1:06d}.pts here")
    return annots


def _open_video(video: Path):
    capture = cv2.VideoCapture(str(video))
    if not video.is_file() or not capture.isOpened():
        capture.release()
        raise AnnotationError(video, None, "a video readable by OpenCV", "missing or unreadable")
    return capture


def check_300vw_root(root) -> list[Path]:
    """The 300VW video folders under ``root`` in name order, checked by the rules of
    :func:`read_300vw` without decoding a frame.

    A video folder is a sub-folder holding ``vid.avi`` or ``annot/``; it must hold both: a
    video OpenCV opens and ``annot/000001.pts`` ... numbered without a gap. Other sub-folders
    (notes, downloads) are passed over. The reader and ``lmk.params`` (``VIDEO_ROOT``) both
    call this, so a folder the parameter check passes is one the reader reads.

    Raises:
        ValueError: ``root`` is not a folder or holds no video folder.
        AnnotationError: a video folder without a readable ``vid.avi`` or without annotations,
            or with a gap in their numbering (the message names the file).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"300VW root {root} is not a folder")
    folders = sorted(d for d in root.iterdir()
                     if d.is_dir() and ((d / "vid.avi").exists() or (d / "annot").exists()))
    if not folders:
        raise ValueError(f"300VW root {root} holds no video folder (a sub-folder with vid.avi "
                         f"and annot/)")
    for folder in folders:
        _frame_annotations(folder)
        _open_video(folder / "vid.avi").release()
    return folders


def read_300vw(folder, start: int = 0, stop: int | None = None) -> dict:
    """Decode frames ``start:stop`` of a 300VW video folder with their annotations.

    Returns:
        ``frames`` ``(T, H, W, 3)`` uint8 RGB, ``landmarks`` ``(T, 68, 2)`` float64 (project
        convention), ``frame_index`` ``(T,)``. Raises ``AnnotationError`` if the video is
        missing or unreadable, if the annotations are missing or not numbered ``000001.pts``
        ... without a gap, or if the video has fewer frames than the requested annotations.
    """
    folder = Path(folder)
    video = folder / "vid.avi"
    annots = _frame_annotations(folder)
    stop = len(annots) if stop is None else min(stop, len(annots))
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop <= {len(annots)} frames, got start={start}, "
                         f"stop={stop}")
    capture = _open_video(video)
    frames = []
    try:
        for k in range(stop):
            ok, frame = capture.read()
            if not ok:
                raise AnnotationError(video, None, f"{len(annots)} frames (one per annot/*.pts)",
                                      f"only {k} decodable frames")
            if k >= start:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    landmarks = np.stack([read_pts(a, num_points=68) for a in annots[start:stop]])
    return {"frames": np.stack(frames), "landmarks": landmarks,
            "frame_index": np.arange(start, stop)}


def read_300vw_videos(root, n: int | None = None, stop: int | None = None) -> list[dict]:
    """The first ``n`` 300VW video folders under ``root`` in name order (all of them, or all
    there are when fewer, with ``n=None``), each read by :func:`read_300vw` up to frame ``stop``.

    Every video folder is checked first (:func:`check_300vw_root`), so a broken one is found
    before any video is decoded, and sub-folders that are not videos are passed over.

    Raises:
        ValueError: ``root`` is not a folder or holds no video folder; ``n`` or ``stop`` is
            not ``None`` or a positive int.
        AnnotationError: a video folder the reader cannot read (see :func:`check_300vw_root`).
    """
    n = _count_or_none(n, "n", "the number of videos; None reads all")
    stop = _count_or_none(stop, "stop", "the frame to stop at; None reads to the end")
    return [read_300vw(f, 0, stop) for f in check_300vw_root(root)[:n]]


def _count_or_none(value, name: str, meaning: str) -> int | None:
    try:
        return None if value is None else check_positive_int(value, name)
    except ValueError:
        raise ValueError(f"read_300vw_videos(): {name} must be a positive int ({meaning}) or "
                         f"None, got {value!r}") from None


def write_300vw(folder, frames, landmarks, fps: float = 25.0) -> None:
    """Write a 300VW-style folder (``vid.avi`` as MJPG, ``annot/000001.pts`` ...)."""
    frames, landmarks = np.asarray(frames), np.asarray(landmarks)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if len(landmarks) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark sets")
    folder = Path(folder)
    (folder / "annot").mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(folder / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    for k, points in enumerate(landmarks):
        write_pts(folder / "annot" / f"{k + 1:06d}.pts", points)
