"""Real-format readers and writers on small files written in each format."""

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from lmk.data import (AnnotationError, JD106Folder, PtsFolder, find_image,
                      read_image, read_jd106, read_pts, read_wflw, read_300vw, write_image,
                      write_jd106, write_pts, write_wflw, write_300vw)
from lmk.data.formats import WFLW_FIELDS
from lmk.data.sources import open_300w, open_jd106, open_wflw

RNG = np.random.default_rng(0)
POINTS = RNG.uniform(0, 100, size=(68, 2)).round(3)
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def pts_text(lines, n=None):
    n = len(lines) if n is None else n
    return "version: 1\nn_points:  %d\n{\n%s\n}\n" % (n, "\n".join(lines))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- .pts ---------------------------------------------------------------------------------

def test_pts_is_one_based_on_disk(tmp_path):
    path = write(tmp_path, "a.pts", pts_text(["1 1", "10.5 3.25"]))
    assert np.array_equal(read_pts(path), [[0.0, 0.0], [9.5, 2.25]])
    assert np.array_equal(read_pts(path, one_based=False), [[1.0, 1.0], [10.5, 3.25]])
    write_pts(tmp_path / "b.pts", [[0.0, 0.0], [9.5, 2.25]])
    lines = (tmp_path / "b.pts").read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points:  2", "{"]
    assert lines[3:] == ["1 1", "10.5 3.25", "}"]                 # lossless: no padding
    write_pts(tmp_path / "c.pts", [[0.0, 0.0], [9.5, 2.25]], decimals=3)
    assert (tmp_path / "c.pts").read_text().splitlines()[3:5] == ["1.000 1.000", "10.500 3.250"]


def test_pts_round_trip(tmp_path):
    write_pts(tmp_path / "r.pts", POINTS)
    assert np.allclose(read_pts(tmp_path / "r.pts", num_points=68), POINTS, atol=1e-9)
    write_pts(tmp_path / "z.pts", POINTS, one_based=False, decimals=6)
    assert np.allclose(read_pts(tmp_path / "z.pts", one_based=False), POINTS, atol=1e-9)


def test_pts_tolerates_windows_line_ends_and_blank_lines(tmp_path):
    path = tmp_path / "w.pts"
    path.write_bytes(b"version: 1\r\nn_points: 2\r\n{\r\n1 2\r\n\r\n3 4\r\n}\r\n")
    assert np.array_equal(read_pts(path), [[0, 1], [2, 3]])


@pytest.mark.parametrize("text, line, expected", [
    (pts_text(["1 2", "3 4"], n=3), 6, "3 points"),                       # wrong count
    (pts_text(["1 2", "3 abc"]), 5, "a number for y"),                     # non-numeric
    (pts_text(["1 2", "nan 4"]), 5, "a finite number for x"),              # NaN
    (pts_text(["1 2", "3 4 5"]), 5, "two numbers"),                        # three tokens
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", 5, "closing '}'"),          # no closing brace
    ("version: 1\nn_points: 2\n1 2\n3 4\n}\n", 3, "'key: value' or '{'"),  # no opening brace
    ("version: 1\n{\n1 2\n}\n", 2, "n_points"),                             # no n_points
    ("version: 1\nn_points: two\n{\n}\n", 2, "an integer n_points"),
])
def test_bad_pts_raise_annotation_error_with_file_and_line(tmp_path, text, line, expected):
    path = write(tmp_path, "bad.pts", text)
    with pytest.raises(AnnotationError, match=expected) as info:
        read_pts(path)
    assert info.value.line == line
    assert str(path) in str(info.value) and f"line {line}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_pts_with_the_wrong_declared_count(tmp_path):
    path = write(tmp_path, "five.pts", pts_text(["1 1"] * 5))
    with pytest.raises(AnnotationError, match="n_points: 68") as info:
        read_pts(path, num_points=68)
    assert info.value.line == 2


def test_pts_that_is_not_text(tmp_path):
    path = tmp_path / "bin.pts"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AnnotationError, match="UTF-8"):
        read_pts(path)


def test_write_pts_rejects_bad_points(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        write_pts(tmp_path / "x.pts", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        write_pts(tmp_path / "x.pts", [[0, np.inf]])


# --- images beside annotations ----------------------------------------------------------------

def _face_image(h=40, w=30):
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_image_is_found_beside_the_pts_and_decoded_as_rgb(tmp_path):
    image = _face_image()
    write_image(tmp_path / "f.png", image)
    write_pts(tmp_path / "f.pts", POINTS)
    assert find_image(tmp_path / "f.pts") == tmp_path / "f.png"
    assert np.array_equal(read_image(tmp_path / "f.png"), image)   # PNG is lossless, RGB order
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    write_image(tmp_path / "red.png", red)
    assert np.array_equal(cv2.imread(str(tmp_path / "red.png"))[0, 0], [0, 0, 255])  # BGR on disk


def test_missing_and_unreadable_images(tmp_path):
    write_pts(tmp_path / "lonely.pts", POINTS)
    with pytest.raises(AnnotationError, match="an image beside it") as info:
        find_image(tmp_path / "lonely.pts")
    assert "lonely.pts" in str(info.value)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(AnnotationError, match="decodable image"):
        read_image(tmp_path / "broken.png", annotation=tmp_path / "broken.pts")
    with pytest.raises(AnnotationError, match="no such file"):
        read_image(tmp_path / "nowhere.png")


def _pts_folder(tmp_path, n=3):
    for k in range(n):
        write_image(tmp_path / f"face{k}.png", _face_image())
        write_pts(tmp_path / f"face{k}.pts", POINTS + k)
    return tmp_path


def test_pts_folder_items(tmp_path):
    folder = PtsFolder(_pts_folder(tmp_path))
    assert len(folder) == 3
    item = folder[2]
    assert item["image"].shape == (40, 30, 3) and item["image"].dtype == np.uint8
    assert item["landmarks"].dtype == np.float32
    assert np.allclose(item["landmarks"], POINTS + 2, atol=1e-4)


def test_pts_folder_raises_or_skips_and_reports(tmp_path):
    _pts_folder(tmp_path)
    write(tmp_path, "face9.pts", pts_text(["1 2"] * 10 + ["x 4"] + ["1 2"] * 57))
    write_image(tmp_path / "face9.png", _face_image())
    write_pts(tmp_path / "noimage.pts", POINTS)
    with pytest.raises(AnnotationError, match="face9.pts, line 14"):
        PtsFolder(tmp_path)
    with pytest.warns(UserWarning) as record:
        folder = PtsFolder(tmp_path, on_error="skip")
    assert len(folder) == 3
    assert sorted(Path(f).name for f, _ in folder.skipped) == ["face9.pts", "noimage.pts"]
    messages = [str(w.message) for w in record]
    assert any("face9.pts" in m for m in messages) and any("noimage.pts" in m for m in messages)
    assert any("skipped 2 bad sample(s) of 5" in m for m in messages)


def test_unreadable_image_is_caught_by_verification(tmp_path):
    _pts_folder(tmp_path)
    (tmp_path / "face1.png").write_bytes(b"\x89PNG but truncated")
    folder = PtsFolder(tmp_path)                 # found, not decoded yet
    with pytest.raises(AnnotationError, match="face1.png"):
        folder[1]
    with pytest.raises(AnnotationError, match="decodable"):
        PtsFolder(tmp_path, verify_images=True)
    with pytest.warns(UserWarning) as record:
        folder = PtsFolder(tmp_path, verify_images=True, on_error="skip")
    assert len(folder) == 2 and len(folder.skipped) == 1
    assert any("face1.png" in str(w.message) for w in record)


def test_on_error_must_be_known(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        PtsFolder(_pts_folder(tmp_path), on_error="ignore")


# --- WFLW ---------------------------------------------------------------------------------

def _wflw_record(k):
    return {"landmarks": RNG.uniform(0, 60, size=(98, 2)).round(6),
            "box": np.array([1.0, 2.0, 58.0, 59.0]),
            "attributes": {"pose": k % 2, "blur": 1}, "image": f"7--Cheering/img_{k}.jpg"}


def test_wflw_round_trip(tmp_path):
    records = [_wflw_record(k) for k in range(3)]
    write_wflw(tmp_path / "list.txt", records)
    line = (tmp_path / "list.txt").read_text().splitlines()[0].split()
    assert len(line) == WFLW_FIELDS == 207 and line[-1] == "7--Cheering/img_0.jpg"
    back = read_wflw(tmp_path / "list.txt")
    assert len(back) == 3
    for r, b in zip(records, back):
        assert np.allclose(b["landmarks"], r["landmarks"], atol=1e-9)
        assert np.array_equal(b["box"], r["box"])
        assert b["attributes"]["pose"] == r["attributes"]["pose"] and b["attributes"]["blur"] == 1
        assert b["attributes"]["occlusion"] == 0 and b["image"] == r["image"]


@pytest.mark.parametrize("edit, expected", [
    (lambda f: f[:-2] + f[-1:], "207 fields"),            # a field missing
    (lambda f: f + ["extra"], "207 fields"),              # one too many
    (lambda f: f[:10] + ["1.5e"] + f[11:], "a number for field 11"),
    (lambda f: f[:3] + ["NaN"] + f[4:], "a finite number for field 4"),
    (lambda f: f[:200] + ["2"] + f[201:], "attributes 0 or 1"),
])
def test_bad_wflw_lines(tmp_path, edit, expected):
    write_wflw(tmp_path / "list.txt", [_wflw_record(0), _wflw_record(1)])
    lines = (tmp_path / "list.txt").read_text().splitlines()
    lines[1] = " ".join(edit(lines[1].split()))
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=expected) as info:
        read_wflw(tmp_path / "list.txt")
    assert info.value.line == 2 and "list.txt, line 2" in str(info.value)


def _wflw_root(tmp_path, n=4):
    lists = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    lists.mkdir(parents=True)
    records = [_wflw_record(k) for k in range(n)]
    for r in records:
        (tmp_path / "WFLW_images" / r["image"]).parent.mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / "WFLW_images" / r["image"], _face_image(60, 60))
    write_wflw(lists / "list_98pt_rect_attr_train.txt", records)
    write_wflw(lists / "list_98pt_rect_attr_test.txt", records[:2])
    return tmp_path, records


def test_wflw_folder_and_attribute_subsets(tmp_path):
    root, records = _wflw_root(tmp_path)
    train = open_wflw(root, "train")
    assert len(train) == 4
    item = train[1]
    assert item["image"].shape == (60, 60, 3)
    assert np.allclose(item["landmarks"], records[1]["landmarks"], atol=1e-4)
    assert np.array_equal(item["box"], records[1]["box"]) and item["attributes"]["pose"] == 1
    assert len(open_wflw(root, "test")) == 2
    assert len(open_wflw(root, "test_pose")) == 1
    with pytest.raises(ValueError, match="WFLW split"):
        open_wflw(root, "valid")


def test_wflw_missing_image_names_list_and_line(tmp_path):
    root, records = _wflw_root(tmp_path)
    (root / "WFLW_images" / records[2]["image"]).unlink()
    with pytest.raises(AnnotationError, match=r"list_98pt_rect_attr_train.txt, line 3"):
        open_wflw(root, "train")
    with pytest.warns(UserWarning):
        assert len(open_wflw(root, "train", on_error="skip")) == 3


# --- JD-landmark ---------------------------------------------------------------------------

def test_jd106_round_trip_and_folder(tmp_path):
    pts = RNG.uniform(0, 50, size=(106, 2))
    (tmp_path / "Training_data" / "AFW" / "picture").mkdir(parents=True)
    (tmp_path / "Training_data" / "AFW" / "landmark").mkdir(parents=True)
    write_image(tmp_path / "Training_data" / "AFW" / "picture" / "a.jpg", _face_image(50, 50))
    write_jd106(tmp_path / "Training_data" / "AFW" / "landmark" / "a.jpg.txt", pts)
    lines = (tmp_path / "Training_data" / "AFW" / "landmark" / "a.jpg.txt").read_text().split("\n")
    assert lines[0] == "106" and len(lines[1].split()) == 2
    assert np.allclose(read_jd106(tmp_path / "Training_data" / "AFW" / "landmark" / "a.jpg.txt"),
                       pts, atol=1e-6)
    data = open_jd106(tmp_path, "train")
    assert len(data) == 1 and data[0]["image"].shape == (50, 50, 3)
    with pytest.raises(FileNotFoundError, match="Test_data"):
        open_jd106(tmp_path, "test")


@pytest.mark.parametrize("text, line, expected", [
    ("105\n" + "1 2\n" * 105, 1, "point count 106"),
    ("106\n" + "1 2\n" * 105, 106, "106 point lines"),
    ("106\n" + "1 2\n" * 50 + "1 ?\n" + "1 2\n" * 55, 52, "a number for y"),
])
def test_bad_jd106_files(tmp_path, text, line, expected):
    path = write(tmp_path, "bad.jpg.txt", text)
    with pytest.raises(AnnotationError, match=expected) as info:
        read_jd106(path)
    assert info.value.line == line


def test_jd106_missing_picture(tmp_path):
    (tmp_path / "landmark").mkdir()
    write_jd106(tmp_path / "landmark" / "b.jpg.txt", np.zeros((106, 2)))
    with pytest.raises(AnnotationError, match="picture"):
        JD106Folder(tmp_path)


# --- 300W folder layout --------------------------------------------------------------------

def test_300w_splits(tmp_path):
    for sub in ("afw", "helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset", "ibug"):
        _pts_folder_at(tmp_path / sub)
    assert len(open_300w(tmp_path, "train")) == 3
    assert len(open_300w(tmp_path, "common")) == 2
    assert len(open_300w(tmp_path, "test")) == 3
    with pytest.raises(FileNotFoundError, match="01_Indoor"):
        open_300w(tmp_path, "private")
    with pytest.raises(ValueError, match="300W split"):
        open_300w(tmp_path, "validation")


def _pts_folder_at(folder):
    folder.mkdir(parents=True)
    write_image(folder / "x.png", _face_image())
    write_pts(folder / "x.pts", POINTS)


# --- 300VW ---------------------------------------------------------------------------------

def _video(n=6, h=48, w=64):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for k in range(n):
        frames[k, 10:30, 5 + 5 * k: 25 + 5 * k] = 200      # a bright square moving right
    landmarks = np.stack([POINTS * 0.3 + k for k in range(n)])
    return frames, landmarks


def test_300vw_round_trip(tmp_path):
    frames, landmarks = _video()
    write_300vw(tmp_path / "001", frames, landmarks)
    assert (tmp_path / "001" / "vid.avi").is_file()
    assert (tmp_path / "001" / "annot" / "000001.pts").is_file()
    video = read_300vw(tmp_path / "001")
    assert video["frames"].shape == frames.shape and video["frames"].dtype == np.uint8
    assert np.abs(video["frames"].astype(int) - frames).mean() < 8   # MJPG is lossy
    assert np.allclose(video["landmarks"], landmarks, atol=1e-3)
    part = read_300vw(tmp_path / "001", start=2, stop=4)
    assert np.array_equal(part["frame_index"], [2, 3])
    assert np.array_equal(part["frames"], video["frames"][2:4])
    with pytest.raises(ValueError, match="start < stop"):
        read_300vw(tmp_path / "001", start=4, stop=4)


def test_300vw_with_more_annotations_than_frames(tmp_path):
    frames, landmarks = _video()
    write_300vw(tmp_path / "002", frames, landmarks)
    write_pts(tmp_path / "002" / "annot" / "000007.pts", POINTS)
    with pytest.raises(AnnotationError, match="only 6 decodable frames"):
        read_300vw(tmp_path / "002")
    (tmp_path / "002" / "vid.avi").write_bytes(b"junk")
    with pytest.raises(AnnotationError, match="vid.avi"):
        read_300vw(tmp_path / "002")


def test_300vw_gap_in_annotations(tmp_path):
    frames, landmarks = _video()
    write_300vw(tmp_path / "003", frames, landmarks)
    (tmp_path / "003" / "annot" / "000003.pts").unlink()
    with pytest.raises(AnnotationError, match="000003.pts"):
        read_300vw(tmp_path / "003")


# --- the committed sample set ---------------------------------------------------------------

def test_sample_set_reads_in_300w_format():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = PtsFolder(SAMPLE, verify_images=True)
    assert len(folder) >= 20
    item = folder[0]
    h, w = item["image"].shape[:2]
    assert item["landmarks"].shape == (68, 2)
    assert (item["landmarks"] > -0.5).all() and (item["landmarks"][:, 0] < w - 0.5).all()


def test_read_300vw_videos_reads_every_video_folder_in_order(tmp_path):
    from lmk.data import read_300vw_videos, synth_video, write_300vw
    for name in ("002", "001"):
        v = synth_video((5, int(name)), 4, 64)
        write_300vw(tmp_path / name, v["frames"], v["landmarks"])
    (tmp_path / "notes").mkdir()
    videos = read_300vw_videos(tmp_path, stop=3)
    assert len(videos) == 2 and videos[0]["frames"].shape == (3, 64, 64, 3)
    np.testing.assert_allclose(videos[0]["landmarks"], synth_video((5, 1), 4, 64)["landmarks"][:3], atol=1e-3)
    assert len(read_300vw_videos(tmp_path, n=1)) == 1
    with pytest.raises(ValueError, match="holds no video folder"):
        read_300vw_videos(tmp_path / "notes")
    with pytest.raises(ValueError, match="is not a folder"):
        read_300vw_videos(tmp_path / "none")
