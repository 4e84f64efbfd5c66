"""The compact per-epoch lines of a live-training cell and how nbval sees them."""

import configparser
import math
import re
from pathlib import Path

import pytest

from lmk.progress import EPOCH_LINES, check_show_progress, epoch_line
from lmk.train import fit
from test_train import KW, TinyFaces, TinyModel

NBVAL_CFG = Path(__file__).resolve().parent.parent / "notebooks" / "nbval.cfg"


def test_epoch_line_reads_compactly():
    assert epoch_line(3, 12, 0.012341, 0.07414, 4.26) == "epoch  3/12  loss 0.01234  val NME 7.41 %  4.3 s"
    assert epoch_line(12, 12, 2.0) == "epoch 12/12  loss 2"


def _sanitise(text):
    """What nbval compares: the text after every regex of notebooks/nbval.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(NBVAL_CFG)
    for section in cfg.sections():
        text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
    return text


def test_nbval_sanitiser_removes_the_duration_only():
    fast, slow = epoch_line(1, 4, 0.5, 0.08, 0.7), epoch_line(1, 4, 0.5, 0.08, 103.0)
    assert _sanitise(fast) == _sanitise(slow) == "epoch 1/4  loss 0.5  val NME 8.00 %  TIME"


def test_fit_prints_one_line_per_epoch(capsys):
    train, val = TinyFaces(16, seed=0), TinyFaces(8, seed=1)
    history = fit(TinyModel(), train, val, epochs=3, **{**KW, "show_progress": EPOCH_LINES})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  loss")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert f"val NME {100 * history.val_nme[-1]:.2f} %" in lines[-1]


def test_fit_is_silent_without_progress(capsys):
    fit(TinyModel(), TinyFaces(8, seed=0), epochs=1, **KW)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", ["epoch", 1, None])
def test_bad_show_progress_is_named(value):
    with pytest.raises(ValueError, match=r"show_progress must be True .* got"):
        check_show_progress(value)
    with pytest.raises(ValueError, match=r"fit\(\): show_progress"):
        fit(TinyModel(), TinyFaces(8, seed=0), epochs=1, **{**KW, "show_progress": value})
