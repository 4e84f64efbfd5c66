"""Faults in real data files: truncated images, lossy or invalid writes, pickled errors."""

import pickle
import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lmk.data import errors, read_pts, read_wflw, write_pts, write_wflw
from lmk.data.errors import AnnotationError, ImageError
from lmk.data.formats import read_image, verify_image

RNG = np.random.default_rng(1)
IMAGE = cv2.GaussianBlur(RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8), (5, 5), 0)


def encoded(ext, image=IMAGE):
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def put(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- truncated and corrupt images -----------------------------------------------------------

@pytest.mark.parametrize("ext, marker", [(".jpg", "FF D9"), (".png", "IEND"), (".bmp", "BMP")])
def test_image_cut_at_40_percent_is_named(tmp_path, ext, marker):
    data = encoded(ext)
    path = put(tmp_path, "face" + ext, data[:int(0.4 * len(data))])
    with pytest.raises(ImageError, match=marker) as info:
        read_image(path, annotation=tmp_path / "face.pts")
    assert str(path) in str(info.value) and "face.pts" in str(info.value)
    assert info.value.path == str(path) and info.value.annotation == str(tmp_path / "face.pts")
    assert isinstance(info.value, AnnotationError) and isinstance(info.value, ValueError)
    with pytest.raises(ImageError, match="cut off after"):
        verify_image(path, decode=False)               # found from the bytes alone


def test_jpeg_cut_anywhere_in_its_image_data_is_caught(tmp_path):
    data = encoded(".jpg")
    start = data.find(b"\xff\xda")
    for end in np.linspace(start, len(data) - 1, 25).astype(int):
        path = put(tmp_path, "cut.jpg", data[:end])
        with pytest.raises(ImageError, match="FF D9"):
            verify_image(path, decode=False)


def test_complete_images_pass_including_trailing_bytes(tmp_path):
    for ext in (".jpg", ".png", ".bmp"):
        path = put(tmp_path, "ok" + ext, encoded(ext))
        verify_image(path)
        assert read_image(path).shape == IMAGE.shape
    padded = put(tmp_path, "padded.jpg", encoded(".jpg") + b"\x00" * 64)   # camera padding
    assert np.array_equal(read_image(padded), read_image(tmp_path / "ok.jpg"))


def _with_thumbnail(data):
    """A JPEG with an EXIF APP1 segment that carries a complete thumbnail JPEG (and FF D9)."""
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x00" + b"\x00\x00\x00\x00"   # no IFD entries
    payload = b"Exif\x00\x00" + tiff + encoded(".jpg", IMAGE[:16, :16])
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def test_the_thumbnails_end_marker_does_not_hide_a_cut_main_image(tmp_path):
    data = _with_thumbnail(encoded(".jpg"))
    assert read_image(put(tmp_path, "whole.jpg", data)).shape == IMAGE.shape
    cut = put(tmp_path, "cut.jpg", data[:len(data) - 2000])
    assert cut.read_bytes().rfind(b"\xff\xd9") > 0     # the thumbnail's marker is still there
    with pytest.raises(ImageError, match="FF D9"):
        read_image(cut)


def test_png_with_a_corrupt_chunk_length_is_caught(tmp_path):
    data = bytearray(encoded(".png"))
    data[33:37] = (10 ** 8).to_bytes(4, "big")          # the first chunk after IHDR
    with pytest.raises(ImageError, match="IEND"):
        verify_image(put(tmp_path, "bad.png", bytes(data)), decode=False)


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_bytes(b"JFIF? no, just text"), "decodable image"),
    (lambda p: p.write_bytes(b""), "an empty file"),
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.symlink_to(p.parent / "gone.png"), "no such file"),   # dangling link
])
def test_files_that_are_not_images(tmp_path, make, expected):
    path = tmp_path / "face.png"
    make(path)
    with pytest.raises(ImageError, match=expected) as info:
        read_image(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def test_unreadable_image_file(tmp_path, monkeypatch):
    path = put(tmp_path, "locked.png", encoded(".png"))

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", refuse)   # chmod 0 does not stop root
    with pytest.raises(ImageError, match="PermissionError: Permission denied") as info:
        read_image(path)
    assert str(path) in str(info.value) and isinstance(info.value.__cause__, PermissionError)


# --- lossless .pts --------------------------------------------------------------------------

def test_300w_file_with_six_decimals_is_rewritten_unchanged(tmp_path):
    original = ["312.123456 101.000001", "0.123456 -3.250000", "1024.999999 0.000001",
                "0.5 7.100000"]
    src = tmp_path / "src.pts"
    src.write_text("version: 1\nn_points:  4\n{\n" + "\n".join(original) + "\n}\n")
    points = read_pts(src)
    write_pts(tmp_path / "out.pts", points)
    rewritten = (tmp_path / "out.pts").read_text().splitlines()[3:7]
    assert [[float(t) for t in line.split()] for line in rewritten] == \
        [[float(t) for t in line.split()] for line in original]       # the same numbers
    assert rewritten[0] == "312.123456 101.000001" and rewritten[1] == "0.123456 -3.25"
    assert np.array_equal(read_pts(tmp_path / "out.pts"), points)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.just(2)),
              elements=st.floats(-5e3, 5e3, allow_nan=False)))
def test_pts_read_write_read_is_exact(tmp_path_factory, points):
    path = tmp_path_factory.mktemp("pts") / "p.pts"
    write_pts(path, points, one_based=False)
    assert np.array_equal(read_pts(path, one_based=False), points)     # any float64 at all
    write_pts(path, points)              # one-based: x + 1 on disk holds x to its last bit ...
    first = read_pts(path)
    assert np.all(np.abs(first - points) <= np.spacing(np.abs(points) + 1.0))
    write_pts(path, first)               # ... and a file's own numbers come back exactly
    assert np.array_equal(read_pts(path), first)


@pytest.mark.parametrize("decimals", [-1, 2.5, True, "3"])
def test_write_pts_rejects_bad_decimals(tmp_path, decimals):
    with pytest.raises(ValueError, match="decimals"):
        write_pts(tmp_path / "x.pts", [[1.0, 2.0]], decimals=decimals)


# --- WFLW: floats kept, one set of rules for reading and writing -----------------------------

def wflw_record(box=(10.25, 20.5, 90.123456789, 95.0), **changes):
    record = {"landmarks": RNG.uniform(0, 100, size=(98, 2)), "box": np.array(box),
              "attributes": {"pose": 1, "blur": 0}, "image": "51--Dresses/51_Dresses_1.jpg"}
    return {**record, **changes}


def test_wflw_boxes_and_landmarks_stay_exact_floats(tmp_path):
    records = [wflw_record(), wflw_record(box=(290, 471, 1054, 1235))]
    write_wflw(tmp_path / "list.txt", records)
    back = read_wflw(tmp_path / "list.txt")
    for r, b in zip(records, back):
        assert np.array_equal(b["box"], r["box"]) and np.array_equal(b["landmarks"],
                                                                      r["landmarks"])
    assert (tmp_path / "list.txt").read_text().splitlines()[1].split()[196:200] == \
        ["290", "471", "1054", "1235"]                   # WFLW's integer boxes as they were


def _nan_landmark(r):
    r["landmarks"][3, 1] = np.nan


def _inf_box(r):
    r["box"] = np.array([1.0, 2.0, np.inf, 9.0])


BAD_RECORDS = {          # name: (edit of a good record, expected text of the error)
    "nan landmark": (_nan_landmark, r"a finite number for field 8 \(y of landmark 3\)"),
    "inf box": (_inf_box, r"a finite number for field 199 \(x_max\)"),
    "inverted box": (lambda r: r.update(box=np.array([50.0, 2.0, 40.0, 9.0])), "x_max > x_min"),
    "zero-size box": (lambda r: r.update(box=np.array([5.0, 9.0, 40.0, 9.0])), "y_max > y_min"),
    "attribute 2": (lambda r: r["attributes"].update(blur=2), "attributes 0 or 1"),
    "attribute 0.5": (lambda r: r["attributes"].update(pose=0.5), "attributes 0 or 1"),
}


@pytest.mark.parametrize("name", BAD_RECORDS)
def test_writer_and_reader_reject_the_same_records(tmp_path, name):
    edit, expected = BAD_RECORDS[name]
    bad = wflw_record()
    edit(bad)
    path = tmp_path / "list.txt"
    with pytest.raises(AnnotationError, match=expected) as wrote:
        write_wflw(path, [wflw_record(), bad])
    assert wrote.value.record == 1 and f"{path}, record 1" in str(wrote.value)
    assert not path.exists()                             # nothing half-written
    numbers = np.concatenate([bad["landmarks"].ravel(), bad["box"]])
    flags = [str(bad["attributes"].get(a, 0)) for a in
             ("pose", "expression", "illumination", "make_up", "occlusion", "blur")]
    line = " ".join([*map(repr, numbers.tolist()), *flags, bad["image"]])
    write_wflw(path, [wflw_record()])
    path.write_text(path.read_text() + line + "\n")      # the same record, by hand, on line 2
    with pytest.raises(AnnotationError, match=expected) as read:
        read_wflw(path)
    assert read.value.line == 2 and f"{path}, line 2" in str(read.value)
    assert read.value.expected == wrote.value.expected


@pytest.mark.parametrize("change, expected", [
    ({"image": "51--Dresses/my face.jpg"}, "without whitespace"),
    ({"image": ""}, "without whitespace"),
    ({"landmarks": np.zeros((68, 2))}, r"98 landmarks"),
    ({"attributes": {"makeup": 1}}, "attribute names"),
    ({"landmarks": [["a", "b"]] * 98}, "numeric 'landmarks'"),
])
def test_writer_rejects_records_the_format_cannot_hold(tmp_path, change, expected):
    with pytest.raises(AnnotationError, match=expected) as info:
        write_wflw(tmp_path / "list.txt", [wflw_record(), wflw_record(), wflw_record(**change)])
    assert info.value.record == 2 and "list.txt, record 2" in str(info.value)
    assert not (tmp_path / "list.txt").exists()


def test_read_wflw_can_collect_bad_lines_instead_of_stopping(tmp_path):
    path = tmp_path / "list.txt"
    write_wflw(path, [wflw_record() for _ in range(3)])
    lines = path.read_text().splitlines()
    fields = lines[1].split()
    fields[196:200] = ["9", "9", "9", "20"]                     # zero width
    path.write_text("\n".join([lines[0], " ".join(fields), lines[2]]) + "\n")
    skipped = []
    records = read_wflw(path, skipped=skipped)
    assert [r["line"] for r in records] == [1, 3]
    assert len(skipped) == 1 and skipped[0].line == 2 and "x_max > x_min" in str(skipped[0])


# --- errors survive pickling (worker processes send them back pickled) ----------------------

def error_samples():
    noted = AnnotationError("faces/1.pts", 5, "two numbers 'x y'", "12.5 abc")
    noted.add_note("while reading item 7")
    noted.index = 7                                      # set after construction by a caller
    reworded = ImageError("faces/2.jpg", "a decodable image", "unreadable data")
    reworded.args = (f"item 3: {reworded}",)
    return [AnnotationError("faces/1.pts", 5, "two numbers 'x y'", "12.5 abc"),
            AnnotationError("list.txt", None, "attributes 0 or 1", "2", record=4),
            ImageError("faces/2.jpg", "a complete JPEG", "cut off after 10 bytes", "faces/2.pts"),
            noted, reworded]


@pytest.mark.parametrize("error", error_samples(), ids=repr)
def test_errors_survive_pickling(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and back.args == error.args
    assert vars(back) == vars(error)


def test_every_error_class_is_covered():
    classes = {c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, BaseException)}
    assert classes == {type(e) for e in error_samples()}
