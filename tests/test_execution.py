"""How runs execute: the render cache, passive OpenMP waits, and the GPU check's refusal and imports."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lmk import recipes
from lmk.data import SynthFaces
from lmk.data.render_cache import cache_key, cached_items
from lmk.train import Execution

PYTHON = sys.executable


# ---------------------------------------------------------------------------- render cache
def test_cached_faces_equal_rendered_faces_and_are_read_back(tmp_path):
    source = SynthFaces(9, size=64, seed=4)
    first = cached_items(source, tmp_path)
    again = cached_items(source, tmp_path, workers=2)          # read back, not rendered
    assert [p.name for p in tmp_path.iterdir()] == [cache_key(source)]
    for i in range(len(source)):
        fresh = source[i]
        assert list(again[i]) == list(fresh)
        for key, value in fresh.items():
            assert np.array_equal(first[i][key], value) and np.array_equal(again[i][key], value), (i, key)
    assert isinstance(again[0]["image"], np.memmap) and not again[0]["image"].flags.writeable
    assert cache_key(SynthFaces(9, size=64, seed=5)) != cache_key(source)


def test_cached_faces_render_with_workers_like_one_process(tmp_path):
    source = SynthFaces(5, size=64, seed=1, difficulty="hard")
    a = cached_items(source, tmp_path / "a", workers=2)
    b = cached_items(source, tmp_path / "b")
    assert all(np.array_equal(x["image"], y["image"]) and np.array_equal(x["landmarks"], y["landmarks"])
               for x, y in zip(a, b))


def test_a_cache_that_no_longer_matches_its_source_is_refused(tmp_path):
    source = SynthFaces(4, size=64, seed=2)
    cached_items(source, tmp_path)
    images = np.load(tmp_path / cache_key(source) / "images.npy", mmap_mode="r+")
    images[3] = 0                                   # as if the renderer had changed
    images.flush()
    with pytest.raises(ValueError, match="does not match .*item 3"):
        cached_items(source, tmp_path)


@pytest.mark.heavy            # about 8 s: two tiny training runs
def test_training_on_cached_faces_equals_training_on_rendered_faces(tmp_path):
    kwargs = {"device": "cpu", "threads": 1, "n_train": 32, "n_val": 16, "epochs": 1}
    plain = recipes.run("n03_sdsd", "fast", **kwargs)
    cached = recipes.run("n03_sdsd", "fast", execution=Execution(data_cache=str(tmp_path)), **kwargs)
    assert cached.history.train_loss == plain.history.train_loss
    for key, value in plain.model.state_dict().items():
        assert torch.equal(cached.model.state_dict()[key], value), key
    assert len(list(tmp_path.iterdir())) == 2       # training and validation faces


# ------------------------------------------------------------------------- passive waits
def test_importing_lmk_sets_passive_openmp_waits_unless_set():
    code = "import os, lmk; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([PYTHON, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


# ---------------------------------------------------------------------------- bench --gpu
FORBIDDEN = ("matplotlib", "scipy", "IPython", "ipywidgets", "ipykernel", "papermill", "nbformat", "pandas",
             "tqdm", "hypothesis", "PIL")
CLOSURE = f'''
import sys
for name in {FORBIDDEN!r}:
    sys.modules[name] = None        # importing it now raises ImportError
import torch
import lmk.bench.__main__, lmk.bench.gpu, lmk.bench.training
from lmk.bench.training import measure
measure("n03_sdsd", "fast", "channels_last", batch=4, steps=2, device="cpu")   # what --gpu runs, on the CPU
print("trained without", len({FORBIDDEN!r}), "packages")
'''


@pytest.mark.heavy            # about 6 s: one tiny training run in a fresh interpreter
def test_the_gpu_check_trains_without_matplotlib_scipy_tqdm_or_notebook_packages():
    out = subprocess.run([PYTHON, "-c", CLOSURE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == f"trained without {len(FORBIDDEN)} packages"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists: the check would run")
def test_the_gpu_check_refuses_without_cuda(capsys):
    from lmk.bench.__main__ import main

    assert main(["--gpu"]) == 2
    err = capsys.readouterr().err
    assert "sees no CUDA device" in err and torch.__version__ in err
