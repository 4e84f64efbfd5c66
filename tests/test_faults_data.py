"""Faults in lmk.data and what reads it: errors through DataLoader workers, 300VW counts, videos
whose frames differ in size, the synthetic image side's name."""

import re
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch._utils import ExceptionWrapper
from torch.utils.data import DataLoader, Dataset

import lmk.data
from lmk.checkpoints import CheckpointError
from lmk.data import (AnnotationError, DatasetItemError, ImageError, LandmarkDataset, PtsFolder,
                      read_300vw_videos, read_pts, synth_video, write_300vw, write_image, write_pts)
from lmk.data import synth
from lmk.params import ParameterError
from lmk.track import Tracker
from lmk.train import NonFiniteLossError

RNG = np.random.default_rng(3)


# ----------------------------------------------------------------------------- errors in workers
def error_samples():
    """One error of every lmk class, built as the code that raises it builds it."""
    return [AnnotationError("faces/1.pts", 5, "two numbers 'x y'", "12.5 abc"),
            AnnotationError("list.txt", None, "attributes 0 or 1", "2", record=4),
            ImageError("faces/2.jpg", "a complete JPEG", "cut off after 10 bytes", "faces/2.pts"),
            DatasetItemError("item 3 (faces/3.pts): expected a decodable image"),
            CheckpointError("runs/last.pt is truncated"),
            ParameterError("parameter SEED=-1 is out of range (notebook 03)", parameter="SEED",
                           notebook="03", reason="parameter SEED=-1 is out of range"),
            NonFiniteLossError("loss is nan at epoch 1, step 2")]


def test_every_lmk_error_class_is_covered():
    modules = [m for name, m in vars(lmk.data).items() if name != "errors" and hasattr(m, "__file__")]
    modules += [lmk.data.errors, lmk.data.dataset, lmk.checkpoints, lmk.params, lmk.train]
    classes = {c for m in modules for c in vars(m).values()
               if isinstance(c, type) and issubclass(c, Exception) and c.__module__.startswith("lmk.")
               and not c.__name__.startswith("_")}
    assert classes == {type(e) for e in error_samples()}


@pytest.mark.parametrize("error", error_samples(), ids=lambda e: type(e).__name__)
def test_every_error_keeps_its_type_when_rebuilt_from_its_message(error):
    """torch re-raises a worker's error as ``type(error)(traceback text)``."""
    try:
        raise error
    except Exception:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(type(error)) as info:
        wrapped.reraise()
    assert type(info.value) is type(error) and str(error) in str(info.value)


def _faces(folder, count=3):
    for k in range(count):
        write_image(folder / f"f{k}.png", RNG.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        write_pts(folder / f"f{k}.pts", RNG.uniform(5, 35, (68, 2)))


def _first_error(dataset, num_workers=1):
    loader = DataLoader(dataset, batch_size=1, num_workers=num_workers, collate_fn=lambda b: b)
    try:
        list(loader)
    except Exception as exc:
        # Without its traceback the loader's iterator is freed at once and stops its worker;
        # left to the garbage collector, the worker's queues go first and it waits 5 s.
        return exc.with_traceback(None)
    raise AssertionError("the loader raised nothing")


def test_a_corrupt_image_read_by_a_worker_is_an_image_error_naming_it(tmp_path):
    _faces(tmp_path)
    source = PtsFolder(tmp_path)                         # annotations parsed, images not yet read
    image = tmp_path / "f1.png"
    image.write_bytes(image.read_bytes()[:200])           # cut off after the set was built
    error = _first_error(source)
    assert type(error) is ImageError, type(error)
    assert str(image) in str(error) and f"referenced by {tmp_path / 'f1.pts'}" in str(error)


class PtsFiles(Dataset):
    """A user's own dataset that reads each .pts file when an item is asked for."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return torch.from_numpy(read_pts(self.paths[index], num_points=68))


def test_a_malformed_pts_read_by_a_worker_is_an_annotation_error_naming_file_and_line(tmp_path):
    _faces(tmp_path, 2)
    bad = tmp_path / "f1.pts"
    lines = bad.read_text().splitlines()
    lines[5] = "12.5 abc"
    bad.write_text("\n".join(lines) + "\n")
    error = _first_error(PtsFiles([tmp_path / "f0.pts", bad]))
    assert type(error) is AnnotationError, type(error)
    assert f"{bad}, line 6: expected" in str(error)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_dataset_item_error_keeps_the_image_errors_type(tmp_path, num_workers):
    _faces(tmp_path)
    dataset = LandmarkDataset(PtsFolder(tmp_path), 32)
    image = tmp_path / "f2.png"
    image.write_bytes(b"not an image")
    error = _first_error(dataset, num_workers)
    assert type(error) is ImageError, type(error)
    assert f"item 2 ({tmp_path / 'f2.pts'})" in str(error) and str(image) in str(error)
    if num_workers == 0:                                  # in-process: the attributes come too
        assert error.path == str(image) and error.annotation == str(tmp_path / "f2.pts")


def test_an_error_from_its_message_alone_has_no_attributes():
    error = ImageError("Caught ImageError in DataLoader worker process 0: faces/2.jpg ...")
    assert (error.path, error.line, error.expected, error.found, error.annotation) == (None,) * 5
    with pytest.raises(TypeError, match="one message string"):
        AnnotationError("faces/1.pts", 5)                 # the structured form needs 'expected'


# ----------------------------------------------------------------------------- 300VW counts
@pytest.fixture(scope="module")
def videos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("300vw")
    for name in ("001", "002"):
        v = synth_video((5, int(name)), 3, 64)
        write_300vw(root / name, v["frames"], v["landmarks"])
    return root


@pytest.mark.parametrize("n", [-1, 0, 1.5, True, "2"])
def test_read_300vw_videos_refuses_a_bad_count(videos_root, n):
    with pytest.raises(ValueError, match=rf"read_300vw_videos\(\): n must be a positive int "
                                         rf"\(the number of videos; None reads all\) or None, got "
                                         rf"{re.escape(repr(n))}"):
        read_300vw_videos(videos_root, n=n)


@pytest.mark.parametrize("stop", [0, -3, 2.0])
def test_read_300vw_videos_refuses_a_bad_stop(videos_root, stop):
    with pytest.raises(ValueError, match=rf"stop must be a positive int .* got {re.escape(repr(stop))}"):
        read_300vw_videos(videos_root, stop=stop)


def test_read_300vw_videos_reads_n_and_stops(videos_root):
    assert len(read_300vw_videos(videos_root, n=np.int64(1))) == 1
    assert [len(v["frames"]) for v in read_300vw_videos(videos_root, stop=2)] == [2, 2]


def test_a_video_folder_without_its_video_is_an_error_not_passed_over(tmp_path):
    v = synth_video((5, 1), 3, 64)
    write_300vw(tmp_path / "001", v["frames"], v["landmarks"])
    shutil.copytree(tmp_path / "001" / "annot", tmp_path / "000" / "annot")   # no vid.avi
    with pytest.raises(AnnotationError, match="a video readable by OpenCV") as info:
        read_300vw_videos(tmp_path)
    assert str(tmp_path / "000" / "vid.avi") in str(info.value)


# ----------------------------------------------------------------------------- frame sizes
def _stub(crops, transforms):
    return np.full((len(crops), 68, 2), 16.0) + np.arange(68)[:, None] % 8, None


def test_frames_of_different_sizes_are_named_by_index_and_size():
    video = synth_video(3, T=4, size=64)
    frames = list(video["frames"])
    frames[2] = frames[2][:48]
    tracker = Tracker(_stub, 32, fallback="never")
    with pytest.raises(ValueError, match=r"video\['frames'\]\[2\] has shape \(48, 64, 3\) but "
                                         r"video\['frames'\]\[0\] has \(64, 64, 3\)"):
        tracker.track({"frames": frames, "landmarks": video["landmarks"]})
    with pytest.raises(ValueError, match=r"videos\[1\]\['frames'\]\[2\] has shape \(48, 64, 3\)"):
        tracker.track_all([video, {"frames": frames, "landmarks": video["landmarks"]}])
    points = list(video["landmarks"])
    points[3] = points[3][:5]
    with pytest.raises(ValueError, match=r"video\['landmarks'\]\[3\] has shape \(5, 2\) but "
                                         r"video\['landmarks'\]\[0\] has \(68, 2\)"):
        tracker.track({"frames": list(video["frames"]), "landmarks": points})
    assert len(tracker.track({"frames": list(video["frames"]), "landmarks": list(video["landmarks"])}).nme) == 4


# ----------------------------------------------------------------------------- the render side's name
def test_the_synthetic_side_is_check_render_size_and_the_old_name_warns():
    assert synth.check_render_size(np.int64(64)) == 64
    with pytest.raises(ValueError, match=r"size must be an int in \[64, 256\] px, got 300"):
        synth.check_render_size(300)
    with pytest.warns(DeprecationWarning, match="check_render_size"):
        assert synth.check_size(96) == 96
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # lmk.data itself uses the new name
        lmk.data.SynthFaces(1, size=64)[0]
        lmk.data.SynthVideos(1, T=2, size=64)[0]
        synth_video(1, T=2, size=64)
