"""The dataset *sources* behind a notebook's ``DATA``: annotated image sets on disk, and
:func:`open_source`, which picks the source for ``DATA`` / ``DATA_ROOT`` (synthetic faces too).

An annotation set parses every annotation and locates every image when it is built, and decodes
an image when an item is accessed. The folder layouts the ``open_*`` functions expect are those
of ``data/README.md``.

Every set takes the same keyword arguments (see :class:`AnnotationSet`): ``n`` and ``seed``
(a reproducible choice of ``n`` files), ``on_error`` (``"raise"`` or ``"skip"``) and
``verify_images`` (decode every chosen image up front).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .._backend import check_positive_int
from .errors import AnnotationError
from .formats import (WFLW_ATTRIBUTES, find_image, read_image, read_jd106, read_pts, read_wflw,
                      verify_image)
from .synth import SynthFaces

ON_ERROR = ("raise", "skip")
BAD_FILE_ERRORS = (AnnotationError, OSError)
"""What a bad file raises: a malformed annotation or image (:class:`AnnotationError`) or a
file-system error (a directory named ``*.pts``, a dangling link, no read permission, ...)."""

DATA_LABELS = {"synthetic": "synthetic faces", "sample": "300W-format sample", "300w": "300W",
               "wflw": "WFLW", "jd106": "JD-landmark"}
"""A notebook's ``DATA`` value -> the name plots and tables show."""
DATA_NAMES = tuple(DATA_LABELS)
SYNTH_DEFAULT_N = 1000
"""Size of a synthetic source when ``n=None`` (synthetic faces never run out)."""
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "data" / "sample"
"""The committed 300W-format sample set (``data/sample``)."""
SAMPLE_SPLITS = ("train", "test", "all")


def data_label(name: str) -> str:
    """The human name of a ``DATA`` value, for plot titles and table headers.

    ``data_label("300w") == "300W"``; ``"synthetic"`` gives ``"synthetic faces"``.
    """
    if name not in DATA_LABELS:
        raise ValueError(f"unknown data set {name!r}; expected one of {DATA_NAMES}")
    return DATA_LABELS[name]


def check_on_error(on_error) -> str:
    """``on_error`` itself if it is ``"raise"`` or ``"skip"``, else a ``ValueError``."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return on_error


def _reason(exc: Exception) -> str:
    """One line for ``skipped``: the message of an AnnotationError, the OS's words otherwise."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return str(exc)


class AnnotationSet:
    """Indexable annotated images: items ``{"image", "landmarks", "box"?, "path"}``.

    Annotations are parsed and image files located when the set is built; images are decoded
    on access.

    Args:
        entries: ``(source, load)`` pairs in a fixed order; ``load()`` returns a record dict
            (``path``, ``landmarks``, ``image_path``, optional ``box``) or raises for a bad file.
        n: use ``n`` files chosen with ``numpy.random.default_rng(seed)``, kept in their
            original order; ``None`` (or an ``n`` at least the number of entries) uses all, so
            ``len(set)`` says how many there really are. Files are read in the chosen random
            order until ``n`` good ones are found, so a skipped file is replaced by the next.
        seed: seed of that choice.
        on_error: ``"raise"`` stops at the first bad file with its error (which names the
            file); ``"skip"`` leaves it out with a warning and lists ``(file, reason)`` in
            :attr:`skipped`. Bad means an :class:`AnnotationError` or an ``OSError`` (a
            directory named ``*.pts``, a dangling symlink, no read permission, ...). Only the
            files read are checked: with ``n`` smaller than the set, the others are not.
        verify_images: also check every chosen image up front
            (:func:`~lmk.data.formats.verify_image`: undecodable or truncated files).
    """

    def __init__(self, entries, *, n: int | None = None, seed: int = 0,
                 on_error: str = "raise", verify_images: bool = False):
        check_on_error(on_error)
        entries = list(entries)
        order = range(len(entries))
        if n is not None and check_positive_int(n, "n") < len(entries):
            order = np.random.default_rng(seed).permutation(len(entries))
        chosen, self.skipped = [], []
        for position in order:
            if n is not None and len(chosen) == n:
                break
            source, load = entries[position]
            try:
                record = load()
                if verify_images:
                    verify_image(record["image_path"], annotation=source)
            except BAD_FILE_ERRORS as exc:
                if on_error == "raise":
                    raise
                self.skipped.append((str(source), _reason(exc)))
                warnings.warn(f"skipping bad sample {source}: {_reason(exc)}", stacklevel=3)
                continue
            chosen.append((position, record))
        self.records = [record for _, record in sorted(chosen, key=lambda pair: pair[0])]
        if self.skipped:
            warnings.warn(f"skipped {len(self.skipped)} bad sample(s) of "
                          f"{len(self.skipped) + len(self.records)}", stacklevel=3)

    def __len__(self) -> int:
        return len(self.records)

    def file(self, index: int) -> str:
        """The annotation file (or ``list_file:line``) of item ``index``, for messages."""
        return str(self.records[index]["path"])

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        item = {"image": read_image(record["image_path"], annotation=record["path"]),
                "landmarks": record["landmarks"].astype(np.float32), "path": str(record["path"])}
        if record.get("box") is not None:
            item["box"] = record["box"].astype(np.float32)
        return item


def _pts_entry(path, num_points):
    def load():
        return {"path": path, "landmarks": read_pts(path, num_points),
                "image_path": find_image(path)}
    return path, load


def _pts_files(root) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder of .pts files: {root}")
    files = sorted(root.rglob("*.pts"))
    if not files:
        raise FileNotFoundError(f"no .pts files under {root}")
    return files


class PtsFolder(AnnotationSet):
    """Every ``.pts`` under ``root`` (recursively, sorted) with its image beside it."""

    def __init__(self, root, num_points: int | None = 68, **kwargs):
        super().__init__([_pts_entry(f, num_points) for f in _pts_files(root)], **kwargs)


def open_sample(root=None, split: str = "train", **kwargs) -> AnnotationSet:
    """The sample set ``data/sample`` (or any folder of ``.pts`` + images) split by a fixed rule.

    The ``.pts`` files are sorted by path and every fourth one (positions 3, 7, 11, ...) is the
    ``test`` split, the rest ``train``; ``all`` is every file. For ``data/sample`` that puts
    ``default_003``, ``default_007``, ``easy_003``, ``easy_007`` and ``hard_003`` (5 faces) in
    ``test`` and the other 15 in ``train``. The rule looks at positions before any file is
    skipped, so a bad file never moves another one between the splits.
    """
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"sample split must be one of {SAMPLE_SPLITS}, got {split!r}")
    files = _pts_files(SAMPLE_ROOT if root is None else root)
    if split != "all":
        files = [f for k, f in enumerate(files) if (k % 4 == 3) == (split == "test")]
    return AnnotationSet([_pts_entry(f, 68) for f in files], **kwargs)


class WFLWAnnotations(AnnotationSet):
    """The faces of one WFLW list file, images under ``image_root``; items also carry ``box``
    and ``attributes``. ``attribute`` keeps only faces with that attribute set (a test subset).

    With ``on_error="skip"`` a malformed line is one skipped face (``list_file:line``), in
    every attribute subset, since its attributes cannot be trusted.
    """

    def __init__(self, list_file, image_root, attribute: str | None = None, **kwargs):
        if attribute is not None and attribute not in WFLW_ATTRIBUTES:
            raise ValueError(f"attribute must be one of {WFLW_ATTRIBUTES}, got {attribute!r}")
        bad_lines = [] if check_on_error(kwargs.get("on_error", "raise")) == "skip" else None
        records = read_wflw(list_file, skipped=bad_lines)
        if attribute is not None:
            records = [r for r in records if r["attributes"][attribute]]

        def bad_entry(exc):
            def load():
                raise exc
            return f"{list_file}:{exc.line}", load

        def entry(r):
            def load():
                image_path = Path(image_root) / r["image"]
                if not image_path.is_file():
                    raise AnnotationError(list_file, r["line"], "an existing image",
                                          str(image_path))
                return dict(r, path=f"{list_file}:{r['line']}", image_path=image_path)
            return f"{list_file}:{r['line']}", load

        lines = [(r["line"], entry(r)) for r in records]
        lines += [(exc.line, bad_entry(exc)) for exc in bad_lines or []]
        super().__init__([e for _, e in sorted(lines, key=lambda pair: pair[0])], **kwargs)

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["attributes"] = dict(self.records[index]["attributes"])
        return item


class JD106Folder(AnnotationSet):
    """JD-landmark files under ``root``: every ``landmark/NAME.jpg.txt`` (or ``NAME.txt``) with
    its image in the sibling ``picture/`` folder or beside it."""

    def __init__(self, root, **kwargs):
        root = Path(root)
        check_on_error(kwargs.get("on_error", "raise"))
        files = sorted(p for p in root.rglob("*.txt") if p.parent.name == "landmark")
        if not files:
            raise FileNotFoundError(f"no landmark/*.txt files under {root}")

        def entry(path):
            def load():
                points = read_jd106(path)
                for candidate in (path.parent.parent / "picture" / path.name, path):
                    try:
                        image = find_image(candidate)
                        break
                    except AnnotationError:
                        continue
                else:
                    raise AnnotationError(path, None, "its image in ../picture/ or beside it",
                                          "none")
                return {"path": path, "landmarks": points, "image_path": image}
            return path, load

        super().__init__([entry(f) for f in files], **kwargs)


# --- data set folders (see data/README.md) ---------------------------------------------------

_300W_SPLITS = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "test": ("helen/testset", "lfpw/testset", "ibug"),
    "private": ("300W/01_Indoor", "300W/02_Outdoor"),
}


def open_300w(root, split: str = "train", **kwargs) -> AnnotationSet:
    """300W by split: ``train`` (AFW + HELEN/LFPW train, 3148 faces), ``common``,
    ``challenging`` (iBUG), ``test`` (common + challenging, 689) or ``private`` (300-W test)."""
    if split not in _300W_SPLITS:
        raise ValueError(f"300W split must be one of {tuple(_300W_SPLITS)}, got {split!r}")
    folders = [Path(root) / sub for sub in _300W_SPLITS[split]]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(f"300W split {split!r} needs the folders {missing} "
                                f"(see data/README.md)")
    entries = [_pts_entry(f, 68) for folder in folders for f in sorted(folder.rglob("*.pts"))]
    return AnnotationSet(entries, **kwargs)


def open_wflw(root, split: str = "train", **kwargs) -> WFLWAnnotations:
    """WFLW: ``train``, ``test`` or a test subset ``test_<attribute>`` (e.g. ``test_pose``)."""
    root = Path(root)
    base, _, attribute = split.partition("_")
    if base not in ("train", "test") or (attribute and base != "test"):
        raise ValueError(f"WFLW split must be 'train', 'test' or 'test_<attribute>', got {split!r}")
    list_file = (root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
                 / f"list_98pt_rect_attr_{base}.txt")
    if not list_file.is_file():
        raise FileNotFoundError(f"WFLW list file not found: {list_file} (see data/README.md)")
    attribute = {"makeup": "make_up"}.get(attribute, attribute) or None
    return WFLWAnnotations(list_file, root / "WFLW_images", attribute=attribute, **kwargs)


_JD_SPLITS = {"train": ("Training_data", "train"), "val": ("Validation_data", "val"),
              "test": ("Test_data", "test")}


def open_jd106(root, split: str = "train", **kwargs) -> JD106Folder:
    """JD-landmark: ``root/Training_data`` (``train``), ``Validation_data`` (``val``) or
    ``Test_data`` (``test``), each holding ``.../picture`` and ``.../landmark`` folders."""
    if split not in _JD_SPLITS:
        raise ValueError(f"JD-landmark split must be one of {tuple(_JD_SPLITS)}, got {split!r}")
    for name in _JD_SPLITS[split]:
        if (Path(root) / name).is_dir():
            return JD106Folder(Path(root) / name, **kwargs)
    raise FileNotFoundError(f"JD-landmark split {split!r}: none of "
                            f"{[str(Path(root) / n) for n in _JD_SPLITS[split]]} exists "
                            f"(see data/README.md)")


# --- a notebook's DATA -------------------------------------------------------------------

def _split_seed(seed: int, split: str) -> int:
    offsets = {"train": 0, "val": 1_000_003, "test": 2_000_003}
    if split not in offsets:
        raise ValueError(f"split for synthetic data must be one of {tuple(offsets)}, got {split!r}")
    return seed + offsets[split]


def open_source(name: str, root=None, split: str = "train", *, n: int | None = None,
                size: int = 128, seed: int = 0, difficulty: str = "default",
                on_error: str = "raise", verify_images: bool = False):
    """The raw source behind a notebook's ``DATA`` / ``DATA_ROOT`` parameters.

    Args:
        name: ``"synthetic"`` (``SynthFaces(n, size, seed, difficulty)``, a distinct seed per
            split), ``"sample"`` (the committed 300W-format set, ``root`` defaults to
            ``data/sample``), ``"300w"``, ``"wflw"`` or ``"jd106"`` (``root`` = the data set
            folder described in ``data/README.md``).
        split: ``"train"`` / ``"test"`` (``"val"`` too for synthetic and JD-landmark), and the
            data set's named subsets (see the readers). The sample set's ``test`` split is
            every fourth file (:func:`~lmk.data.sources.open_sample`).
        n: number of images. Real data: ``n`` files chosen with
            ``numpy.random.default_rng(seed)`` and kept in file order; ``None``, or more than
            the split holds, means all of them (``len()`` tells how many). Synthetic: ``n``
            faces, :data:`SYNTH_DEFAULT_N` if ``None``.
        size: synthetic image size (real images keep theirs).
        seed: synthetic seed, and the seed of the choice of ``n`` real files.
        on_error: ``"raise"`` at the first bad file, or ``"skip"`` it and list ``(file,
            reason)`` in the source's ``skipped``.
        verify_images: check every chosen image (truncated, undecodable) while building.
    """
    check_on_error(on_error)
    if name == "synthetic":
        n = SYNTH_DEFAULT_N if n is None else n
        return SynthFaces(n, size=size, seed=_split_seed(seed, split), difficulty=difficulty)
    files = {"n": n, "seed": seed, "on_error": on_error, "verify_images": verify_images}
    if name == "sample":
        return open_sample(root, split, **files)
    if name not in DATA_NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {DATA_NAMES}")
    if root is None:
        raise ValueError(f"DATA={name!r} needs DATA_ROOT: the folder holding the data set "
                         f"(see data/README.md)")
    opener = {"300w": open_300w, "wflw": open_wflw, "jd106": open_jd106}
    return opener[name](root, split, **files)
