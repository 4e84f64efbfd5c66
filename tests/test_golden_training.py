"""Golden training numerics: the first-epoch training loss of one tiny run per model family.

The values below were recorded at commit 2567bf9 (before ``lmk.recipes`` / ``lmk.zoo`` /
``lmk.multitask_run`` were reorganised) with the pinned environment of ``requirements.txt``
(torch 2.13.0+cpu, numpy 2.4.6, opencv-python-headless 5.1.0.95, scipy 1.17.1) on ONE torch
thread, through the public :func:`lmk.recipes.run`. Each was computed twice in two separate
processes (and in two orders of the runs) and was bit-equal every time.

These tiny ``fast``-scale runs go through the same code as zoo-scale training: the recipe's
config, synthetic data rendering and augmentation, the network's initialisation, the codec and
loss, the optimiser and its schedule, shuffling and seeding; each run takes at least two
optimiser steps, so the first-epoch mean loss also sees one update. Zoo-scale training numerics
must not change (the shipped ``data/zoo`` weights are reproduced from the recipes), so a refactor
that moves this code must keep these values bit-equal: compared with ``==``, not approximately.
A deliberate change of the numerics means re-recording these values (``python
tests/test_golden_training.py`` prints them) and rebuilding the zoo.

The Yin runs also read zoo weights: the tracker ``n06_yin_l03`` starts from the zoo's
``n06_yin_detector`` and trains its refinement only; ``n06_yin_detector`` starts from the zoo's
``n02_1d_r3``. A new zoo changes their values.
"""

import pytest
import torch

from lmk import recipes

pytestmark = pytest.mark.heavy        # about 10 s on one core (the first run carries 2-3 s of warm-up)

SMALL = {"n_train": 32, "n_val": 16, "epochs": 1}                       # 2 steps of batch 16
YIN_DATA = {"data": {"videos": 4, "val_videos": 1, "frames": 14}}        # >= 2 steps per stage

# family: (recipe, keywords of lmk.recipes.run, first-epoch training losses)
GOLDEN = {
    "heatmap": ("n03_sdsd", SMALL, [0.1533205658197403]),
    "marginal": ("n02_1d_r1", SMALL, [2283.2857666015625]),
    "ffld": ("n04_ffld", SMALL, [3871.3268432617188]),
    "ccnn": ("n05_ccnn_k1", SMALL, [2.63558566570282]),
    # stages 1, 2, 3: result.extras["stage_histories"][k].train_loss[0]
    "atpn": ("n06_atpn", {"n_train": 32, "n_val": 16, "overrides": {"train": {"stage_epochs": [1, 1, 1]}}},
             [0.37509988248348236, 0.6542503088712692, 0.3998209089040756]),
    "yin_tracker": ("n06_yin_l03", {"overrides": YIN_DATA}, [118.20561599731445]),
    "yin_detector": ("n06_yin_detector", {"overrides": YIN_DATA}, [241.47090657552084]),
}


def first_epoch_losses(recipe: str, kwargs: dict) -> list[float]:
    """Train ``recipe`` at the fast scale on one CPU thread; its first-epoch training loss(es)."""
    result = recipes.run(recipe, "fast", device="cpu", threads=1, **kwargs)
    if result.config["model"] == "atpn":
        stages = result.extras["stage_histories"]
        return [float(stages[k].train_loss[0]) for k in (1, 2, 3)]
    return [float(result.history.train_loss[0])]


def _show(values) -> str:
    return ", ".join(f"{v!r} ({float(v).hex()})" for v in values)


@pytest.mark.parametrize("family", list(GOLDEN))
def test_first_epoch_loss_is_bit_equal(family):
    recipe, kwargs, golden = GOLDEN[family]
    got = first_epoch_losses(recipe, kwargs)
    assert torch.get_num_threads() == 1
    assert got == golden, (f"{family} ({recipe}): first-epoch training loss changed\n"
                           f"  now:    [{_show(got)}]\n  golden: [{_show(golden)}] (commit 2567bf9)")


if __name__ == "__main__":                       # print the current values, to re-record them
    torch.set_num_threads(1)
    for family, (recipe, kwargs, _) in GOLDEN.items():
        print(f"{family:13s} {recipe:17s} {first_epoch_losses(recipe, kwargs)!r}")
