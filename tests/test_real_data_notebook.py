"""Notebook 03 end to end on a 300W folder with one bad file of each kind (DATA=300w, ON_ERROR=skip)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lmk.data import write_image, write_pts

pytestmark = pytest.mark.heavy          # each runs a notebook on a fake 300W/300VW folder: 15-35 s

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_pixelshuffle_vs_deconv.ipynb"
N_TRAIN, N_VAL = 8, 4


def _faces(folder: Path, count: int, rng) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        centre = rng.uniform(50, 70, 2)
        points = centre + rng.normal(0, 1, (68, 2)) + np.c_[np.linspace(-25, 25, 68), np.sin(np.arange(68)) * 20]
        write_image(folder / f"face{k:02d}.png", rng.integers(0, 255, (120, 130, 3), dtype=np.uint8))
        write_pts(folder / f"face{k:02d}.pts", points)


def _bad_files(folder: Path, rng) -> dict:
    """One bad file of each kind; returns {file name: words its reason must contain}."""
    points = rng.uniform(20, 90, (68, 2))
    image = rng.integers(0, 255, (120, 130, 3), dtype=np.uint8)
    (folder / "zdir.pts").mkdir()
    (folder / "zlink.pts").symlink_to(folder / "gone.pts")
    write_pts(folder / "znoimage.pts", points)
    write_pts(folder / "zcut.pts", points)
    write_image(folder / "zcut.png", image)
    data = (folder / "zcut.png").read_bytes()
    (folder / "zcut.png").write_bytes(data[:int(0.4 * len(data))])
    write_image(folder / "zbad.png", image)
    (folder / "zbad.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    bad = {"zdir.pts": "directory", "zlink.pts": "No such file", "znoimage.pts": "image",
           "zcut.png": "cut off", "zbad.pts": "68"}
    if os.geteuid() != 0:                     # root reads anything, so this case needs a normal user
        write_pts(folder / "zlocked.pts", points)
        write_image(folder / "zlocked.png", image)
        (folder / "zlocked.pts").chmod(0)
        bad["zlocked.pts"] = "Permission"
    return bad


def test_notebook_03_runs_on_300w_with_bad_files_skipped(tmp_path):
    import papermill

    root, rng = tmp_path / "300W", np.random.default_rng(0)
    for sub in ("helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset"):
        (root / sub).mkdir(parents=True)
    _faces(root / "afw", N_TRAIN, rng)             # exactly N_TRAIN good training faces ...
    bad = _bad_files(root / "afw", rng)            # ... and every bad file is read while choosing them
    _faces(root / "ibug", N_VAL + 2, rng)
    results = tmp_path / "results.json"
    out = tmp_path / "03.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK.parent),
                               parameters={"DATA": "300w", "DATA_ROOT": str(root), "ON_ERROR": "skip",
                                           "N_TRAIN": N_TRAIN, "N_VAL": N_VAL, "EPOCHS": 1,
                                           "RESULTS": str(results)})
    text = "\n".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"300W: {N_TRAIN} training and {N_VAL} validation faces, {len(bad)} files skipped" in text
    for name, reason in bad.items():
        line = next((ln for ln in text.splitlines() if "skipped" in ln and name in ln), None)
        assert line is not None, f"{name} is not reported as skipped:\n{text}"
        assert reason in line, f"the reason for {name} should mention {reason!r}: {line}"
    table = json.loads(results.read_text())
    assert any("300W" in str(row.values()) for row in table["table"]), table["table"][0]
    assert table["metrics"]["data"] == "300w" and table["metrics"]["tables_from"] == "trained"


NOTEBOOK_06 = NOTEBOOK.parent / "06_multitask_training.ipynb"


def test_notebook_06_without_pose_labels_tracks_300vw_videos(tmp_path):
    """Real faces carry no pose: stage 3 and the pose figures are left out; 300VW videos are tracked."""
    import papermill

    from lmk.data import synth_video, write_300vw

    videos = tmp_path / "300VW"
    for i in range(2):
        v = synth_video((42, i), 12, 128)
        write_300vw(videos / f"{i + 1:03d}", v["frames"], v["landmarks"])
    (videos / "notes").mkdir()                      # a folder that is not a video is passed over
    results, out = tmp_path / "results.json", tmp_path / "06.ipynb"
    papermill.execute_notebook(str(NOTEBOOK_06), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK_06.parent),
                               parameters={"DATA": "sample", "N_TRAIN": 12, "N_VAL": 4, "STAGE_EPOCHS": [1, 1, 1],
                                           "VIDEO_ROOT": str(videos), "N_VIDEOS": 2, "RESULTS": str(results)})
    text = "\n".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "no pose labels: stage 3 skipped" in text and "after stage 3" not in text
    assert "on 300VW (2 videos, 12 frames each)" in text
    assert "heatmap fusion, pose MAE" not in text            # no pose verdict without pose labels
    assert "Warning" not in text
    table = json.loads(results.read_text())
    assert table["metrics"]["data"] == "sample" and table["metrics"]["tables_from"] == "trained"
    assert np.isnan(table["metrics"]["atpn_pose_mae"])
