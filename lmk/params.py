"""The parameters of every notebook, declared once and checked before anything runs.

papermill only *warns* about a parameter a notebook does not declare, and runs a bad value until
it breaks somewhere deep in a cell. So each notebook's ``parameters`` cell is followed by::

    P = lmk.params.validate("03", globals())

which checks the cell against ``SPECS["03"]``: every declared name present, no unknown
upper-case name, types, allowed values, ranges and the rules that tie parameters together
(``DATA="300w"`` needs an existing ``DATA_ROOT``). ``python -m lmk.course`` runs the same checks
on the user's ``-p NAME VALUE`` pairs for every selected notebook before any notebook starts.

Adding a notebook is one entry in ``NOTEBOOKS`` and one in ``SPECS``, built from ``COMMON``.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import DATA_NAMES, check_300vw_root
from .evaluation import resolve_device
from .models.heads import check_strategy


class ParameterError(ValueError):
    """A notebook parameter has an unknown name, a wrong type or a bad value.

    ``parameter`` and ``notebook`` (a file stem) are set when the error concerns one of them;
    ``reason`` is the message without the notebook's name.
    """

    def __init__(self, message: str, *, parameter: str | None = None, notebook: str | None = None,
                 reason: str | None = None):
        super().__init__(message)
        self.parameter, self.notebook, self.reason = parameter, notebook, reason or message


@dataclass(frozen=True)
class Param:
    """The declaration of one notebook parameter.

    Args:
        kind: ``int``, ``float`` (an int is accepted), ``str``, ``bool`` or ``tuple`` (a non-empty
            list or tuple, whose items are checked as ``item``), or a tuple of these.
        optional: ``None`` is allowed (typically "derive it from ``SCALE``").
        choices: the allowed values, if there is a fixed set.
        minimum, maximum: inclusive bounds of a number (of every item of a sequence).
        positive: the number (every item) must be ``> 0``.
        multiple_of: a whole number must be a multiple of this (an input side of a stride-32 net).
        item: the kind of a sequence's items (``float`` or ``str``).
        check: raises ``ValueError(reason)`` for a value the rules above cannot express.
        path: a file-system path, resolved against the caller's working directory by the course.
        text: what is allowed, in words, where the kind alone says too little.
    """

    kind: type | tuple
    optional: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    multiple_of: int | None = None
    item: type | None = None
    check: Callable | None = None
    path: bool = False
    text: str = ""

    def describe(self) -> str:
        """What is allowed, in words: ``"an int > 0, or None"``."""
        if self.text or self.choices:
            text = self.text or "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
            text = " or ".join(_NOUNS[k] for k in kinds)
            text += f" of {_PLURALS[self.item]}" if self.item else ""
            bounds = ["> 0" if self.positive else "", _bound(">=", self.minimum),
                      _bound("<=", self.maximum), f"a multiple of {self.multiple_of}" if self.multiple_of else ""]
            text += (" " + " and ".join(b for b in bounds if b)) if any(bounds) else ""
        return text + (", or None" if self.optional else "")

    @property
    def is_list(self) -> bool:
        """Whether the value may be a list (``kind`` is or includes ``tuple``)."""
        return tuple in (self.kind if isinstance(self.kind, tuple) else (self.kind,))

    def reason(self, value) -> str | None:
        """Why ``value`` is not allowed (a phrase following its name), or ``None`` if it is."""
        if value is None:
            return None if self.optional else f"must not be None; expected {self.describe()}"
        if not _has_kind(value, self.kind):
            return f"has type {type(value).__name__}; expected {self.describe()}"
        if self.choices and value not in self.choices:
            return f"is not allowed; expected {self.describe()}{_suggestion(value, self.choices)}"
        sequence = isinstance(value, (list, tuple))
        if sequence and not value:
            return f"is empty; expected {self.describe()}"
        for v in value if sequence else (value,):
            if self.item is not None and not _has_kind(v, self.item):
                return f"has an item {v!r} of type {type(v).__name__}; expected {self.describe()}"
            if isinstance(v, numbers.Real) and not _in_range(self, v):
                return f"{f'has an item {v!r}' if sequence else 'is'} out of range; expected {self.describe()}"
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                return str(exc)
        return None


_NOUNS = {int: "an int", float: "a number", str: "a string", bool: "a bool (True or False)",
          tuple: "a non-empty list or tuple"}
_PLURALS = {float: "numbers", str: "strings", int: "ints"}


def _bound(op, limit):
    return "" if limit is None else f"{op} {limit:g}"


def _in_range(p: Param, v) -> bool:
    return (math.isfinite(v) and (not p.positive or v > 0) and (p.minimum is None or v >= p.minimum)
            and (p.maximum is None or v <= p.maximum) and (not p.multiple_of or v % p.multiple_of == 0))


def _has_kind(value, kind) -> bool:
    """Type check where numpy integers are ints, ints are floats, a bool is neither, and
    ``tuple`` means a list or a tuple; ``kind`` may be a tuple of kinds."""
    if isinstance(kind, tuple):
        return any(_has_kind(value, k) for k in kind)
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, (list, tuple) if kind is tuple else kind)


def _suggestion(value, choices) -> str:
    if isinstance(value, str):
        folded = [c for c in choices if isinstance(c, str) and c.lower() == value.lower()]
        close = folded or difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], 1)
        if close:
            return f" (did you mean {close[0]!r}?{' Names are lower-case.' if folded else ''})"
    return ""


# ----------------------------------------------------------------------------- custom checks
REAL_DATA = ("300w", "wflw", "jd106")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(device: str) -> None:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``, available on this machine."""
    if not _DEVICE.fullmatch(device):
        raise ValueError("is not a device; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device in ("auto", "cpu"):
        return
    try:
        resolved = resolve_device(device)
    except ValueError:
        raise ValueError("is not available on this machine; 'auto' picks the best device there "
                         "is") from None
    count = torch.cuda.device_count()
    if resolved.type == "cuda" and (resolved.index or 0) >= count:
        raise ValueError(f"names a GPU this machine does not have (it has {count}: 'cuda:0' .. "
                         f"'cuda:{count - 1}')")


def check_stage_epochs(value) -> None:
    """Three epoch counts, one per ATPN stage (Xia et al. 2022, Sec. 3.4), not all zero."""
    if len(value) != 3:
        raise ValueError(f"must give three epoch counts (stages 1, 2, 3), got {len(value)}")
    if not any(value):
        raise ValueError("trains nothing: every stage has 0 epochs")


def check_video_root(path: str) -> None:
    """A folder of 300VW videos that :func:`lmk.data.read_300vw_videos` reads: checked by the
    reader's own rules (:func:`lmk.data.check_300vw_root`), without decoding a frame."""
    try:
        check_300vw_root(path)
    except ValueError as exc:           # AnnotationError too: it names the file
        raise ValueError(f"cannot be read as 300VW videos: {exc}") from None


def check_results_path(path: str) -> None:
    """A ``.json`` file whose folder exists or can be created (nothing is created here)."""
    target = Path(path).expanduser()
    if target.suffix != ".json":
        raise ValueError("must be the path of a .json file")
    if target.is_dir():
        raise ValueError("is a folder; expected the path of a .json file")
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot be written: {parent} is not a writable folder")


def check_strategies(value) -> None:
    """Upsampling strategies over ``S``/``D``: ``"SSSS,SDSD"`` or ``["SSSS", "SDSD"]``."""
    names = value.split(",") if isinstance(value, str) else list(value)
    for name in names:
        try:
            ok = check_strategy(name) == name
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"contains {name!r}; a strategy is a string of upper-case 'S' (pixel "
                             f"shuffle) and 'D' (deconvolution) blocks such as 'SDSD'")
    if len(set(names)) < len(names):
        raise ValueError("names a strategy twice")


def check_zoo_dir(path: str) -> None:
    """A zoo folder: an existing folder holding a ``manifest.json`` (whether its models match the
    notebook's ``DATA`` and ``SCALE`` is checked when the notebook reads it)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError("is not an existing folder; build a zoo there with `python -m lmk.zoo build "
                         "--scale full --zoo-dir DIR`")
    if not (folder / "manifest.json").is_file():
        raise ValueError("holds no manifest.json: it is not a zoo (build one with `python -m lmk.zoo "
                         "build --scale full --zoo-dir DIR`)")


def check_run_dir(path: str) -> None:
    """A folder for training runs: a folder, or a path that does not exist yet (it is created)."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ValueError("exists and is not a folder; expected the folder of the training runs")


def check_yin_videos(value) -> None:
    """Three counts: Yin's training videos, validation videos and frames per video."""
    if len(value) != 3:
        raise ValueError(f"must give three counts (training videos, validation videos, frames per "
                         f"video), got {len(value)}")


def _data_root_rule(values: dict) -> str | None:
    data, root = values["DATA"], values["DATA_ROOT"]
    if root is None:
        return (f"DATA={data!r} needs DATA_ROOT, the folder holding the data set (see "
                f"data/README.md), e.g. -p DATA_ROOT /data/{data}") if data in REAL_DATA else None
    if data == "synthetic":
        return (f"DATA_ROOT={root!r} is given but DATA='synthetic' reads no files; set DATA to the "
                f"data set in that folder (one of {', '.join(map(repr, DATA_NAMES[1:]))})")
    if not Path(root).expanduser().is_dir():
        return f"DATA_ROOT={root!r} (for DATA={data!r}) is not an existing folder"
    return None


# Rules over several parameters: (names, rule); a rule returns a reason or None and applies to
# every notebook that declares all its names.
RULES = ((("DATA", "DATA_ROOT"), _data_root_rule),)

# ----------------------------------------------------------------------------- declarations
COMMON = {
    "SCALE": Param(str, choices=("fast", "full")),
    "SEED": Param(int, minimum=0),
    "DEVICE": Param(str, check=check_device,
                    text="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', available on this machine"),
    "DATA": Param(str, choices=DATA_NAMES),
    "DATA_ROOT": Param(str, optional=True, path=True, text="an existing folder (needed for DATA "
                       "'300w', 'wflw', 'jd106'; 'sample' defaults to data/sample)"),
    "ON_ERROR": Param(str, choices=("raise", "skip")),
    "RESULTS": Param(str, optional=True, path=True, check=check_results_path,
                     text="the path of a .json file in a folder that exists or can be created"),
    "SHOW_PROGRESS": Param(bool),
}
_COUNT = Param(int, optional=True, positive=True)       # None: derived from SCALE
_TRAINING = {
    "INPUT_SIZE": Param(int, optional=True, positive=True, multiple_of=32),  # stride-32 backbones
    "N_TRAIN": _COUNT, "N_VAL": _COUNT, "EPOCHS": _COUNT, "BATCH_SIZE": _COUNT,
    "LR": Param(float, optional=True, positive=True),
    "USE_ZOO": Param(bool),   # read the experiment tables from the shipped converged models
    # the zoo the tables are read from (None: the shipped one, fast scale); built on DATA at SCALE
    "ZOO_DIR": Param(str, optional=True, path=True, check=check_zoo_dir,
                     text="the folder of a zoo built by `python -m lmk.zoo build --scale full "
                          "--zoo-dir DIR` (a manifest.json), or None"),
    # the training runs' folder: a sub-folder per recipe, checkpoints every epoch, resumed
    "RUN_DIR": Param(str, optional=True, path=True, check=check_run_dir,
                     text="a folder (created if missing) for the training runs, or None"),
    "N_SEEDS": Param(int, optional=True, positive=True),   # training seeds per multi-seed table row
}
NOTEBOOKS = {"00": "00_landmarks_data_metrics", "01": "01_quantization_error",
             "02": "02_heatmaps_2d_vs_1d", "03": "03_pixelshuffle_vs_deconv",
             "04": "04_cropnet_gradients", "05": "05_cascaded_refinement",
             "06": "06_multitask_training"}
SPECS = {
    "00": {**COMMON, "N_FACES": _COUNT, "IMAGE_SIZE": Param(int, positive=True),
           "NOISE_PX": Param(float, minimum=0, maximum=4)},    # 4 px: the end of the widget's slider
    "01": {**COMMON, "N_SAMPLES": _COUNT, "HEATMAP_SIZE": Param(int, minimum=2),
           "SIGMA": Param(float, positive=True)},
    "02": {**COMMON, **_TRAINING,
           "RATIOS_1D": Param(tuple, optional=True, item=float, positive=True),
           # a 2D head cannot be coarser than the stride-32 features: L / F >= 1/32
           "RATIOS_2D": Param(tuple, optional=True, item=float, minimum=1 / 32)},
    "03": {**COMMON, **_TRAINING, "FILTERS": _COUNT,
           "COMPILE": Param(bool, optional=True),    # torch.compile the deployment path (None: at full scale)
           "STRATEGIES": Param((str, tuple), optional=True, item=str, check=check_strategies,
                                text="strategies over 'S'/'D', as 'SSSS,SDSD' or ['SSSS', 'SDSD']")},
    "04": {**COMMON, **_TRAINING,
           "STAGES": Param(int, minimum=0, maximum=3),          # CropNet stages of the live FFLD
           "LANDMARK": Param(int, minimum=0, maximum=67)},      # the loss landscapes' landmark
    "05": {**COMMON, **_TRAINING,
           "CASCADES": Param(int, minimum=1, maximum=4)},       # K of the live CCNN (Mahpod: 4)
    "06": {**COMMON, **{k: v for k, v in _TRAINING.items() if k != "EPOCHS"},
           # ATPN's coord depthwise block covers the stride-16 map: an input side is a multiple of 16
           "INPUT_SIZE": Param(int, optional=True, positive=True, multiple_of=16),
           "STAGE_EPOCHS": Param(tuple, optional=True, item=int, minimum=0, check=check_stage_epochs,
                                 text="three epoch counts >= 0, one per ATPN training stage, e.g. [4, 1, 2]"),
           "N_VIDEOS": _COUNT,                                   # tracked validation videos
           "YIN_EPOCHS": _COUNT,                 # epochs of each trained stage of Yin's trackers
           "YIN_VIDEOS": Param(tuple, optional=True, item=int, positive=True, check=check_yin_videos,
                               text="three counts > 0: Yin's training videos, validation videos and "
                                    "frames per video, e.g. [6, 2, 64]"),
           "VIDEO": Param(int, minimum=0),                       # the video drawn frame by frame
           "VIDEO_ROOT": Param(str, optional=True, path=True, check=check_video_root,
                               text="a folder of 300VW videos (one sub-folder per video with vid.avi "
                                    "and annot/), or None")},
}


# ----------------------------------------------------------------------------- checking
def notebook_name(notebook: str) -> str:
    """The file stem of a notebook given as ``"03"`` or ``"03_pixelshuffle_vs_deconv"``."""
    key = notebook[:2]
    if key not in NOTEBOOKS or notebook not in (key, NOTEBOOKS[key]):
        raise ParameterError(f"no parameter declaration for notebook {notebook!r}; lmk.params "
                             f"declares {', '.join(NOTEBOOKS.values())}", notebook=notebook)
    return NOTEBOOKS[key]


def _looks_like_parameter(name: str, value) -> bool:
    if name.startswith("_") or not name.isupper():
        return False
    return not isinstance(value, (types.ModuleType, types.FunctionType, type))


def check_namespace(namespace: dict, spec: dict, where: str, rules=RULES) -> dict:
    """Check a namespace against one notebook's declarations; ``where`` names the notebook.

    The user's values come first (their own rules, then the rules tying them together), then the
    completeness of the parameters cell. Returns ``{name: value}`` for every declared name.
    """
    def fail(name, message):
        raise ParameterError(f"{message} (notebook {where})", parameter=name, notebook=where,
                             reason=message)

    for name, param in spec.items():
        if name in namespace:
            reason = param.reason(namespace[name])
            if reason:
                fail(name, f"parameter {name}={namespace[name]!r} {reason}")
    for names, rule in rules:
        if all(n in spec and n in namespace for n in names):
            reason = rule({n: namespace[n] for n in names})
            if reason:
                fail(names[-1], reason)
    missing = [n for n in spec if n not in namespace]
    if missing:
        fail(missing[0], f"parameter(s) {', '.join(missing)} declared in lmk.params but missing "
                         f"from the parameters cell")
    unknown = sorted(n for n, v in namespace.items() if _looks_like_parameter(n, v) and n not in spec)
    if unknown:
        hint = _suggestion(unknown[0], tuple(spec))
        fail(unknown[0], f"unknown parameter(s) {', '.join(unknown)}{hint}; this notebook accepts "
                         f"{', '.join(spec)}")
    return {n: namespace[n] for n in spec}


def validate(notebook: str, namespace: dict) -> dict:
    """Check a notebook's parameters, typically ``validate("03", globals())``.

    Args:
        notebook: the notebook's two-digit number (``"03"``) or its file stem.
        namespace: the notebook's globals after its ``parameters`` cell (and papermill's).
    Returns:
        ``{name: value}`` for every parameter ``SPECS[number]`` declares.
    Raises:
        ParameterError: naming the parameter, the notebook and what is allowed.
    """
    name = notebook_name(notebook)
    return check_namespace(namespace, SPECS[name[:2]], name)


# ----------------------------------------------------------------------------- older helpers
def check_value(name: str, value, spec) -> None:
    """Check one value against a light spec: a type, a tuple of types (``None`` = optional)
    or a tuple of allowed values. Used by :func:`check_params`."""
    is_types = isinstance(spec, type) or all(s is None or isinstance(s, type) for s in spec)
    if is_types:
        kinds = (spec,) if isinstance(spec, type) else spec
        if any((value is None) if k is None else _has_kind(value, k) for k in kinds):
            return
        expected = " or ".join("None" if k is None else k.__name__ for k in kinds)
        raise ParameterError(f"parameter {name}={value!r} has type {type(value).__name__}; "
                             f"expected {expected}", parameter=name)
    if value not in spec:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected one of "
                             f"{', '.join(repr(s) for s in spec)}", parameter=name)


def check_params(namespace: dict, **spec) -> dict:
    """Light validation for a notebook outside the course: ``check_params(globals(), SEED=int)``.

    Course notebooks use :func:`validate` and ``SPECS``. Returns ``{name: value}`` for ``spec``.
    """
    unknown = sorted(n for n, v in namespace.items() if _looks_like_parameter(n, v) and n not in spec)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}; this notebook accepts "
                             f"{', '.join(sorted(spec))}", parameter=unknown[0])
    for name, s in spec.items():
        if name not in namespace:
            raise ParameterError(f"parameter {name} is missing from the parameters cell", parameter=name)
        check_value(name, namespace[name], s)
    return {name: namespace[name] for name in spec}


def scaled(scale: str, fast, full, override=None):
    """Pick the fast or full value of a size/epoch setting unless the user overrode it."""
    if override is not None:
        return override
    if scale not in ("fast", "full"):
        raise ParameterError(f"SCALE must be 'fast' or 'full', got {scale!r}", parameter="SCALE")
    return fast if scale == "fast" else full
