"""The full path of the course: every training notebook (02-06) at ``SCALE="full"`` under papermill.

The networks are the papers' (input sizes, widths, heads, every table row of the full scale);
the data are tiny (4 faces, batch 2, one epoch per stage, one seed per table row, Yin's trackers
on two 8-frame videos, one tracked video), so a configuration, shape or device-placement bug of
the full path fails here instead of hours into an instructor's GPU run. The same run checks that
the notebooks train through run folders (a folder per recipe with checkpoints, ``run.json`` and
``model.pt``) and that ``--resume`` reads finished recipes back instead of training them again.

The parameters below are those of the README's command, ``python -m lmk.course --scale full``
with ``-p N_TRAIN 4 ...``; on 2 cores the five notebooks take a few minutes.
"""

from __future__ import annotations

import json
import time

import pytest

from lmk import recipes
from lmk.course import ROOT, find_notebooks, run_course, run_folder
from lmk.params import SPECS, ParameterError
from lmk.runs import MODEL_FILE, RUN_FILE

TINY = {"SCALE": "full", "DEVICE": "auto", "N_TRAIN": 4, "N_VAL": 4, "BATCH_SIZE": 2, "EPOCHS": 1,
        "N_SEEDS": 1, "STAGE_EPOCHS": [1, 1, 1], "YIN_EPOCHS": 1, "YIN_VIDEOS": [2, 1, 8], "N_VIDEOS": 1,
        "COMPILE": False, "CASCADES": 1}
TRAINING = ["02", "03", "04", "05", "06"]


def _trained(folder):
    """``{recipe name: run.json record}`` of the run folders under a notebook's folder."""
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/" + RUN_FILE)}


@pytest.mark.heavy
def test_training_notebooks_run_at_full_scale_on_tiny_data_and_resume(tmp_path):
    lines = []
    start = time.perf_counter()
    run = run_course(TINY, only=TRAINING, run_dir=tmp_path / "run", log=lines.append)
    seconds = time.perf_counter() - start
    print(f"full-path smoke run: {seconds:.0f} s; " + "; ".join(l for l in lines if "done in" in l))
    for path in find_notebooks(ROOT / "notebooks", TRAINING):
        folder = run / path.stem
        trained = _trained(folder)
        assert trained, f"{path.stem} trained nothing into {folder}"
        for name, record in trained.items():
            cfg = record["config"]
            assert record["scale"] == "full" and cfg["scale"] == "full", name
            if name in recipes.RECIPES:                     # the paper's input size, not a fast one
                assert cfg["data"]["input_size"] == recipes.RECIPES[name].config("full")["data"]["input_size"], name
            assert (folder / name / MODEL_FILE).is_file(), name
            assert list((folder / name / "checkpoints").rglob("last.pt")), name
        assert _trained(folder / "live"), f"{path.stem}: its live run trained in no run folder"
        results = json.loads((run / f"{path.stem}.results.json").read_text())
        assert results["table"], f"{path.stem} wrote an empty results table"
    assert {"n06_yin_l03", "n06_yin_l0", "n06_yin_detector"} <= set(_trained(run / "06_multitask_training")), \
        "notebook 06 did not train Yin's trackers at full scale"

    # --resume: the same run again reads every finished recipe back (no checkpoint is rewritten)
    stamps = {p: p.stat().st_mtime_ns for p in (run / "04_cropnet_gradients").rglob("last.pt")}
    run_course({k: v for k, v in TINY.items() if k in SPECS["04"]}, only=["04"], run_dir=run, resume=True,
               log=lines.append)
    assert stamps and {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_a_run_folder_is_new_unless_resumed(tmp_path):
    assert run_folder(tmp_path / "runs").parent == tmp_path / "runs"          # a new timestamped one
    with pytest.raises(ParameterError, match="--resume needs --run-dir"):
        run_folder(resume=True)
    with pytest.raises(ParameterError, match="does not exist"):
        run_folder(run_dir=tmp_path / "missing", resume=True)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.md").write_text("")
    with pytest.raises(ParameterError, match="already holds a run; add --resume"):
        run_folder(run_dir=tmp_path / "old")
    assert run_folder(run_dir=tmp_path / "old", resume=True) == tmp_path / "old"
    assert run_folder(run_dir=tmp_path / "empty") == tmp_path / "empty"
