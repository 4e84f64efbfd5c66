"""Validation of notebook parameters.

papermill only *warns* about a parameter the notebook does not declare, so every notebook
validates its parameters right after the ``parameters`` cell::

    P = check_params(globals(), SCALE=("fast", "full"), SEED=int, EPOCHS=(int, None))

A spec is a type (``int``, ``float``, ``str``, ``bool``), a tuple of allowed values
(``("fast", "full")``), or a tuple of types with ``None`` meaning "optional"
(``(int, None)``). Upper-case names in the namespace that the spec does not list are
parameters the notebook does not know, typically a typo in ``-p NAME VALUE``.
"""

from __future__ import annotations

import types


class ParameterError(ValueError):
    """A notebook parameter has an unknown name, a wrong type or a bad value."""


def _is_type_spec(spec) -> bool:
    return isinstance(spec, tuple) and all(s is None or isinstance(s, type) for s in spec)


def _describe(spec) -> str:
    if isinstance(spec, type):
        return spec.__name__
    if _is_type_spec(spec):
        return " or ".join("None" if s is None else s.__name__ for s in spec)
    return "one of " + ", ".join(repr(s) for s in spec)


def check_value(name: str, value, spec) -> None:
    """Raise :class:`ParameterError` unless ``value`` satisfies ``spec``."""
    if isinstance(spec, type) or _is_type_spec(spec):
        allowed = (spec,) if isinstance(spec, type) else spec
        for t in allowed:
            if t is None and value is None:
                return
            if t is None:
                continue
            if t is float and isinstance(value, int) and not isinstance(value, bool):
                return  # 1 is a fine float
            if t is not bool and isinstance(value, bool):
                continue  # True is not an int parameter
            if isinstance(value, t):
                return
        raise ParameterError(f"parameter {name}={value!r} has type {type(value).__name__}; "
                             f"expected {_describe(spec)}")
    if value not in spec:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected {_describe(spec)}")


def _looks_like_parameter(name: str, value) -> bool:
    if name.startswith("_") or not name.isupper():
        return False
    return not isinstance(value, (types.ModuleType, types.FunctionType, type))


def check_params(namespace: dict, **spec) -> dict:
    """Validate the parameters found in ``namespace`` (a notebook's ``globals()``).

    Returns:
        ``{name: value}`` for every name in ``spec``.
    Raises:
        ParameterError: a spec'd name is missing, has a wrong type or value, or an upper-case
            name in the namespace is not in ``spec`` (an unknown parameter).
    """
    unknown = sorted(n for n, v in namespace.items()
                     if _looks_like_parameter(n, v) and n not in spec)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}; this notebook accepts "
                             f"{', '.join(sorted(spec))}")
    values = {}
    for name, s in spec.items():
        if name not in namespace:
            raise ParameterError(f"parameter {name} is missing from the parameters cell")
        check_value(name, namespace[name], s)
        values[name] = namespace[name]
    return values


def scaled(scale: str, fast, full, override=None):
    """Pick the fast or full value of a size/epoch setting unless the user overrode it."""
    if override is not None:
        return override
    if scale not in ("fast", "full"):
        raise ParameterError(f"SCALE must be 'fast' or 'full', got {scale!r}")
    return fast if scale == "fast" else full
