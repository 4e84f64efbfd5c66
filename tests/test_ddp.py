"""Data-parallel training equals one process: lmk.distributed's pieces, then torchrun end to end.

* BatchNorm across ranks (:func:`lmk.distributed.batch_norm_across`) on ragged shares, with the
  all-reduce simulated by two threads that sum their tensors (an ordinary autograd graph), against
  torch's BatchNorm on the concatenated batch: outputs, autograd gradients and finite differences.
* Each rank's share of a batch: the shares of every batch concatenate to one process's batch.
* ``fit`` on a tiny network under torchrun with ragged shares (7 = 3 + 4) equals one process, and
  BatchNorm statistics of each share alone do not.
* The acceptance run: ``python -m lmk.recipes train n03_sdsd ... --precision fp64`` under
  ``torchrun --nproc_per_node=2`` and alone give the same parameters and BatchNorm buffers, and
  leaving out the gradient or the BatchNorm all-reduce breaks that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lmk.distributed import AllReduceBatchNorm, Ranks, batch_norm_across, share_bounds
from lmk.evaluation import data_loader
from lmk.recipes.__main__ import main as recipes_main
from lmk.train import Execution, check_precision

PYTHON = sys.executable
TORCHRUN = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RTOL, ATOL = 1e-6, 1e-9


# ------------------------------------------------------------------ BatchNorm across ranks
def _threaded_sums(world: int):
    """One ``reduce`` per simulated rank: each returns the (autograd-connected) sum over ranks."""
    barrier, slots = threading.Barrier(world), [None] * world

    def reduce_for(rank):
        def reduce(tensor):
            slots[rank] = tensor
            barrier.wait()
            total = sum(slots[1:], slots[0])
            barrier.wait()                     # nobody overwrites a slot before all have summed
            return total
        return reduce
    return [reduce_for(r) for r in range(world)]


def bn_on_ranks(*args, eps=1e-5):
    """``batch_norm_across`` of shares ``x_0 .. x_{R-1}`` on R threads; outputs concatenated."""
    *shares, weight, bias = args
    reduces, outs, errors = _threaded_sums(len(shares)), [None] * len(shares), []

    def work(rank):
        try:
            outs[rank] = batch_norm_across(shares[rank], weight, bias, eps, reduces[rank])[0]
        except BaseException as exc:            # surface a thread's failure in the test
            errors.append(exc)
            raise
    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(shares))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return torch.cat(outs)


def _inputs(sizes, channels=3, side=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    shares = [torch.randn(n, channels, side, side, generator=g, dtype=torch.float64, requires_grad=True)
              for n in sizes]
    weight = (1 + 0.5 * torch.randn(channels, generator=g, dtype=torch.float64)).requires_grad_()
    bias = torch.randn(channels, generator=g, dtype=torch.float64, requires_grad=True)
    return shares, weight, bias


def test_batchnorm_across_ragged_ranks_equals_batchnorm_of_the_whole_batch():
    shares, weight, bias = _inputs([3, 5])
    ours = bn_on_ranks(*shares, weight, bias)
    whole = F.batch_norm(torch.cat(shares), None, None, weight, bias, training=True, eps=1e-5)
    torch.testing.assert_close(ours, whole, rtol=0, atol=1e-12)
    probe = torch.randn(ours.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = torch.autograd.grad((ours * probe).sum(), [*shares, weight, bias])
    want = torch.autograd.grad((whole * probe).sum(), [*shares, weight, bias])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    # one share alone normalises with its own statistics: visibly different
    alone = F.batch_norm(shares[0], None, None, weight, bias, training=True, eps=1e-5)
    assert (alone - whole[:3]).abs().max() > 1e-2


def test_batchnorm_across_ranks_gradients_match_finite_differences():
    shares, weight, bias = _inputs([2, 3], channels=2, side=2, seed=3)
    assert torch.autograd.gradcheck(bn_on_ranks, (*shares, weight, bias), eps=1e-6, atol=1e-7)


def test_allreduce_batchnorm_layer_updates_running_statistics_like_torch():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5, dtype=torch.float64)
    for momentum in (0.1, None):
        reference = torch.nn.BatchNorm2d(4, momentum=momentum).double()
        with torch.no_grad():
            reference.weight.uniform_(0.5, 1.5)
            reference.bias.uniform_(-1, 1)
        ours = AllReduceBatchNorm(torch.nn.BatchNorm2d(4, momentum=momentum).double(), reduce=lambda t: t)
        ours.load_state_dict(reference.state_dict())
        for step in range(2):
            torch.testing.assert_close(ours(x + step), reference(x + step), rtol=0, atol=1e-12)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=0, atol=1e-12)
        ours.eval(), reference.eval()
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ shares of a batch
class _Indices(torch.utils.data.Dataset):
    def __len__(self):
        return 23

    def __getitem__(self, i):
        return {"index": i}


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shares_concatenate_to_one_process_batches(world):
    cpu = torch.device("cpu")
    one = [b["index"].tolist() for b in data_loader(_Indices(), 7, 0, cpu, shuffle=True, seed=3, epoch=2)]
    assert len(one) == 3 and sorted(sum(one, [])) != list(range(21))   # shuffled, last 2 dropped
    per_rank = [[b["index"].tolist() for b in data_loader(_Indices(), 7, 0, cpu, shuffle=True, seed=3, epoch=2,
                                                            ranks=Ranks(r, world))] for r in range(world)]
    for k, batch in enumerate(one):
        assert sum((per_rank[r][k] for r in range(world)), []) == batch
        assert [len(per_rank[r][k]) for r in range(world)] == \
            [share_bounds(7, r, world)[1] - share_bounds(7, r, world)[0] for r in range(world)]
    assert sorted(len(per_rank[r][0]) for r in range(world)) == ([3, 4] if world == 2 else [2, 2, 3])


def test_a_batch_smaller_than_the_world_is_refused():
    with pytest.raises(ValueError, match="cannot be shared by 3 ranks"):
        list(data_loader(_Indices(), 2, 0, torch.device("cpu"), shuffle=True, ranks=Ranks(0, 3)))


# -------------------------------------------------------------------------------- precision
def test_precisions_the_cpu_cannot_train_are_refused_by_name():
    with pytest.raises(ValueError, match="'fp16'.*CUDA only.*'bf16'"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        Execution("fp8")
    check_precision("bf16", torch.device("cpu"))
    check_precision("fp64", torch.device("cpu"))


# ------------------------------------------------------------- fit under torchrun, ragged
TINY_RUN = '''
import sys, torch
from lmk.distributed import ranks_from_torchrun
from lmk.train import Execution, fit

class Faces(torch.utils.data.Dataset):
    def __len__(self):
        return 23
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        image = torch.randn(3, 8, 8, generator=g)
        return {"image": image, "landmarks": image[:, :2, :2].mean(0) + 0.1 * i}

torch.set_num_threads(1)
ranks, device = ranks_from_torchrun("cpu", tuple(sys.argv[2:]) or ("gradients", "batchnorm"))
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 4),
                            torch.nn.Unflatten(1, (2, 2)))
fit(model, Faces(), None, loss_fn=lambda out, b: ((out - b["landmarks"]) ** 2).mean(), decode_fn=lambda o: o,
    epochs=3, lr=1e-2, batch_size=7, device=device, show_progress=False, execution=Execution("fp64", ranks=ranks))
if ranks.writer:
    torch.save(model.state_dict(), sys.argv[1])
if ranks.distributed:
    ranks.barrier()
    torch.distributed.destroy_process_group()
'''


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=RTOL, atol=ATOL, msg=lambda m: f"{key}: {m}")
        else:
            assert torch.equal(a[key], b[key]), key


def _run(cmd, cwd):
    done = subprocess.run(cmd, cwd=cwd, env=ONE_THREAD, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.heavy            # about 15 s: three process launches
def test_fit_on_two_ranks_with_ragged_shares_equals_one_process(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(TINY_RUN)
    _run([PYTHON, str(script), "one.pt"], tmp_path)
    _run(TORCHRUN + [str(script), "two.pt"], tmp_path)
    _run(TORCHRUN + [str(script), "local_bn.pt", "gradients"], tmp_path)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    _assert_same_state(torch.load(tmp_path / "two.pt", weights_only=True), one)
    with pytest.raises(AssertionError):                  # BatchNorm statistics of each share alone
        _assert_same_state(torch.load(tmp_path / "local_bn.pt", weights_only=True), one)


# ------------------------------------------------------------ the acceptance run, end to end
COMMAND = ["-m", "lmk.recipes", "train", "n03_sdsd", "--scale", "fast", "--epochs", "1", "--n-train", "72",
           "--n-val", "32", "--batch-size", "16", "--device", "cpu", "--precision", "fp64"]


def _timed(cmd, cwd) -> float:
    start = time.perf_counter()
    _run(cmd, cwd)
    return time.perf_counter() - start


@pytest.mark.heavy            # about 60 s on two busy cores: three training runs
def test_torchrun_two_processes_equal_one_process(tmp_path):
    """The acceptance run, and its negative control without the gradient all-reduce (``C``); the
    control without the BatchNorm all-reduce is the tiny run's (``local_bn``)."""
    one = _timed([PYTHON, *COMMAND, "--out", "B", "--no-score"], tmp_path)
    two = _timed(TORCHRUN + COMMAND + ["--out", "A"], tmp_path)
    print(f"\nn03_sdsd fast, 72 faces, fp64, one thread per process: one process {one:.1f} s, "
          f"torchrun 2 processes {two:.1f} s")
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("A", "B"))
    assert any(k.endswith("running_var") for k in a) and a[next(iter(a))].dtype == torch.float64
    _assert_same_state(a, b)
    assert [p.relative_to(tmp_path / "A") for p in (tmp_path / "A").rglob("result.json")] == [Path("result.json")]
    entry = json.loads((tmp_path / "A" / "result.json").read_text())
    assert entry["execution"]["world_size"] == 2 and entry["name"] == "n03_sdsd"
    _run(TORCHRUN + COMMAND + ["--out", "C", "--unsynced", "gradients", "--no-score"], tmp_path)
    with pytest.raises(AssertionError):
        _assert_same_state(torch.load(tmp_path / "C" / "model.pt", weights_only=True), b)


def test_a_folder_refuses_a_run_with_other_settings(tmp_path, capsys):
    run = {"name": "n03_sdsd", "scale": "fast", "data": "synthetic", "data_root": None,
           "config": {"train": {}}, "precision": "fp32", "world_size": 1}
    (tmp_path / "run.json").write_text(json.dumps(run))
    code = recipes_main(["train", "n03_dddd", "--out", str(tmp_path), "--device", "cpu"])
    assert code == 2
    assert "holds a run with other settings" in capsys.readouterr().err
