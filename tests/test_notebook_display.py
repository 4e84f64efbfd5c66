"""How the committed notebooks show in JupyterLab: metadata it would rewrite, and figure sizes."""

import base64
import json
import struct
from pathlib import Path

import pytest
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_what_jupyterlab_writes(path):
    """JupyterLab replaces a kernelspec that differs from the kernel's own and autosaves the file."""
    kernel = get_kernel_dict()   # what `python -m ipykernel install` writes to kernel.json
    expected = {"display_name": kernel["display_name"], "language": kernel["language"],
                "name": KERNEL_NAME}
    assert _load(path)["metadata"]["kernelspec"] == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_language_info_is_what_the_kernel_reports(path):
    """The kernel's info reply; its Python version is the one that executed the notebook."""
    saved = dict(_load(path)["metadata"]["language_info"])
    expected = dict(IPythonKernel.language_info)
    assert saved.pop("version").split(".")[0] == expected.pop("version").split(".")[0]
    assert saved == expected
