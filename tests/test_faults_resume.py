"""Multi-stage resume faults (:func:`lmk.families.stages.fit_stages`): a resumed run never mixes runs.

The ATPN cases run the recipe ``n06_atpn`` at fast scale on 16 faces, one epoch per stage
(about 2 s a run on one thread); the rules themselves are also checked on ``test_train``'s
tiny model, in milliseconds. Models are compared by the sha256 of their state dicts.
"""

import json
import re
import shutil

import pytest

import lmk.recipes as recipes
from lmk.checkpoints import CheckpointError
from lmk.families.stages import ORIGIN, fit_stages, state_sha256
from test_train import KW, TinyFaces, TinyModel


def atpn(folder, stage_epochs, resume=False, seed=None):
    """``n06_atpn`` at fast scale, tiny; returns the sha256 of the trained model."""
    result = recipes.run("n06_atpn", "fast", n_train=16, n_val=8, device="cpu", threads=1, seed=seed,
                         overrides={"train": {"stage_epochs": list(stage_epochs), "batch_size": 8}},
                         checkpoint_dir=folder, resume=resume)
    return state_sha256(result.model)


def test_the_recipe_has_the_settings_these_tests_override():
    cfg = recipes.configure("n06_atpn", "fast", n_train=16, n_val=8,
                            overrides={"train": {"stage_epochs": [1, 1, 1], "batch_size": 8}})
    assert cfg["model"] == "atpn" and cfg["train"]["stage_epochs"] == [1, 1, 1]
    assert cfg["train"]["batch_size"] == 8 and cfg["data"]["n_train"] == 16
    assert cfg["train"]["milestones"] == [0.6, 0.85]          # fractions: the schedule moves with the epochs


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """``(folder, sha256)`` of a finished run with stage_epochs [1, 1, 1] (copy the folder to change it)."""
    folder = tmp_path_factory.mktemp("atpn") / "finished"
    return folder, atpn(folder, [1, 1, 1])


@pytest.mark.heavy
def test_a_longer_first_stage_resumed_equals_an_uninterrupted_run(finished, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished[0], folder)
    resumed = atpn(folder, [2, 1, 1], resume=True)
    assert resumed == atpn(tmp_path / "fresh", [2, 1, 1])
    for stage, epochs in (("stage1", 2), ("stage2", 1), ("stage3", 1)):
        assert json.loads((folder / stage / ORIGIN).read_text())["settings"]["epochs"] == epochs
    assert atpn(folder, [2, 1, 1], resume=True) == resumed         # resuming a finished run: the same


@pytest.mark.heavy
def test_a_fresh_run_over_another_seeds_run_leaves_nothing_of_it(finished, tmp_path):
    folder = tmp_path / "run"
    other = atpn(folder, [1, 1, 1], seed=5)
    assert other != finished[1]
    assert atpn(folder, [1, 1, 1], resume=False) == finished[1]
    assert atpn(folder, [1, 1, 1], resume=True) == finished[1]
    for stage in ("stage1", "stage2", "stage3"):
        assert json.loads((folder / stage / ORIGIN).read_text())["settings"]["seed"] in (0, 10, 20)


def test_a_first_stage_folder_with_checkpoints_but_no_origin_is_refused(tmp_path):
    stage = tmp_path / "run" / "stage1"
    stage.mkdir(parents=True)
    (stage / "last.pt").write_bytes(b"PK")
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint folder {stage}: holds checkpoints but "
                                                        f"no {ORIGIN}")):
        atpn(tmp_path / "run", [1, 1, 1], resume=True)
    assert (stage / "last.pt").is_file()                           # refused, nothing deleted


@pytest.mark.heavy
def test_a_later_stage_folder_with_checkpoints_but_no_origin_is_refused(finished, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished[0], folder)
    (folder / "stage2" / ORIGIN).unlink()
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint folder {folder / 'stage2'}: holds "
                                                        f"checkpoints but no {ORIGIN}")):
        atpn(folder, [1, 1, 1], resume=True)
    assert (folder / "stage2" / "last.pt").is_file()               # refused, nothing deleted


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"settings": {}}', '{"start_sha256": "ab"}'])
def test_an_unreadable_origin_is_refused_naming_the_folder(tmp_path, text):
    stage = tmp_path / "run" / "stage1"
    stage.mkdir(parents=True)
    (stage / "last.pt").write_bytes(b"PK")
    (stage / ORIGIN).write_text(text)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint folder {stage}: {ORIGIN} is unreadable")):
        atpn(tmp_path / "run", [1, 1, 1], resume=True)


# ---------------------------------------------------- the rules on a tiny model (milliseconds)
FIT = {k: v for k, v in KW.items() if k not in ("device", "show_progress")}


def tiny_runs(train, val, first_epochs, first=None, second=None):
    """Two stages on TinyModel: everything, then the head alone."""
    return [(1, "s1", dict(train_data=train, val_data=val, epochs=first_epochs, **{**FIT, **(first or {})})),
            (2, "s2", dict(train_data=train, val_data=val, epochs=2, freeze=["conv."], **FIT, **(second or {})))]


def tiny(folder, first_epochs, resume=False, first=None, train=None):
    train = train or TinyFaces(16)
    model = TinyModel()
    fit_stages(model, tiny_runs(train, TinyFaces(8, seed=1), first_epochs, first), checkpoint_dir=folder,
               resume=resume)
    return state_sha256(model)


def test_more_epochs_on_the_same_milestones_continue_the_stage(tmp_path):
    tiny(tmp_path / "run", 2, first={"milestones": [2]})
    train = TinyFaces(16)
    resumed = tiny(tmp_path / "run", 3, resume=True, first={"milestones": [2]}, train=train)
    assert train.epochs_seen == [3, 1, 2]                # stage 1 went on at epoch 3; stage 2 anew
    assert resumed == tiny(tmp_path / "fresh", 3, first={"milestones": [2]})


@pytest.mark.parametrize("before, after", [
    ({"epochs": 2}, {"epochs": 3}),                       # fit's default milestones move with the epochs
    ({"epochs": 3}, {"epochs": 2}),                       # fewer epochs than the stage has done
    ({"epochs": 2, "lr": 0.1}, {"epochs": 2, "lr": 0.05}),
    ({"epochs": 2, "seed": 0}, {"epochs": 2, "seed": 1}),
], ids=["more epochs, default milestones", "fewer epochs", "other lr", "other seed"])
def test_a_stage_whose_settings_changed_is_trained_again(tmp_path, before, after):
    first = lambda s: {k: v for k, v in s.items() if k != "epochs"}      # noqa: E731
    tiny(tmp_path / "run", before["epochs"], first=first(before))
    train = TinyFaces(16)
    resumed = tiny(tmp_path / "run", after["epochs"], resume=True, first=first(after), train=train)
    assert train.epochs_seen == list(range(1, after["epochs"] + 1)) + [1, 2]
    assert resumed == tiny(tmp_path / "fresh", after["epochs"], first=first(after))


def test_a_finished_run_resumes_without_training(tmp_path):
    done = tiny(tmp_path / "run", 2)
    train = TinyFaces(16)
    assert tiny(tmp_path / "run", 2, resume=True, train=train) == done
    assert train.epochs_seen == []
