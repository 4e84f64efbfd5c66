"""Annotated image sets on disk: the dataset *sources* behind ``DATA="300w"`` and friends.

An annotation set parses every annotation and locates every image when it is built, and decodes
an image when an item is accessed. The folder layouts the ``open_*`` functions expect are those
of ``data/README.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import AnnotationError
from .formats import WFLW_ATTRIBUTES, find_image, read_image, read_jd106, read_pts, read_wflw


class AnnotationSet:
    """Indexable annotated images: items ``{"image", "landmarks", "box"?, "path"}``.

    Annotations are parsed and image files located when the set is built; images are decoded
    on access. ``on_error="raise"`` stops at the first bad file; ``"skip"`` leaves it out with
    a warning and lists ``(file, reason)`` in :attr:`skipped`. ``verify_images=True`` also
    decodes every image up front so unreadable ones are caught (or skipped) there.
    """

    def __init__(self, entries, on_error: str = "raise", verify_images: bool = False):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.records, self.skipped = [], []
        for source, load in entries:      # load() -> record dict, may raise AnnotationError
            try:
                record = load()
                if verify_images:
                    read_image(record["image_path"], annotation=source)
            except AnnotationError as exc:
                if on_error == "raise":
                    raise
                self.skipped.append((str(source), str(exc)))
                warnings.warn(f"skipping bad sample: {exc}", stacklevel=3)
                continue
            self.records.append(record)
        if self.skipped:
            warnings.warn(f"skipped {len(self.skipped)} bad sample(s) of "
                          f"{len(self.skipped) + len(self.records)}", stacklevel=3)

    def __len__(self) -> int:
        return len(self.records)

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


class PtsFolder(AnnotationSet):
    """Every ``.pts`` under ``root`` (recursively, sorted) with its image beside it."""

    def __init__(self, root, num_points: int | None = 68, **kwargs):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"no such folder of .pts files: {root}")
        files = sorted(root.rglob("*.pts"))
        if not files:
            raise FileNotFoundError(f"no .pts files under {root}")
        super().__init__([_pts_entry(f, num_points) for f in files], **kwargs)


class WFLWAnnotations(AnnotationSet):
    """The faces of one WFLW list file, images under ``image_root``; items also carry ``box``
    and ``attributes``. ``attribute`` keeps only faces with that attribute set (a test subset)."""

    def __init__(self, list_file, image_root, attribute: str | None = None, **kwargs):
        if attribute is not None and attribute not in WFLW_ATTRIBUTES:
            raise ValueError(f"attribute must be one of {WFLW_ATTRIBUTES}, got {attribute!r}")
        records = read_wflw(list_file)
        if attribute is not None:
            records = [r for r in records if r["attributes"][attribute]]

        def entry(r):
            def load():
                image_path = Path(image_root) / r["image"]
                if not image_path.is_file():
                    raise AnnotationError(list_file, r["line"], "an existing image",
                                          str(image_path))
                return dict(r, path=f"{list_file}:{r['line']}", image_path=image_path)
            return f"{list_file}:{r['line']}", load

        super().__init__([entry(r) for r in records], **kwargs)

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["attributes"] = dict(self.records[index]["attributes"])
        return item


class JD106Folder(AnnotationSet):
    """JD-landmark files under ``root``: every ``landmark/NAME.jpg.txt`` (or ``NAME.txt``) with
    its image in the sibling ``picture/`` folder or beside it."""

    def __init__(self, root, **kwargs):
        root = Path(root)
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
