"""lmk.checkpoints as fit uses them, under bad files and kills: safe loading, clear errors,
best/last agreement, resuming only the same run."""

import os
import random
import re
import shlex
import tempfile

import numpy as np
import pytest
import torch

import lmk.checkpoints as checkpoints
import lmk.train as train_module
from lmk.checkpoints import CheckpointError, load_checkpoint, remove_stale_temporaries
from lmk.train import History, fit
from test_train import KW, Crash, StagedModel, TinyFaces, TinyModel

# Validation error in px per epoch (inter-ocular distance 8): epoch 3 is the best of five.
OFFSETS = {1: 3.0, 2: 2.0, 3: 1.0, 4: 1.5, 5: 2.0}


@pytest.fixture
def scripted():
    """A run whose best epoch is set by OFFSETS: decode ignores the model's accuracy and predicts
    the truth shifted by the offset of the epoch the training set was last told (``set_epoch``)."""
    train, val = TinyFaces(32, seed=0), TinyFaces(8, seed=1)
    truth = torch.stack([val[i]["landmarks"] for i in range(len(val))])

    def decode(outputs):
        return outputs * 0 + truth[: len(outputs)] + OFFSETS[train.epochs_seen[-1]]

    return train, val, {**KW, "decode_fn": decode, "milestones": [2, 4]}


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    """Bytes of a genuine ``last.pt`` written by fit."""
    directory = tmp_path_factory.mktemp("real")
    fit(TinyModel(), TinyFaces(16), TinyFaces(8, seed=1), epochs=1, checkpoint_dir=directory, **KW)
    return (directory / "last.pt").read_bytes()


def _weights(path):
    return load_checkpoint(path)["model"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ unsafe and broken files
class RunsShellCommand:
    """Unpickling this object runs a shell command (pickle calls ``os.system(command)``)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_crafted_checkpoint_is_refused_and_runs_no_code(tmp_path, scripted):
    marker = tmp_path / "marker"
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    torch.save({"model": RunsShellCommand(f"touch {shlex.quote(str(marker))}"), "epoch": 1}, path)
    torch.load(path, weights_only=False)                    # the file really is hostile...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: refused to unpickle \S*system"):
        load_checkpoint(path)
    train, val, kw = scripted
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        fit(TinyModel(), train, val, epochs=2, checkpoint_dir=path.parent, resume=True, **kw)
    assert not marker.exists()                               # ...and loading it ran nothing


@pytest.mark.parametrize("case, reason", [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", r"is empty \(0 bytes\)"),
    ("truncated", "is truncated or corrupt"),
    ("garbage", "is not a torch.save archive"),
    ("list", "holds a list, expected a dict"),
])
def test_every_load_error_names_the_path_and_the_problem(tmp_path, real_checkpoint, case, reason):
    path = tmp_path / "last.pt"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(real_checkpoint[: len(real_checkpoint) // 2])
    elif case == "garbage":
        path.write_bytes(b"\x00\x13not a checkpoint at all" * 10)
    elif case == "list":
        torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match=rf"^checkpoint {re.escape(str(path))}: {reason}"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_model_name_the_path(tmp_path, real_checkpoint):
    path = tmp_path / "last.pt"
    path.write_bytes(real_checkpoint)
    assert isinstance(load_checkpoint(path, TinyModel())["history"], dict)   # the genuine file loads
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: does not fit this model"):
        load_checkpoint(path, torch.nn.Linear(2, 2))


def test_state_is_plain_types_and_rng_round_trips():
    h = History(epoch=[np.int64(1)], train_loss=[np.float32(0.5)], lr=[0.1], val_nme=[np.float64(0.2)],
                val_auc=[0.3], val_fr=[0.0], seconds=[1.0], step_loss=[np.float32(0.25)],
                best_epoch=np.int64(1))
    d = h.to_dict()
    assert type(d["epoch"][0]) is int and type(d["train_loss"][0]) is float and type(d["best_epoch"]) is int
    state = checkpoints.rng_state()
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    checkpoints.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_numpy_integer_arguments_still_give_a_safe_checkpoint(tmp_path, scripted):
    train, val, kw = scripted
    kw = {**kw, "milestones": list(np.array([1, 2])), "seed": np.int64(0)}
    fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path, **kw)
    config = load_checkpoint(tmp_path / "last.pt")["config"]         # weights_only accepts it
    assert config["milestones"] == [1, 2] and type(config["seed"]) is int
    h = fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path, resume=True, **kw)
    assert h.epoch == [1, 2, 3]


# ----------------------------------------------------------------- kills between the writes
def _kill_at_best_write(monkeypatch, epoch):
    """Make fit die right after writing last.pt at ``epoch``, before best.pt."""
    real = train_module.save_checkpoint

    def save(state, path):
        if os.path.basename(path) == "best.pt" and state["epoch"] == epoch:
            raise Crash(f"killed before best.pt of epoch {epoch}")
        real(state, path)

    monkeypatch.setattr(train_module, "save_checkpoint", save)


@pytest.mark.parametrize("epochs", [5, 3])   # the kill at the best epoch 3: mid-run, or the last epoch
def test_kill_between_last_and_best_is_repaired_on_resume(tmp_path, scripted, monkeypatch, epochs):
    train, val, kw = scripted
    reference = fit(TinyModel(), train, val, epochs=epochs, checkpoint_dir=tmp_path / "ref", **kw)
    assert reference.best_epoch == 3

    with monkeypatch.context() as m:
        _kill_at_best_write(m, epoch=3)
        with pytest.raises(Crash):
            fit(TinyModel(), train, val, epochs=epochs, checkpoint_dir=tmp_path / "cut", **kw)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 3
    assert load_checkpoint(tmp_path / "cut" / "best.pt")["epoch"] == 2       # stale: the kill happened

    resumed = fit(TinyModel(seed=7), train, val, epochs=epochs, checkpoint_dir=tmp_path / "cut",
                  resume=True, **kw)
    assert resumed.step_loss == reference.step_loss and resumed.best_epoch == 3
    best = load_checkpoint(tmp_path / "cut" / "best.pt")
    assert best["epoch"] == 3 and best["history"]["best_epoch"] == 3
    assert _same_weights(best["model"], _weights(tmp_path / "ref" / "best.pt"))


def test_best_that_last_cannot_explain_is_an_error(tmp_path, scripted):
    train, val, kw = scripted
    fit(TinyModel(), train, val, epochs=5, checkpoint_dir=tmp_path, **kw)
    (tmp_path / "best.pt").write_bytes((tmp_path / "last.pt").read_bytes())   # best.pt swapped by hand
    with pytest.raises(CheckpointError, match=r"best.pt: holds epoch 5 but .*last.pt records best epoch 3"):
        fit(TinyModel(), train, val, epochs=5, checkpoint_dir=tmp_path, resume=True, **kw)


def test_fresh_run_replaces_an_earlier_run_at_once(tmp_path, scripted):
    train, val, kw = scripted
    fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path, **kw)

    def killed_in_first_step(outputs, batch):
        raise Crash

    with pytest.raises(Crash):   # the new run dies before its first save: no old best.pt outlives it
        fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path,
            **{**kw, "loss_fn": killed_in_first_step})
    assert sorted(os.listdir(tmp_path)) == []


# ------------------------------------------------------------ temporaries and epoch counts
def _leftover(directory, name):
    """A temporary named exactly as save_checkpoint names them, left as a kill would leave it."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.write(fd, b"PK\x03\x04 half a checkpoint")
    os.close(fd)
    return tmp


def test_stale_temporaries_are_removed_when_a_run_starts_or_resumes(tmp_path, scripted):
    train, val, kw = scripted
    tmp_path.joinpath("notes.tmp").write_text("not ours")
    stale = [_leftover(tmp_path, "last.pt"), _leftover(tmp_path, "best.pt")]
    fit(TinyModel(), train, val, epochs=1, checkpoint_dir=tmp_path, **kw)
    assert not any(os.path.exists(t) for t in stale)
    stale = [_leftover(tmp_path, "last.pt")]
    fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, **kw)
    assert not os.path.exists(stale[0])
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt", "notes.tmp"]
    assert remove_stale_temporaries(tmp_path) == []


def test_resuming_with_fewer_epochs_than_done_is_an_error(tmp_path, scripted):
    train, val, kw = scripted
    done = fit(TinyModel(), train, val, epochs=4, checkpoint_dir=tmp_path, **kw)
    with pytest.raises(CheckpointError, match=r"completed 4 epochs but fit\(\) was asked for epochs=3"):
        fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path, resume=True, **kw)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 4        # nothing was touched
    same = fit(TinyModel(seed=3), train, val, epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    assert same == done                                               # same epochs: the same result


# ------------------------------------------------------------- staged runs and the public names
STAGE_2 = {"freeze": ["backbone."], "param_groups": [{"prefix": "stages.0.", "lr_scale": 0.1}]}


def test_a_frozen_run_resumes_exactly_and_only_with_the_same_parts(tmp_path, scripted):
    train, val, kw = scripted
    full = fit(StagedModel(), train, val, epochs=3, checkpoint_dir=tmp_path / "full", **STAGE_2, **kw)
    fit(StagedModel(), train, val, epochs=2, checkpoint_dir=tmp_path / "cut", **STAGE_2, **kw)
    resumed = fit(StagedModel(seed=4), train, val, epochs=3, checkpoint_dir=tmp_path / "cut", resume=True,
                  **STAGE_2, **kw)
    assert resumed.step_loss == full.step_loss
    assert _same_weights(_weights(tmp_path / "cut" / "last.pt"), _weights(tmp_path / "full" / "last.pt"))

    refused = [("freeze", None, "freeze=['backbone.'] but fit() got freeze=None"),
               ("freeze", ["backbone.", "stages.1."], "but fit() got freeze=['backbone.', 'stages.1.']"),
               ("param_groups", None, "param_groups=[{'prefix': 'stages.0.', 'lr_scale': 0.1}] but fit() got "
                                      "param_groups=None")]
    for key, value, message in refused:
        with pytest.raises(ValueError, match=re.escape(message)):
            fit(StagedModel(), train, val, epochs=4, checkpoint_dir=tmp_path / "full", resume=True,
                **{**STAGE_2, key: value}, **kw)
    assert load_checkpoint(tmp_path / "full" / "last.pt")["epoch"] == 3        # refused before any change


def test_checkpoints_written_before_freeze_existed_still_resume(tmp_path, scripted):
    train, val, kw = scripted
    full = fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path / "full", **kw)
    fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path / "old", **kw)
    for name in ("last.pt", "best.pt"):                  # as an older lmk wrote them: no such keys
        path = tmp_path / "old" / name
        state = load_checkpoint(path)
        assert state["config"].pop("freeze") is None and state["config"].pop("param_groups") is None
        checkpoints.save_checkpoint(state, path)
    resumed = fit(TinyModel(), train, val, epochs=3, checkpoint_dir=tmp_path / "old", resume=True, **kw)
    assert resumed.step_loss == full.step_loss


def test_lmk_train_reexports_the_checkpoint_names():
    for name in ("CheckpointError", "save_checkpoint", "load_checkpoint", "remove_stale_temporaries"):
        assert getattr(train_module, name) is getattr(checkpoints, name)
        assert name in train_module.__all__
