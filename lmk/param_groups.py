"""Frozen parts and per-part learning rates: the ``freeze`` and ``param_groups`` of ``lmk.train.fit``.

Staged training fixes some parts of a model and slows others down (Yan et al. 2020, Sec. 6.6:
baseline first, then CropNet refinement stages; Xia et al. 2022, Sec. 3.4: backbone and
alignment branch first, then the other branches on a frozen backbone). Both arguments name the
parts by parameter-name *prefixes*, matched on whole dotted components (:func:`covers`)::

    freeze=["backbone."]                                   # fixed for the run
    param_groups=[{"prefix": "stages.0.", "lr_scale": 0.1}]   # trains at lr * 0.1

:func:`check_prefixes` validates them, :func:`split_parameters` turns them into Adam parameter
groups plus the parameters and normalisation layers to keep fixed, and :func:`frozen_parameters`
fixes those for one run and gives the model its flags back afterwards. Error messages speak of
``fit()``, the function whose arguments these are.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

from torch import nn

__all__ = ["covers", "check_prefixes", "split_parameters", "frozen_parameters"]


def covers(prefix: str, name: str) -> bool:
    """Whether the dotted ``name`` is the module or parameter ``prefix`` names, or lies inside it.

    ``"stages.1"`` and ``"stages.1."`` both cover ``"stages.1.weight"``; neither covers
    ``"stages.10.weight"`` (a plain ``startswith`` would).
    """
    path = prefix.rstrip(".")
    return name == path or name.startswith(path + ".")


def check_prefixes(freeze, param_groups) -> tuple[list[str], list[tuple[str, float]]]:
    """Validate ``freeze`` and ``param_groups``; returns the prefixes and ``(prefix, lr_scale)`` pairs."""
    if freeze is None:
        freeze = []
    elif isinstance(freeze, str) or not hasattr(freeze, "__iter__"):
        raise ValueError(f"fit(): freeze must be a list of parameter-name prefixes like ['backbone.'], "
                         f"got {type(freeze).__name__} {freeze!r}")
    freeze = list(freeze)
    for i, prefix in enumerate(freeze):
        if not isinstance(prefix, str) or not prefix.strip("."):
            raise ValueError(f"fit(): freeze[{i}] must be a non-empty prefix string, got {prefix!r}")
    if param_groups is None:
        param_groups = []
    if not isinstance(param_groups, (list, tuple)):
        raise ValueError(f"fit(): param_groups must be a list of {{'prefix': str, 'lr_scale': float}}, "
                         f"got {type(param_groups).__name__}")
    groups = []
    for i, group in enumerate(param_groups):
        if not isinstance(group, dict) or set(group) != {"prefix", "lr_scale"}:
            got = sorted(group) if isinstance(group, dict) else type(group).__name__
            raise ValueError(f"fit(): param_groups[{i}] must be a dict with keys 'prefix' and 'lr_scale', got {got}")
        prefix, scale = group["prefix"], group["lr_scale"]
        if not isinstance(prefix, str) or not prefix.strip("."):
            raise ValueError(f"fit(): param_groups[{i}]['prefix'] must be a non-empty string, got {prefix!r}")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 0 < scale < math.inf:
            raise ValueError(f"fit(): param_groups[{i}]['lr_scale'] must be a positive finite number, got "
                             f"{scale!r} (to keep parameters fixed, freeze them)")
        groups.append((prefix, float(scale)))
    return freeze, groups


def split_parameters(model: nn.Module, freeze: list[str], groups: list[tuple[str, float]], lr: float):
    """Sort the model's parameters into frozen ones and Adam parameter groups.

    Returns:
        ``(frozen, optimizer_groups, frozen_norms)``: the parameters to keep fixed; Adam's groups,
        first the base group (lr ``lr``, every trainable parameter no prefix covers, possibly
        empty) then one per ``groups`` entry (lr ``lr * lr_scale``, its ``prefix`` recorded); and
        the normalisation layers (BatchNorm, InstanceNorm) inside frozen modules, which must stay
        in eval mode so their running statistics do not move.
    """
    named = list(model.named_parameters())
    norms = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    top_level = sorted({name.split(".")[0] for name, _ in named})
    for prefix in freeze:
        if not any(covers(prefix, name) for name, _ in named + norms):
            raise ValueError(f"fit(): freeze prefix {prefix!r} matches no parameter or BatchNorm layer "
                             f"of the model (its top-level names are {top_level})")
    frozen, base, members = [], [], [[] for _ in groups]
    for name, param in named:
        owners = [i for i, (prefix, _) in enumerate(groups) if covers(prefix, name)]
        if len(owners) > 1:
            raise ValueError(f"fit(): parameter {name!r} is matched by the param_groups prefixes "
                             f"{[groups[i][0] for i in owners]}; give each parameter one group")
        if any(covers(prefix, name) for prefix in freeze):
            frozen.append(param)
        else:
            (members[owners[0]] if owners else base).append(param)
    for (prefix, _), params in zip(groups, members):
        if not params:
            where = ("covers only frozen parameters" if any(covers(prefix, n) for n, _ in named)
                     else f"matches no parameter of the model (its top-level names are {top_level})")
            raise ValueError(f"fit(): param_groups prefix {prefix!r} {where}")
    if not base and not groups:
        raise ValueError(f"fit(): freeze={freeze} leaves no parameter to train")
    optimizer_groups = [{"params": base}] + [{"params": params, "lr": lr * scale, "prefix": prefix}
                                            for (prefix, scale), params in zip(groups, members)]
    frozen_norms = [m for name, m in norms if any(covers(prefix, name) for prefix in freeze)]
    return frozen, optimizer_groups, frozen_norms


@contextmanager
def frozen_parameters(model: nn.Module, params: list[nn.Parameter], norms: list[nn.Module]):
    """``requires_grad=False`` on ``params`` inside the block (``fit``'s training epochs keep
    ``norms`` in eval mode); afterwards the parameters get their own flags back and the norms the
    model's mode."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        for norm_layer in norms:
            norm_layer.train(model.training)
