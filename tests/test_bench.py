import cv2
import torch

from lmk.bench import single_thread


def test_single_thread_sets_and_restores_both_libraries():
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    with single_thread():
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
