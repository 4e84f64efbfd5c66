"""Annotation sets on disk: a seeded choice of n files, the sample split, bad files named."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from lmk.data import (AnnotationError, ImageError, PtsFolder, data_label, open_dataset,
                      open_sample, open_source, write_image, write_pts, write_wflw)
from lmk.data.dataset import SAMPLE_ROOT

BAD_KINDS = ("directory", "dangling_link", "unreadable", "no_image", "truncated", "malformed")


def _face(rng, k):
    return rng.integers(0, 255, (40, 36, 3), dtype=np.uint8), rng.uniform(5, 30, (68, 2)) + k


def good_files(folder, count, prefix="face"):
    """``count`` 300W-style pairs written with the project's writers; returns the .pts paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    paths = []
    for k in range(count):
        image, points = _face(rng, k)
        write_image(folder / f"{prefix}{k:02d}.png", image)
        write_pts(folder / f"{prefix}{k:02d}.pts", points)
        paths.append(folder / f"{prefix}{k:02d}.pts")
    return paths


def bad_file(folder, kind, monkeypatch):
    """One bad file of ``kind`` in ``folder``; returns the file the error must name."""
    rng = np.random.default_rng(9)
    image, points = _face(rng, 0)
    if kind == "directory":                       # a folder that looks like an annotation
        (folder / "zdir.pts").mkdir()
        return folder / "zdir.pts"
    if kind == "dangling_link":
        (folder / "zlink.pts").symlink_to(folder / "gone.pts")
        return folder / "zlink.pts"
    if kind == "unreadable":
        path = folder / "zlocked.pts"
        write_pts(path, points)
        write_image(folder / "zlocked.png", image)
        path.chmod(0)
        if os.access(path, os.R_OK):              # root reads anything: deny it by hand
            real_open = open

            def denying_open(file, *args, **kwargs):
                if Path(file) == path:
                    raise PermissionError(13, "Permission denied", str(path))
                return real_open(file, *args, **kwargs)
            monkeypatch.setattr("builtins.open", denying_open)
        return path
    if kind == "no_image":
        write_pts(folder / "znoimage.pts", points)
        return folder / "znoimage.pts"
    if kind == "truncated":                       # a PNG cut off at 40 %
        write_pts(folder / "zcut.pts", points)
        write_image(folder / "zcut.png", image)
        data = (folder / "zcut.png").read_bytes()
        (folder / "zcut.png").write_bytes(data[:int(0.4 * len(data))])
        return folder / "zcut.png"
    if kind == "malformed":
        write_image(folder / "zbad.png", image)
        (folder / "zbad.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
        return folder / "zbad.pts"
    raise AssertionError(kind)


REASONS = {"directory": "IsADirectoryError", "dangling_link": "FileNotFoundError",
           "unreadable": "PermissionError", "no_image": "an image beside it",
           "truncated": "complete PNG", "malformed": "68"}


# --- n: a seeded, sorted choice ----------------------------------------------------------------

def test_n_chooses_a_seeded_subset_in_file_order(tmp_path):
    files = good_files(tmp_path, 10)
    chosen = [Path(open_source("sample", tmp_path, "all", n=4, seed=s)[k]["path"])
              for s in (0, 1) for k in range(4)]
    expected = [files[i] for s in (0, 1)
                for i in sorted(np.random.default_rng(s).permutation(10)[:4])]
    assert chosen == expected
    again = open_source("sample", tmp_path, "all", n=4, seed=0)
    assert [again[k]["path"] for k in range(4)] == [str(p) for p in chosen[:4]]
    assert chosen[:4] != chosen[4:]


@pytest.mark.parametrize("n", [None, 10, 25])
def test_n_at_least_the_folder_size_uses_every_file(tmp_path, n):
    good_files(tmp_path, 10)
    assert len(open_source("sample", tmp_path, "all", n=n)) == 10


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "4"])
def test_n_must_be_a_positive_int(tmp_path, n):
    good_files(tmp_path, 3)
    with pytest.raises(ValueError, match="n must be a positive int"):
        open_source("sample", tmp_path, "all", n=n)


def test_numpy_n_is_accepted(tmp_path):
    good_files(tmp_path, 5)
    assert len(open_source("sample", tmp_path, "all", n=np.int64(2))) == 2


def test_n_counts_good_files_when_some_are_skipped(tmp_path, monkeypatch):
    good_files(tmp_path, 6)
    for kind in BAD_KINDS:
        bad_file(tmp_path, kind, monkeypatch)
    for seed in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = open_source("sample", tmp_path, "all", n=5, seed=seed, on_error="skip",
                                 verify_images=True)
        assert len(source) == 5
        names = [Path(source[k]["path"]).name for k in range(5)]
        assert names == sorted(names) and all(name.startswith("face") for name in names)


def test_300w_split_honours_n(tmp_path):
    for sub in ("afw", "helen/trainset", "lfpw/trainset"):
        good_files(tmp_path / sub, 4)
    assert len(open_source("300w", tmp_path, "train")) == 12
    ds = open_dataset("300w", tmp_path, "train", n=5, seed=3, input_size=32)
    assert len(ds) == 5 and ds.skipped == []


# --- the sample set's train / test split -------------------------------------------------------

def test_sample_split_is_disjoint_and_documented():
    names = {split: [Path(item["path"]).stem for item in open_source("sample", split=split)]
             for split in ("train", "test", "all")}
    assert names["test"] == ["default_003", "default_007", "easy_003", "easy_007", "hard_003"]
    assert len(names["train"]) == 15 and not set(names["train"]) & set(names["test"])
    assert sorted(names["train"] + names["test"]) == names["all"]
    assert len(names["all"]) == len(list(SAMPLE_ROOT.glob("*.pts"))) == 20


def test_sample_split_is_validated():
    with pytest.raises(ValueError, match=r"sample split must be one of .*'holdout'"):
        open_source("sample", split="holdout")


def test_sample_split_ignores_skipped_files(tmp_path, monkeypatch):
    files = good_files(tmp_path, 8)
    test_before = [Path(item["path"]) for item in open_sample(tmp_path, "test")]
    assert test_before == [files[3], files[7]]
    files[1].write_text("not a pts file\n")
    with pytest.warns(UserWarning) as caught:
        train = open_sample(tmp_path, "train", on_error="skip")
    assert any("face01.pts" in str(w.message) for w in caught)
    assert [Path(f).name for f, _ in train.skipped] == ["face01.pts"]
    assert [Path(item["path"]) for item in open_sample(tmp_path, "test")] == test_before


# --- bad files: skipped with a reason, or named in the error -----------------------------------

def test_skip_records_every_bad_file_with_its_reason(tmp_path, monkeypatch):
    good_files(tmp_path, 3)
    bad = {kind: bad_file(tmp_path, kind, monkeypatch) for kind in BAD_KINDS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset("sample", tmp_path, "all", on_error="skip", verify_images=True,
                          input_size=32)
    assert len(ds) == 3
    reasons = {Path(file).name: reason for file, reason in ds.skipped}
    assert len(ds.skipped) == len(BAD_KINDS)
    for kind, path in bad.items():
        pts = path.with_suffix(".pts").name
        assert REASONS[kind] in reasons[pts], (kind, reasons[pts])
    assert "zcut.png" in reasons["zcut.pts"]            # the image is named, not only its .pts
    messages = " ".join(str(w.message) for w in caught)
    assert all(path.with_suffix(".pts").name in messages for path in bad.values())
    assert "skipped 6 bad sample(s) of 9" in messages
    for k in range(len(ds)):
        assert ds[k]["image"].shape == (3, 32, 32)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_raise_names_the_bad_file(tmp_path, monkeypatch, kind):
    good_files(tmp_path, 2)
    path = bad_file(tmp_path, kind, monkeypatch)
    with pytest.raises((AnnotationError, OSError)) as info:
        open_source("sample", tmp_path, "all", verify_images=True)
    assert path.name in str(info.value)


def test_truncated_image_without_verification_fails_when_read(tmp_path, monkeypatch):
    good_files(tmp_path, 2)
    bad_file(tmp_path, "truncated", monkeypatch)
    source = open_source("sample", tmp_path, "all")        # found, not decoded
    assert len(source) == 3 and source.skipped == []
    with pytest.raises(ImageError, match="zcut.png"):
        source[2]


@pytest.mark.parametrize("name", ["synthetic", "sample"])
def test_on_error_is_validated(name):
    allowed = r"on_error must be one of \('raise', 'skip'\), got 'ignore'"
    with pytest.raises(ValueError, match=allowed):
        open_source(name, n=2, on_error="ignore")
    with pytest.raises(ValueError, match="on_error"):
        PtsFolder(SAMPLE_ROOT, on_error="Skip")


def test_data_label():
    assert [data_label(d) for d in ("synthetic", "sample", "300w", "wflw", "jd106")] == [
        "synthetic faces", "300W-format sample", "300W", "WFLW", "JD-landmark"]
    with pytest.raises(ValueError, match=r"unknown data set '300W'.*'300w'"):
        data_label("300W")


def test_wflw_bad_line_is_one_skipped_face_and_n_is_honoured(tmp_path):
    rng = np.random.default_rng(4)
    lists = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    lists.mkdir(parents=True)
    (tmp_path / "WFLW_images").mkdir()
    records = []
    for k in range(6):
        write_image(tmp_path / "WFLW_images" / f"img_{k}.jpg",
                    rng.integers(0, 255, (60, 60, 3), dtype=np.uint8))
        records.append({"landmarks": rng.uniform(5, 55, (98, 2)), "box": [4.5, 5.0, 55.0, 56.0],
                        "attributes": {"pose": k % 2}, "image": f"img_{k}.jpg"})
    list_file = lists / "list_98pt_rect_attr_train.txt"
    write_wflw(list_file, records)
    lines = list_file.read_text().splitlines()
    fields = lines[2].split()
    fields[196], fields[198] = fields[198], fields[196]            # an inverted box on line 3
    lines[2] = " ".join(fields)
    list_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match="line 3"):
        open_source("wflw", tmp_path, "train")
    with pytest.warns(UserWarning):
        source = open_source("wflw", tmp_path, "train", on_error="skip")
    assert len(source) == 5 and [f for f, _ in source.skipped] == [f"{list_file}:3"]
    with pytest.warns(UserWarning):
        chosen = open_source("wflw", tmp_path, "train", n=5, seed=1, on_error="skip")
    assert len(chosen) == 5
    assert len(open_source("wflw", tmp_path, "train", n=2, seed=1, on_error="skip")) == 2
