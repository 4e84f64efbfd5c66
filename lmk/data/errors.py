"""The exceptions for malformed annotation files and broken image files.

Both are ``ValueError`` s that name the file and what was expected, and both survive pickling
(``multiprocessing``, ``concurrent.futures``) with their type, message and every attribute,
including any set after construction (a note, an item index). PyTorch's ``DataLoader`` does
not pickle a worker's error but rebuilds it as ``type(error)(message)``, where ``message`` is
the worker's traceback ending in the original message; so each class can also be built from a
message alone (its attributes are then ``None``) and an error found by a worker keeps its type.
"""

from __future__ import annotations


def _rebuild(cls, args: tuple) -> BaseException:
    error = cls.__new__(cls)                 # no __init__: args and attributes come back as-is
    error.args = args
    return error


def _from_message(error: AnnotationError, message, *unused) -> None:
    """Build ``error`` from its message alone; the structured arguments must then be absent."""
    if not isinstance(message, str) or any(u is not None for u in unused):
        raise TypeError(f"{type(error).__name__} takes (path, line, expected, found) or one "
                        f"message string; got {message!r} without 'expected'")
    ValueError.__init__(error, message)
    error.path = error.line = error.expected = error.found = error.record = None


class AnnotationError(ValueError):
    """A malformed annotation file, or an image that is missing or cannot be decoded.

    The message names the file, the line (1-based, when there is one) or the record (0-based,
    for a writer given a bad record) and what was expected, e.g.
    ``"faces/001.pts, line 5: expected two numbers 'x y', found '12.5 abc'"``.

    ``AnnotationError(message)`` (``expected`` left out) takes ``message`` as the whole message,
    with every attribute ``None``: how a ``DataLoader`` rebuilds a worker's error.

    Attributes:
        path: the offending file (annotation or image).
        line: 1-based line number, or ``None`` when the problem is not on one line.
        expected: what the reader expected to find.
        found: what it found instead (may be ``None``).
        record: 0-based index of the offending record given to a writer, or ``None``.
    """

    def __init__(self, path, line: int | None = None, expected: str | None = None, found=None, *,
                 record: int | None = None):
        if expected is None:
            _from_message(self, path, line, found, record)
            return
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        self.record = record
        where = self.path
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record}"
        message = f"{where}: expected {expected}"
        if found is not None:
            message += f", found {found!r}" if isinstance(found, str) else f", found {found}"
        super().__init__(message)

    def __reduce__(self):  # the same for every subclass, whatever its constructor
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


class ImageError(AnnotationError):
    """An image file that is missing, unreadable, truncated or that OpenCV cannot decode.

    A subclass of :class:`AnnotationError`, so code that skips bad samples skips these too.
    The message names the image and the annotation that refers to it, e.g.
    ``"faces/001.jpg (referenced by faces/001.pts): expected a complete JPEG ending with the
    end-of-image marker FF D9, found 'cut off after 5120 bytes'"``.

    Attributes:
        path: the image file.
        annotation: the annotation file (or ``list:line``) that refers to it, or ``None``.
        expected, found: as for :class:`AnnotationError`; ``line`` and ``record`` are ``None``.
    """

    def __init__(self, path, expected: str | None = None, found=None, annotation=None):
        if expected is None:                         # ImageError(message): see AnnotationError
            _from_message(self, path, None, found, annotation)
            self.annotation = None
            return
        super().__init__(path, None, expected, found)
        self.annotation = None if annotation is None else str(annotation)
        if self.annotation is not None:
            where = f"{self.path} (referenced by {self.annotation})"
            self.args = (where + str(self)[len(self.path):],)
