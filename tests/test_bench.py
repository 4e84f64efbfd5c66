import cv2
import torch

from lmk.bench import single_thread


def test_single_thread_sets_and_restores_both_libraries():
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    with single_thread():
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2


def test_ops_topic_runs_at_a_tiny_size():
    from lmk.bench import TOPICS, ops

    assert "ops" in TOPICS
    results = ops.run(quick=True, batch=2, landmarks=3, channels=2, map_size=8, patch=3)
    assert set(results) == {"crop_ms", "crop_grid_sample_ms", "crop_speedup_vs_grid_sample"}
    assert set(ops.describe()) == set(results)
    assert all(value > 0 for value in results.values())
