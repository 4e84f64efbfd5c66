"""lmk.train on a tiny model and a tiny in-memory data set (the whole file runs in seconds)."""

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from lmk.losses import l2_loss
from lmk.train import (History, NonFiniteLossError, collate, default_milestones, evaluate, fit,
                       load_checkpoint, resolve_device, save_checkpoint)

N = 68


class TinyFaces:
    """Item ``i``: a 3x16x16 image whose channel means encode a shift of a fixed 68-point shape.

    Pure function of ``(seed, i)``; ``set_epoch`` calls are recorded to check that fit makes them.
    """

    def __init__(self, n, seed=0):
        self.n, self.seed, self.epochs_seen = n, seed, []
        g = np.random.default_rng(1234)
        self.template = (g.uniform(4, 12, size=(N, 2))).astype(np.float32)
        self.template[36], self.template[45] = (4.0, 6.0), (12.0, 6.0)   # inter-ocular distance 8

    def __len__(self):
        return self.n

    def set_epoch(self, epoch):
        self.epochs_seen.append(epoch)

    def __getitem__(self, i):
        g = np.random.default_rng([self.seed, i])
        shift = g.uniform(-1, 1, size=2).astype(np.float32)
        image = g.normal(0, 0.1, size=(3, 16, 16)).astype(np.float32)
        image[0] += shift[0]
        image[1] += shift[1]
        return {"image": torch.from_numpy(image), "landmarks": torch.from_numpy(self.template + 2 * shift),
                "index": i}


class TinyModel(nn.Module):
    """Conv -> pool -> dropout -> linear to 68 (x, y); dropout makes RNG state matter on resume."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, N * 2)

    def forward(self, x):
        f = self.conv(x).mean(dim=(-2, -1))
        return self.fc(self.drop(f)).view(-1, N, 2) + 8.0


def coord_loss(outputs, batch):
    return l2_loss(outputs, batch["landmarks"]) / N


def identity(outputs):
    return outputs


KW = dict(loss_fn=coord_loss, decode_fn=identity, lr=0.1, batch_size=8, device="cpu", seed=0,
          show_progress=False)


@pytest.fixture(scope="module")
def data():
    return TinyFaces(32, seed=0), TinyFaces(8, seed=1)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_loss_decreases_and_history_is_complete(data):
    train, val = data
    train.epochs_seen.clear()
    h = fit(TinyModel(), train, val, epochs=6, **KW)
    assert h.epoch == [1, 2, 3, 4, 5, 6]
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.val_nme[-1] < h.val_nme[0]
    assert len(h.step_loss) == 6 * (32 // 8)
    assert train.epochs_seen == [1, 2, 3, 4, 5, 6]
    # Earp et al. 3.3 schedule scaled: /10 at epochs 3 and 5 (1/2 and 3/4 of 6)
    assert h.lr == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001])
    assert all(0 <= a <= 1 for a in h.val_auc) and all(0 <= f <= 1 for f in h.val_fr)
    assert h.best_epoch == int(np.argmin(h.val_nme)) + 1
    assert History.from_dict(h.to_dict()) == h


def test_default_milestones():
    assert default_milestones(40) == [20, 30]
    assert default_milestones(3) == [2]
    assert default_milestones(1) == []


def test_same_seed_same_losses_other_seed_differs(data):
    train, val = data
    a = fit(TinyModel(), train, val, epochs=2, **KW)
    b = fit(TinyModel(), train, val, epochs=2, **KW)
    assert a.step_loss == b.step_loss and a.val_nme == b.val_nme
    c = fit(TinyModel(), train, val, epochs=2, **{**KW, "seed": 1})
    assert c.step_loss != a.step_loss


def test_channels_last_trains_the_same_run(data):
    train, val = data
    a = fit(TinyModel(), train, val, epochs=2, **KW)
    model = TinyModel()
    b = fit(model, train, val, epochs=2, channels_last=True, **KW)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(b.step_loss, a.step_loss, rtol=1e-4)
    np.testing.assert_allclose(b.val_nme, a.val_nme, rtol=1e-4)


def test_workers_give_the_same_run(data):
    train, val = data
    a = fit(TinyModel(), train, val, epochs=1, **KW)
    b = fit(TinyModel(), train, val, epochs=1, num_workers=1, **KW)
    assert a.step_loss == b.step_loss


class Crash(Exception):
    pass


def test_resume_equals_uninterrupted(data, tmp_path):
    train, val = data
    kw = {**KW, "milestones": [2, 3], "epochs": 4}
    full_model = TinyModel()
    full = fit(full_model, train, val, checkpoint_dir=tmp_path / "full", **kw)

    calls = {"n": 0}

    def crashing_loss(outputs, batch):   # dies in the middle of epoch 3 (4 steps per epoch)
        calls["n"] += 1
        if calls["n"] == 10:
            raise Crash
        return coord_loss(outputs, batch)

    with pytest.raises(Crash):
        fit(TinyModel(), train, val, checkpoint_dir=tmp_path / "cut", **{**kw, "loss_fn": crashing_loss})
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2

    resumed_model = TinyModel(seed=99)   # different init: everything must come from the checkpoint
    resumed = fit(resumed_model, train, val, checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert resumed.step_loss == full.step_loss
    assert resumed.val_nme == full.val_nme and resumed.lr == full.lr
    assert torch.equal(_params(resumed_model), _params(full_model))

    # a finished run resumes to its history without training
    again = fit(TinyModel(seed=5), train, val, checkpoint_dir=tmp_path / "full", resume=True, **kw)
    assert again.step_loss == full.step_loss
    best = load_checkpoint(tmp_path / "full" / "best.pt")
    assert best["epoch"] == full.best_epoch


def test_resume_without_checkpoint_starts_fresh_and_rejects_other_settings(data, tmp_path):
    train, val = data
    h = fit(TinyModel(), train, val, epochs=1, checkpoint_dir=tmp_path, resume=True, **KW)
    assert h.epoch == [1]
    with pytest.raises(ValueError, match=r"written with lr=0.1 but fit\(\) got lr=0.01"):
        fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, **{**KW, "lr": 1e-2})


def test_crash_during_save_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    train, val = data
    real_save, saves = torch.save, []

    def dying_save(obj, f, *args, **kwargs):   # epoch 1 saves last.pt and best.pt; then a crash
        saves.append(obj["epoch"])
        if obj["epoch"] == 1:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 partial checkpoint bytes")   # half a file, then the process "dies"
        raise Crash("killed while saving")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(Crash):
        fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path, **KW)
    monkeypatch.setattr(torch, "save", real_save)
    assert saves == [1, 1, 2]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1        # the old file, intact
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt"]     # no temporary file left over
    full = fit(TinyModel(), train, val, epochs=2, **KW)
    h = fit(TinyModel(), train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, **KW)
    assert h.epoch == [1, 2] and h.step_loss == full.step_loss


def test_save_checkpoint_replaces_atomically(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    save_checkpoint({"a": 1}, path)
    save_checkpoint({"a": 2}, path)
    assert torch.load(path, weights_only=False) == {"a": 2}
    assert os.listdir(path.parent) == ["x.pt"]


def test_nan_loss_fails_fast_naming_epoch_and_step(data):
    train, val = data
    calls = {"n": 0}

    def nan_at_step_3_of_epoch_2(outputs, batch):
        calls["n"] += 1
        loss = coord_loss(outputs, batch)
        return loss * math.nan if calls["n"] == 4 + 3 else loss

    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2/3, step 3/4"):
        fit(TinyModel(), train, val, epochs=3, **{**KW, "loss_fn": nan_at_step_3_of_epoch_2})
    with pytest.raises(NonFiniteLossError, match="loss is inf at epoch 1/1, step 1/4"):
        fit(TinyModel(), train, val, epochs=1, **{**KW, "loss_fn": lambda o, b: coord_loss(o, b) + math.inf})


def test_evaluate_returns_per_image_nmes_and_predictions(data):
    _, val = data
    model = TinyModel()

    def decode_gt_plus_one_px(outputs):   # ignore the model: predict the truth shifted by (0.6, 0.8)
        return outputs * 0 + torch.stack([val[i]["landmarks"] for i in range(len(val))])[: len(outputs)] \
            + torch.tensor([0.6, 0.8])

    ev = evaluate(model, val, decode_gt_plus_one_px, batch_size=8, device="cpu")
    assert ev.predictions.shape == (8, N, 2) and ev.nmes.shape == (8,)
    assert np.allclose(ev.nmes, 1.0 / 8.0, atol=1e-6)        # 1 px error / inter-ocular distance 8
    assert ev.nme == pytest.approx(0.125, abs=1e-6)
    assert ev.failure_rate == 1.0 and ev.auc == 0.0          # every image above the 0.08 threshold
    assert model.training                                    # mode restored


def test_collate_stacks_arrays_and_keeps_the_rest():
    items = [{"a": torch.ones(2), "b": np.zeros(3), "c": 1.5, "d": "x", "e": None} for _ in range(2)]
    batch = collate(items)
    assert batch["a"].shape == (2, 2) and batch["b"].shape == (2, 3) and batch["c"].tolist() == [1.5, 1.5]
    assert batch["d"] == ["x", "x"] and batch["e"] == [None, None]


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="not a valid torch device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="device must be a string"):
        resolve_device(3)


@pytest.mark.parametrize("override, message", [
    ({"epochs": 0}, "epochs must be an int >= 1"),
    ({"epochs": 2.0}, "epochs must be an int >= 1"),
    ({"lr": -1.0}, "lr must be a positive finite number"),
    ({"lr": math.nan}, "lr must be a positive finite number"),
    ({"gamma": 0}, "gamma must be a positive finite number"),
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"num_workers": -1}, "num_workers must be an int >= 0"),
    ({"eval_every": 0}, "eval_every must be an int >= 1"),
    ({"milestones": [3, 2]}, "milestones must be strictly increasing"),
    ({"milestones": [0]}, "each milestone must be an int >= 1"),
    ({"norm": "iod"}, "norm must be one of"),
    ({"resume": True}, "resume=True needs a checkpoint_dir"),
    ({"amp": True}, "amp=True needs a CUDA device"),
    ({"device": "tpu"}, "not a valid torch device"),
    ({"loss_fn": None}, "loss_fn must be callable"),
    ({"decode_fn": 3}, "decode_fn must be callable"),
])
def test_bad_arguments(data, override, message):
    train, val = data
    kw = {**KW, "epochs": 1, **override}
    if override.get("device") is None and "amp" in override and torch.cuda.is_available():
        pytest.skip("amp is allowed on a CUDA machine")
    with pytest.raises(ValueError, match=message):
        fit(TinyModel(), train, val, **kw)


def test_bad_data_and_callbacks(data):
    train, val = data
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(TinyModel(), [], val, epochs=1, **KW)
    with pytest.raises(ValueError, match=r"train_data\[0\] must be a dict with 'image'"):
        fit(TinyModel(), [{"image": torch.zeros(3, 4, 4)}], val, epochs=1, **KW)
    with pytest.raises(ValueError, match=r"val_data\[0\]\['image'\] must have shape \(3, H, W\)"):
        fit(TinyModel(), train, [{"image": torch.zeros(4, 4), "landmarks": torch.zeros(N, 2)}], epochs=1, **KW)
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, train, val, epochs=1, **KW)
    with pytest.raises(ValueError, match="loss_fn must return a scalar tensor"):
        fit(TinyModel(), train, val, epochs=1, **{**KW, "loss_fn": lambda o, b: (o - b["landmarks"]) ** 2})
    with pytest.raises(ValueError, match=r"decode_fn returned shape \(8, 68\)"):
        fit(TinyModel(), train, val, epochs=1, **{**KW, "decode_fn": lambda o: o[..., 0]})


# ------------------------------------------------------ frozen parts and per-part learning rates
class StagedModel(nn.Module):
    """A backbone with BatchNorm and two heads; head 1 adds a correction to head 0, zero at the start
    (Yan et al. 2020 start their CropNet FC layers at zero), so the stages can be trained one by one."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.stages = nn.ModuleList([nn.Linear(4, N * 2), nn.Linear(4, N * 2)])
        nn.init.zeros_(self.stages[1].weight)
        nn.init.zeros_(self.stages[1].bias)

    def forward(self, x):
        f = self.backbone(x).mean(dim=(-2, -1))
        return (self.stages[0](f) + self.stages[1](f)).view(-1, N, 2) + 8.0


def _state(model, prefix=""):
    """Copies of the parameters and buffers (BatchNorm statistics included) under ``prefix``."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


def _identical(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_parameters_and_batchnorm_statistics_stay_bit_identical(data):
    train, val = data
    control = StagedModel()
    before = _state(control, "backbone.")
    fit(control, train, val, epochs=2, **KW)                       # unfrozen, the same BN layer moves
    moved = _state(control, "backbone.")
    assert not torch.equal(moved["backbone.1.running_mean"], before["backbone.1.running_mean"])
    assert not torch.equal(moved["backbone.0.weight"], before["backbone.0.weight"])

    model = StagedModel()
    head_before = _state(model, "stages.0.")
    fit(model, train, val, epochs=2, freeze=["backbone."], **KW)
    assert _identical(_state(model, "backbone."), before)          # weights, running mean/var, counter
    assert not torch.equal(model.stages[0].weight, head_before["stages.0.weight"])
    assert all(p.requires_grad for p in model.parameters())        # frozen for that run only


def test_each_param_group_trains_at_its_own_rate(tmp_path):
    """Adam's first step moves every parameter by lr * g / (|g| + eps), i.e. by its group's lr."""
    train = TinyFaces(8, seed=0)                                   # one batch of 8: one step per epoch
    model = StagedModel()
    before = _state(model)
    kw = {**KW, "lr": 0.01, "milestones": [1], "checkpoint_dir": tmp_path}
    h = fit(model, train, None, epochs=1, freeze=["backbone."],
            param_groups=[{"prefix": "stages.0", "lr_scale": 0.1}], **kw)
    expected = {"backbone.": 0.0, "stages.0.": 0.001, "stages.1.": 0.01}
    for name, p in model.named_parameters():
        step = (p.detach() - before[name]).abs()
        rate = next(v for prefix, v in expected.items() if name.startswith(prefix))
        moved = step[step > 0]
        assert moved.numel() == (0 if rate == 0 else step.numel()), name
        np.testing.assert_allclose(moved.numpy(), rate, rtol=1e-3, err_msg=name)
    assert h.lr == [0.01]                                          # history keeps the base rate
    assert all(m.training for m in model.modules())                # frozen BatchNorm back in train mode

    groups = load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"]
    assert [(g.get("prefix"), len(g["params"])) for g in groups] == [(None, 2), ("stages.0", 2)]
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.0001])   # milestone 1 scales both


def test_model_trained_in_two_stages(data, tmp_path):
    train, val = data
    model = StagedModel()
    first = fit(model, train, val, epochs=3, freeze=["stages.1."], **KW)
    assert torch.count_nonzero(model.stages[1].weight) == 0        # stage 2 untouched so far
    stage1 = _state(model, "backbone.") | _state(model, "stages.0.")
    second = fit(model, train, val, epochs=3, freeze=["backbone.", "stages.0."],
                 checkpoint_dir=tmp_path, **{**KW, "lr": 0.01})
    assert _identical(_state(model, "backbone.") | _state(model, "stages.0."), stage1)
    assert torch.count_nonzero(model.stages[1].weight) > 0
    assert second.val_nme[-1] < first.val_nme[-1]                 # the refinement stage helps
    reloaded = StagedModel(seed=5)                                 # the checkpoint holds the whole model
    load_checkpoint(tmp_path / "last.pt", reloaded)
    assert _identical(_state(reloaded), _state(model))


def test_freeze_is_undone_after_a_failed_run(data):
    train, val = data
    model = StagedModel()
    model.stages[1].bias.requires_grad_(False)                     # the caller's own choice stays

    def crash(outputs, batch):
        raise Crash

    with pytest.raises(Crash):
        fit(model, train, val, epochs=1, freeze=["backbone.", "stages.1"], **{**KW, "loss_fn": crash})
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["stages.1.bias"]


@pytest.mark.parametrize("override, message", [
    ({"freeze": "backbone."}, r"freeze must be a list of parameter-name prefixes like \['backbone.'\], got str"),
    ({"freeze": [""]}, r"freeze\[0\] must be a non-empty prefix string"),
    ({"freeze": ["head."]}, r"freeze prefix 'head.' matches no parameter or BatchNorm layer of the model "
                            r"\(its top-level names are \['backbone', 'stages'\]\)"),
    ({"freeze": ["stage"]}, "freeze prefix 'stage' matches no parameter"),   # a prefix ends at a dot
    ({"freeze": ["backbone", "stages"]}, r"freeze=\['backbone', 'stages'\] leaves no parameter to train"),
    ({"param_groups": {"stages.0.": 0.1}}, "param_groups must be a list"),
    ({"param_groups": [{"prefix": "stages.0.", "lr": 0.1}]},
     r"param_groups\[0\] must be a dict with keys 'prefix' and 'lr_scale', got \['lr', 'prefix'\]"),
    ({"param_groups": [{"prefix": 3, "lr_scale": 0.1}]}, r"param_groups\[0\]\['prefix'\] must be a non-empty"),
    ({"param_groups": [{"prefix": "stages.0.", "lr_scale": 0}]},
     r"param_groups\[0\]\['lr_scale'\] must be a positive finite number, got 0 \(to keep parameters fixed"),
    ({"param_groups": [{"prefix": "stages.", "lr_scale": 0.1}, {"prefix": "stages.0", "lr_scale": 2.0}]},
     r"parameter 'stages.0.weight' is matched by the param_groups prefixes \['stages.', 'stages.0'\]"),
    ({"param_groups": [{"prefix": "stage.", "lr_scale": 0.1}]}, "param_groups prefix 'stage.' matches no parameter"),
    ({"freeze": ["backbone."], "param_groups": [{"prefix": "backbone.0", "lr_scale": 0.1}]},
     "param_groups prefix 'backbone.0' covers only frozen parameters"),
])
def test_bad_freeze_and_param_groups(data, override, message):
    train, val = data
    model = StagedModel()
    with pytest.raises(ValueError, match=message):
        fit(model, train, val, epochs=1, **{**KW, **override})
    assert all(p.requires_grad for p in model.parameters())
