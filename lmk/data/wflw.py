"""WFLW annotation lists (Wu et al., 2018): read and written under one set of rules.

One text line per face, 207 whitespace-separated fields: 98 ``x y`` pairs (fields 1-196), the
box ``x_min y_min x_max y_max`` (197-200), six 0/1 attributes (pose, expression, illumination,
make-up, occlusion, blur; 201-206) and the image path relative to ``WFLW_images/`` (207).
Coordinates are used as given (0-based). Because the fields are separated by whitespace, an
image path with a space in it would shift every field after it: the writer refuses it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .annotation_text import decimal_text, parse_float, read_lines
from .errors import AnnotationError

WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")
WFLW_FIELDS = 98 * 2 + 4 + len(WFLW_ATTRIBUTES) + 1
_WFLW_BOX = ("x_min", "y_min", "x_max", "y_max")


def _wflw_problem(landmarks: np.ndarray, box: np.ndarray, attributes, image: str):
    """The one set of rules for a WFLW record, shared by :func:`read_wflw` and
    :func:`write_wflw`, so the writer never writes what the reader rejects.

    Fields are numbered as on the line (1-based): landmarks 1-196 (``x y`` of landmark 0, 1,
    ...), box 197-200, attributes 201-206, image path 207.

    Returns:
        ``(expected, found)`` for the first rule broken, ``None`` for a valid record.
    """
    if landmarks.shape != (98, 2):
        return "98 landmarks, shape (98, 2)", f"shape {landmarks.shape}"
    if box.shape != (4,):
        return "a box of 4 numbers x_min y_min x_max y_max", f"shape {box.shape}"
    numbers = np.concatenate([landmarks.ravel(), box])
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        k = int(bad[0])
        what = f"{'xy'[k % 2]} of landmark {k // 2}" if k < 196 else _WFLW_BOX[k - 196]
        return f"a finite number for field {k + 1} ({what})", str(numbers[k])
    if not (box[2] > box[0] and box[3] > box[1]):
        return ("a box with x_max > x_min and y_max > y_min (fields 197-200)",
                " ".join(str(v) for v in box))
    flags_ok = all(np.ndim(a) == 0 and a in (0, 1) for a in attributes)
    if len(attributes) != len(WFLW_ATTRIBUTES) or not flags_ok:
        return "attributes 0 or 1 in fields 201-206", " ".join(str(a) for a in attributes)
    if not image or any(c.isspace() for c in image):
        return "an image path without whitespace (field 207)", image
    return None


def _wflw_line(fields: list[str], path, line: int) -> dict:
    if len(fields) != WFLW_FIELDS:
        raise AnnotationError(path, line, f"{WFLW_FIELDS} fields (196 coordinates, 4 box, "
                              f"6 attributes, image path)", f"{len(fields)} fields")
    values = np.array([parse_float(t, path, line, f"field {k + 1}")
                       for k, t in enumerate(fields[:-1])])
    landmarks, box, attributes = values[:196].reshape(98, 2), values[196:200], values[200:206]
    problem = _wflw_problem(landmarks, box, attributes.tolist(), fields[-1])
    if problem is not None:
        raise AnnotationError(path, line, *problem)
    return {"landmarks": landmarks, "box": box, "image": fields[-1], "line": line,
            "attributes": dict(zip(WFLW_ATTRIBUTES, attributes.astype(int).tolist()))}


def read_wflw(path, skipped: list | None = None) -> list[dict]:
    """Read a WFLW annotation list (``list_98pt_rect_attr_{train,test}.txt``).

    Args:
        path: the list file.
        skipped: if a list is given, a malformed line does not stop the reader: its
            :class:`~lmk.data.AnnotationError` (naming the file and line) is appended here and
            the line left out.
    Returns:
        One dict per line: ``landmarks`` ``(98, 2)`` float64, ``box`` ``(4,)`` float64
        ``(x_min, y_min, x_max, y_max)``, ``attributes`` (name -> 0/1), ``image`` (the path
        relative to ``WFLW_images``) and ``line`` (1-based).
    Raises:
        AnnotationError: naming the file and line, for a wrong field count, a token that is
            not a number, a non-finite number, an inverted or empty box (``x_max <= x_min`` or
            ``y_max <= y_min``) or an attribute other than 0/1 (unless ``skipped`` is given).
    """
    records = []
    for number, text in enumerate(read_lines(path), start=1):
        fields = text.split()
        if not fields:
            continue
        try:
            records.append(_wflw_line(fields, path, number))
        except AnnotationError as exc:
            if skipped is None:
                raise
            skipped.append(exc)
    return records


def write_wflw(path, records) -> None:
    """Write records as a WFLW list, one line each, after checking them all.

    Args:
        path: the list file to write.
        records: dicts with ``landmarks`` ``(98, 2)``, ``box`` ``(4,)`` (floats, written
            losslessly like the landmarks), ``attributes`` (name -> 0/1; missing names are 0)
            and ``image`` (a path without whitespace): what :func:`read_wflw` returns.
    Raises:
        AnnotationError: naming the file and the 0-based record index, for any record that
            :func:`read_wflw` would reject (same rules) or an unknown attribute name. Nothing
            is written then.
    """
    numbers, tails = [], []
    for index, r in enumerate(records):
        try:
            landmarks = np.asarray(r["landmarks"], dtype=np.float64)
            box = np.asarray(r["box"], dtype=np.float64)
            given, image = dict(r.get("attributes") or {}), str(r["image"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(path, None, "a dict with numeric 'landmarks' and 'box' and "
                                  "an 'image'", f"{type(exc).__name__}: {exc}",
                                  record=index) from exc
        unknown = sorted(map(str, set(given) - set(WFLW_ATTRIBUTES)))
        if unknown:
            raise AnnotationError(path, None, f"attribute names among {WFLW_ATTRIBUTES}",
                                  ", ".join(unknown), record=index)
        attributes = [given.get(a, 0) for a in WFLW_ATTRIBUTES]
        problem = _wflw_problem(landmarks, box, attributes, image)
        if problem is not None:
            raise AnnotationError(path, None, *problem, record=index)
        numbers.append(np.concatenate([landmarks.ravel(), box]))
        tails.append(" ".join([*(str(int(a)) for a in attributes), image]))
    text = decimal_text(np.array(numbers).reshape(len(tails), 200))
    rows = [" ".join([*row, tail]) for row, tail in zip(text, tails)]
    Path(path).write_text("".join(row + "\n" for row in rows))
