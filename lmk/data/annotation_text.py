"""The numbers of text annotation files: parsed with the file and line named on any error,
and written losslessly (the shortest text that reads back as the same float64)."""

from __future__ import annotations

import math

import numpy as np

from .errors import AnnotationError


def read_lines(path) -> list[str]:
    """The lines of a UTF-8 text file (a BOM and Windows line ends are fine)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, "a UTF-8 text file", f"undecodable bytes ({exc.reason})")


def parse_float(token: str, path, line: int, what: str) -> float:
    """``float(token)``, or an ``AnnotationError`` naming ``path``, ``line`` and ``what``."""
    try:
        return float(token)
    except ValueError:
        raise AnnotationError(path, line, f"a number for {what}", token) from None


def parse_number(token: str, path, line: int, what: str) -> float:
    """:func:`parse_float` that also rejects NaN and infinity."""
    value = parse_float(token, path, line, what)
    if not math.isfinite(value):
        raise AnnotationError(path, line, f"a finite number for {what}", token)
    return value


def decimal_text(values, offset: float = 0.0) -> np.ndarray:
    """The shortest fixed-point text of ``values + offset`` that reads back as ``values``.

    ``float(text) - offset == value`` holds exactly, so a reader that subtracts ``offset`` (the
    one-based ``.pts`` convention) gets back the very same float64: a 300W file with six
    decimals is rewritten with its own digits (trailing zeros dropped), not rounded.

    Args:
        values: finite numbers, any shape.
        offset: added on writing and subtracted on reading.
    Returns:
        ``str`` array of the same shape (``"12"``, ``"10.5"``, ``"309.307007"``).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    text = np.empty(flat.shape, dtype=object)
    todo = np.arange(flat.size)
    for decimals in range(25):               # fewest decimals first, only where still needed
        if not todo.size:
            break
        candidate = np.char.mod(f"%.{decimals}f", flat[todo] + offset)
        exact = candidate.astype(np.float64) - offset == flat[todo]
        text[todo[exact]] = candidate[exact]
        todo = todo[~exact]
    for k in todo:                           # below 1e-24 beside the offset: keep every bit
        text[k] = repr(float(flat[k] + offset))
    return text.reshape(np.shape(values))


def read_point_line(text: str, path, line: int) -> tuple[float, float]:
    """One ``x y`` line as two finite numbers."""
    tokens = text.split()
    if len(tokens) != 2:
        raise AnnotationError(path, line, "two numbers 'x y'", text.strip())
    return (parse_number(tokens[0], path, line, "x"), parse_number(tokens[1], path, line, "y"))
