"""What every model family shares: the :class:`Family` contract and the single-image training run.

A family is the one place that knows how a paper's model is built, trained and scored. Its
methods take a recipe *config* (:meth:`lmk.recipes.Recipe.config`: plain JSON, what the zoo
records) and never a model-kind string, so nothing outside :mod:`lmk.families` asks which paper
a config belongs to. The base class is a complete family for models that map one image to
landmarks through a codec (Earp's heatmaps, Yin's 1D heatmaps, Yan's FFLD, Mahpod's CCNN);
Xia's ATPN and Yin's tracker override training and scoring.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import store
from ..data import Augment, LandmarkDataset, open_source
from ..data.render_cache import cached_items
from ..layouts import LAYOUT_68, layout_for
from ..scoring import baseline_nmes, score_dataset
from ..train import Evaluation, History, evaluate, fit, milestone_epochs

__all__ = ["Family", "Result", "NO_AUGMENT", "VAL_N", "VAL_SEED", "TEST_N", "TEST_SEED", "SPLITS", "mean_shape",
           "augment_of", "check_split"]

NO_AUGMENT = {"flip_prob": 0.0, "max_rotation": 0.0, "max_scale": 0.0, "max_shift": 0.0,
              "erase_prob": 0.0}
"""Colour jitter and lighting only: the baseline of Earp et al.'s bag of tricks."""
VAL_N, VAL_SEED = 256, 0
"""The zoo's validation faces: 256 synthetic faces of the ``val`` split, seed 0, at the recipe's
render size. Training monitors on them and recipe choices were made on them."""
TEST_N, TEST_SEED = 256, 0
"""The zoo's held-out test faces: 256 synthetic faces of the ``test`` split, seed 0 (a face seed of
its own, see :func:`lmk.data.open_source`). No monitoring, model choice or tuning reads them: the
manifest's ``metrics`` and every notebook table report them."""
SPLITS = ("val", "test")


def check_split(split: str) -> str:
    """``split`` if it is ``"val"`` (monitoring, choices) or ``"test"`` (held out, reported)."""
    if split not in SPLITS:
        raise ValueError(f"evaluation split must be one of {SPLITS}, got {split!r}")
    return split


@dataclass
class Result:
    """What a family's :meth:`Family.train` returns: the trained model and how to read its numbers."""

    config: dict
    model: torch.nn.Module
    codec: object
    history: History
    evaluation: Evaluation           # on the validation set, with the recipe's decoder
    mean_shape: np.ndarray           # (N, 2) input px, from the training set
    baseline_nmes: np.ndarray        # (M,) the mean shape on the validation set
    seconds: float
    val_set: LandmarkDataset = None
    train_set: LandmarkDataset = None
    extras: dict = field(default_factory=dict)   # ATPN: mean_pose, stage_histories; Yin: videos


def mean_shape(dataset) -> np.ndarray:
    """``(N, 2)`` average training shape in input pixels: the baseline that ignores the image."""
    return np.stack([np.asarray(dataset[i]["landmarks"], np.float64) for i in range(len(dataset))]).mean(0)


def augment_of(cfg: dict) -> Augment:
    """The training augmentation of a recipe config (colour jitter always; the rest as listed)."""
    return Augment(**{**NO_AUGMENT, **cfg["data"].get("augment", {})})


@functools.lru_cache(maxsize=8)
def _eval_source(render_size: int, difficulty: str, n: int, seed: int, split: str = "val") -> tuple:
    src = open_source("synthetic", None, split, n=n, size=render_size, seed=seed, difficulty=difficulty)
    return tuple(src[i] for i in range(len(src)))


class Family:
    """A paper's model family: network, codec, loss, data, training and scoring of its recipes.

    Subclasses set :attr:`name` (the value of a recipe's ``"model"`` field), :attr:`paper` and
    :attr:`loss_name`, and implement :meth:`build_model`, :meth:`codec` and :meth:`loss`.
    """

    name = ""
    paper = ""
    loss_name = ""                 # the recipe's train.loss this family trains with
    channels_last = False          # fit() in channels-last memory format (kept off where it was)
    tracker = False                # scored by tracking videos; its Result.evaluation is the detector's

    # ------------------------------------------------------------------ network, codec, loss
    def build_model(self, cfg: dict) -> torch.nn.Module:
        raise NotImplementedError

    def codec(self, cfg: dict, method: str | None = None):
        """The codec of a config; ``method`` overrides its decoder."""
        raise NotImplementedError

    def loss(self, cfg: dict, codec, layout=LAYOUT_68):
        raise NotImplementedError

    def heatmap_size(self, cfg: dict) -> int | None:
        """Side ``L`` of the model's heatmaps (``None``: it has none)."""
        return None

    def decoders(self, cfg: dict) -> tuple[str, ...]:
        """Every decoder the zoo scores a model with."""
        return (cfg["train"]["method"],)

    def main_decoder(self, cfg: dict) -> str:
        """The recipe's decoder by its name in :meth:`decoders` (``"last"``: the last stage's)."""
        method = cfg["train"]["method"]
        return self.decoders(cfg)[-1] if method == "last" else method

    def resolve(self, cfg: dict, base: dict) -> dict:
        """A config completed from the config of the recipe it builds on (at the same scale)."""
        return cfg

    def init_model(self, model, cfg: dict, shape: np.ndarray) -> None:
        """Set what a model takes from its training data before training (default: nothing)."""

    def check_config(self, cfg: dict) -> None:
        if cfg["train"].get("loss") != self.loss_name:
            raise ValueError(f"recipe {cfg['name']}: the {self.paper} family trains with loss "
                             f"{self.loss_name!r}, the recipe says {cfg['train'].get('loss')!r}")

    # ---------------------------------------------------------------------------- data
    def sources(self, cfg: dict, data: str = "synthetic", data_root=None, *, on_error: str = "raise",
                data_seed: int = 0, val_seed: int = 0, cache_dir=None, workers: int = 0) -> tuple:
        """``(train, val)`` raw sources; synthetic items are rendered once and kept in memory.

        With ``cache_dir``, synthetic faces are rendered once per data set into that folder (by
        ``workers`` processes) and read back memory-mapped (:mod:`lmk.data.render_cache`).

        Real images are checked when opened (truncated or undecodable files are errors, or
        skipped with ``on_error="skip"``), so a bad photo cannot stop a run half-way through.
        """
        d = cfg["data"]
        common = {"size": d["render_size"], "difficulty": d["difficulty"], "on_error": on_error,
                  "verify_images": data != "synthetic"}
        train = open_source(data, data_root, "train", n=d["n_train"], seed=data_seed, **common)
        val_split = "val" if data == "synthetic" else "test"
        val = open_source(data, data_root, val_split, n=d["n_val"], seed=val_seed, **common)
        if data == "synthetic":
            if cache_dir is not None:
                return cached_items(train, cache_dir, workers), cached_items(val, cache_dir, workers)
            train, val = [train[i] for i in range(len(train))], [val[i] for i in range(len(val))]
        return train, val

    def datasets(self, cfg: dict, train_source, val_source, seed: int = 0) -> tuple:
        """``(train, val)`` :class:`LandmarkDataset` s: crop or align, augment the training set.

        Real data sets' items are cached reduced after their first use (``cache=True``);
        synthetic sources are already in memory.
        """
        d = cfg["data"]
        kw = {"input_size": d["input_size"], "mode": d["mode"], "seed": seed,
              "cache": not isinstance(train_source, list)}
        return (LandmarkDataset(train_source, augment=augment_of(cfg), **kw),
                LandmarkDataset(val_source, augment=None, **kw))

    # -------------------------------------------------------------------------- training
    def train(self, cfg: dict, *, data: str = "synthetic", data_root=None, device="auto",
              checkpoint_dir=None, resume: bool = False, show_progress: bool = False,
              on_error: str = "raise", prepared=None, zoo_dir=None, execution=None) -> Result:
        """Train the config's model from scratch and evaluate it on the validation set.

        Adam with ``train.lr``, multiplied by ``train.gamma`` (default 0.1) at each of
        ``train.milestones`` (fractions of the run), L2 penalty ``train.weight_decay`` (default 0).

        ``execution``: precision, memory format, workers and ranks of the run
        (:class:`lmk.train.Execution`; None trains as the zoo does).
        """
        self.check_config(cfg)
        start = time.perf_counter()
        t = cfg["train"]
        train_src, val_src, layout = self._opened(cfg, data, data_root, on_error, prepared, execution)
        train_set, val_set = self.datasets(cfg, train_src, val_src, seed=t["seed"])
        plain = LandmarkDataset(train_src, augment=None, input_size=cfg["data"]["input_size"],
                                mode=cfg["data"]["mode"])
        shape = mean_shape(plain)
        torch.manual_seed(t["seed"])
        model, codec = self.build_model(cfg), self.codec(cfg)
        self.init_model(model, cfg, shape)
        history = fit(model, train_set, val_set, loss_fn=self.loss(cfg, codec, layout),
                      decode_fn=codec.decode, epochs=t["epochs"], lr=t["lr"],
                      milestones=milestone_epochs(t["milestones"], t["epochs"]),
                      gamma=t.get("gamma", 0.1), weight_decay=t.get("weight_decay", 0.0),
                      batch_size=t["batch_size"], seed=t["seed"], device=device, norm=t["norm"],
                      eval_every=t.get("eval_every", 1), channels_last=self.channels_last,
                      checkpoint_dir=checkpoint_dir, resume=resume, show_progress=show_progress,
                      layout=layout, execution=execution)
        model = model.to(memory_format=torch.contiguous_format)
        ev = evaluate(model, val_set, codec.decode, norm=t["norm"], device=device, layout=layout)
        return Result(cfg, model.cpu().eval(), codec, history, ev, shape,
                      baseline_nmes(shape, ev.landmarks, t["norm"], layout), time.perf_counter() - start,
                      val_set, train_set)

    def _opened(self, cfg, data, data_root, on_error, prepared, execution=None) -> tuple:
        """``(train, val, layout)`` sources of a run, checked non-empty; the config's network is
        set to the data's number of landmarks (``model_args.num_landmarks``)."""
        cache = {"cache_dir": execution.data_cache, "workers": execution.num_workers or 0} \
            if getattr(execution, "data_cache", None) else {}
        train_src, val_src = prepared or self.sources(cfg, data, data_root, on_error=on_error, **cache)
        if len(train_src) == 0 or len(val_src) == 0:
            which = "training" if len(train_src) == 0 else "validation"
            raise ValueError(f"recipe {cfg['name']}: no usable {which} faces in DATA={data!r} "
                             f"(root {data_root}); see the skipped files")
        layout = layout_for(len(train_src[0]["landmarks"]))
        cfg["model_args"]["num_landmarks"] = layout.num_points
        return train_src, val_src, layout

    def load_base(self, model, name: str, stored, zoo_dir=None) -> str:
        """Copy zoo model ``name`` into ``model``, all but the ``stored`` prefixes this recipe trains
        itself; returns the sha256 of the weights read (a partial zoo entry records it)."""
        state, e = store.read_state(name, zoo_dir)
        keep = {k: v for k, v in state.items() if not k.startswith(tuple(stored or ()))}
        missing, unexpected = model.load_state_dict(keep, strict=False)
        if unexpected or any(not k.startswith(tuple(stored or ())) for k in missing):
            raise ValueError(f"zoo model {name} does not fit this recipe's network (missing {missing}, "
                             f"unexpected {unexpected})")
        return e["sha256"]

    # --------------------------------------------------------------------------- scoring
    def zoo_faces(self, cfg: dict, split: str = "val") -> dict:
        """What the zoo scores this family's models on: ``{"split", "n", "seed"}`` of the
        validation (``"val"``) or held-out test (``"test"``) faces."""
        n, seed = (VAL_N, VAL_SEED) if check_split(split) == "val" else (TEST_N, TEST_SEED)
        return {"split": split, "n": n, "seed": seed}

    def evaluation_set(self, cfg: dict, split: str = "val", n: int | None = None,
                       seed: int | None = None) -> LandmarkDataset:
        """The zoo's validation or test faces of a config (no augmentation)."""
        d, faces = cfg["data"], self.zoo_faces(cfg, split)
        n = faces["n"] if n is None else n
        seed = faces["seed"] if seed is None else seed
        return LandmarkDataset(list(_eval_source(d["render_size"], d["difficulty"], n, seed, split)),
                               d["input_size"], mode=d.get("mode", "crop"), margin=d.get("margin", 0.2))

    def flip_methods(self, cfg: dict) -> tuple[str, ...]:
        """Decoders the zoo also scores with Earp's flip test-time averaging (``train.flip_test``)."""
        return (self.main_decoder(cfg),) if cfg["train"].get("flip_test") else ()

    def score_dataset(self, model, cfg: dict, dataset, shape, methods=None, flip: bool = False,
                      device="cpu", flip_methods=()) -> dict:
        """:func:`lmk.scoring.score_dataset` with this config's codecs (``methods``: decoders)."""
        methods = self.decoders(cfg) if methods is None else methods
        layout = layout_for(len(np.asarray(shape)))
        return score_dataset(model, dataset, {m: self.codec(cfg, m).decode for m in methods}, shape,
                             norm=cfg["train"]["norm"], layout=layout, flip=flip,
                             flip_decoders={f"{m}+flip": self.codec(cfg, m).decode for m in flip_methods},
                             device=device)

    def score(self, model, cfg: dict, shape, n: int | None = None, seed: int | None = None, methods=None,
              flip: bool = False, flip_methods=(), split: str = "val") -> dict:
        """Score a model on the zoo's ``split`` faces (``n`` of ``seed``, default :meth:`zoo_faces`).

        Returns ``{"methods": {decoder: {"nme", "auc", "failure_rate", "nmes"}}, "baseline_nmes"}``.
        """
        return self.score_dataset(model, cfg, self.evaluation_set(cfg, split, n, seed), shape, methods, flip,
                                  flip_methods=flip_methods)

    def task_metrics(self, model, cfg: dict, mean_pose=None, scored: dict | None = None,
                     split: str = "val") -> dict | None:
        """Figures beyond the landmark NME (pose, confidence, tracking); ``None``: none."""
        return None

    def entry_extras(self, result: Result) -> dict:
        """Fields a zoo entry records beyond the common ones (e.g. ATPN's mean pose)."""
        return {}

    # ------------------------------------------------------------------------- describing
    def network_text(self, cfg: dict) -> str:
        """The network of a config in words (the README's table of each paper's setup)."""
        return self.paper

    def heatmap_text(self, cfg: dict) -> str:
        """The output maps of a config in words; regression families have none."""
        size = self.heatmap_size(cfg)
        if size is None:
            return "none (coordinate regression)"
        return f"{size} x {size}, sigma {cfg['train']['sigma']:g} cells"

    def costed_network(self, model: torch.nn.Module) -> torch.nn.Module:
        """The part of a model whose forward pass sets its training cost (all of it by default)."""
        return model

    # ------------------------------------------------------------------------- predicting
    def predictor(self, model, cfg: dict):
        """The :class:`lmk.track.Tracker` ``predict_fn`` of a trained model."""
        raise ValueError(f"recipe {cfg['name']}: the {self.paper} family has no tracking predictor")

    def predict_batch(self, model, cfg: dict, images: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """``(B, N, 2)`` landmarks in input pixels of normalised crops ``(B, 3, S, S)``."""
        return self.codec(cfg, method).decode(model(images))

