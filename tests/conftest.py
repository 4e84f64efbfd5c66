"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Unit tests use small tensors: one thread is as fast, and avoids OpenMP spin-waiting
    when the cores are shared with other jobs."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def ax():
    """A fresh matplotlib axis (the Agg backend), closed after the test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)
