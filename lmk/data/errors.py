"""The one exception for malformed annotation files and the images they point to."""

from __future__ import annotations


class AnnotationError(ValueError):
    """A malformed annotation file, or an image that is missing or cannot be decoded.

    The message names the file, the line (1-based, when there is one) and what was expected,
    e.g. ``"faces/001.pts, line 5: expected two numbers 'x y', found '12.5 abc'"``.

    Attributes:
        path: the offending file (annotation or image).
        line: 1-based line number, or ``None`` when the problem is not on one line.
        expected: what the reader expected to find.
        found: what it found instead (may be ``None``).
    """

    def __init__(self, path, line: int | None, expected: str, found=None):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = self.path if line is None else f"{self.path}, line {line}"
        message = f"{where}: expected {expected}"
        if found is not None:
            message += f", found {found!r}" if isinstance(found, str) else f", found {found}"
        super().__init__(message)

    def __reduce__(self):  # keep it picklable across DataLoader workers
        return (type(self), (self.path, self.line, self.expected, self.found))
