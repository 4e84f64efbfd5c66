"""The zoo *store*: a folder of float16 weights and the ``manifest.json`` that describes them.

This module knows files, not networks: where the zoo is, what its manifest says (checked field
by field), which weights file belongs to an entry (inside the zoo, sha256 checked), how weights
are packed into one float16 vector, and how an entry that ships only part of a model (``base``,
``stored``) is completed from its base entry. It returns state dicts; a model family
(:mod:`lmk.families`) builds the network they go into, and :mod:`lmk.zoo` puts the two together.

Where the zoo is, in order: the ``zoo_dir`` argument, the ``LMK_ZOO_DIR`` environment variable,
then ``data/zoo/`` of the source checkout this package runs from. A zoo folder that does not
exist is an error (a typo in ``LMK_ZOO_DIR`` is not an empty zoo); a folder without a
manifest yet is an empty zoo.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CheckpointError, load_checkpoint

__all__ = ["ZooError", "ENV_VAR", "SCHEMA", "MANIFEST", "PACKED", "zoo_dir", "manifest", "read_manifest",
           "write_manifest", "names", "entry", "weights_path", "sha256", "pack", "unpack", "to_float32",
           "read_state", "write_weights", "migrate", "migrate_manifest"]

ENV_VAR = "LMK_ZOO_DIR"
MANIFEST = "manifest.json"
SCHEMA = 3
"""Version of the manifest's layout. 1: ``{"entries": ...}`` as first shipped; 2: adds ``schema``
and the recipe field ``train.flip_test`` (Earp's flip test-time averaging is scored); 3: an
entry's ``metrics``, ``baseline_nme`` and ``task_metrics`` are on the held-out test faces
(``test``: split, n, seed), and ``validation`` holds the same figures on the validation faces.
See :func:`migrate`."""
PACKED = "lmk.zoo/flat-float16-1"
"""Format tag of :func:`pack`: one float16 vector for all floating tensors (earlier entries are
plain float16 state dicts; a zip record per tensor costs ~0.2 MB on a small ATPN)."""
_CHECKOUT_ZOO = Path(__file__).resolve().parents[1] / "data" / "zoo"
_REQUIRED = {"file": str, "sha256": str, "recipe": dict, "notebook": str, "tags": dict, "method": str,
             "metrics": dict, "mean_shape": list, "baseline_nme": (int, float), "test": dict, "validation": dict}
_SPLIT_REQUIRED = {"split": str, "n": int, "seed": int}
_RECIPE_REQUIRED = {"name": str, "model": str, "model_args": dict, "data": dict, "train": dict}


class ZooError(RuntimeError):
    """A zoo file is missing, corrupt, malformed or out of date; the message names it and the fix."""


# --------------------------------------------------------------------------------- location
def zoo_dir(path=None) -> Path:
    """The zoo folder: ``path``, else ``$LMK_ZOO_DIR``, else the checkout's ``data/zoo/``."""
    if path is not None:
        if str(path) == "":
            raise ZooError("zoo_dir is an empty path; give the zoo folder (or None for "
                           f"${ENV_VAR}, else the checkout's data/zoo)")
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if not _CHECKOUT_ZOO.parent.is_dir():
        raise ZooError(f"no zoo folder: lmk is installed without its source checkout, so there is no "
                       f"data/zoo/ beside it; pass zoo_dir=..., use --zoo-dir, or set {ENV_VAR} to "
                       f"the data/zoo folder of a checkout (or a zoo you built)")
    return _CHECKOUT_ZOO


_where = zoo_dir     # for the functions whose ``zoo_dir`` argument hides the function's name


# ---------------------------------------------------------------------------------- manifest
def _read_document(directory) -> tuple[Path, dict | None]:
    """``(path, the manifest's JSON object)``; ``None`` where the zoo folder has no manifest yet."""
    folder = zoo_dir(directory)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ZooError(f"zoo folder {folder} " + ("is not a folder" if folder.exists() else "does not exist")
                       + f" (from zoo_dir / --zoo-dir, else ${ENV_VAR}, else the checkout's data/zoo)")
    if not path.exists():
        return path, None
    if not path.is_file():
        raise ZooError(f"zoo manifest {path} is not a file")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ZooError(f"zoo manifest {path} cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise ZooError(f"zoo manifest {path}: expected an object with an 'entries' object, got "
                       f"{type(doc.get('entries') if isinstance(doc, dict) else doc).__name__}")
    return path, doc


def read_manifest(directory=None) -> dict:
    """The whole manifest document ``{"schema", "entries"}`` (``{}`` entries if there is none yet).

    Raises:
        ZooError: the zoo folder does not exist; the manifest is not a file, not JSON, of another
            schema, or an entry lacks a field or has one of the wrong type (the message names
            the entry and the field).
    """
    path, doc = _read_document(directory)
    if doc is None:
        return {"schema": SCHEMA, "entries": {}}
    doc.setdefault("schema", 1)
    if doc["schema"] != SCHEMA:
        raise ZooError(f"zoo manifest {path} has schema {doc['schema']!r}, this lmk reads {SCHEMA}; "
                       f"migrate it with `python -m lmk.zoo migrate`")
    for name, e in doc["entries"].items():
        _check_entry(path, name, e)
    return doc


def _check_entry(path: Path, name: str, e) -> None:
    where = f"zoo manifest {path}: entry {name!r}"
    if not isinstance(e, dict):
        raise ZooError(f"{where} is a {type(e).__name__}, expected an object")
    for fields, holder, prefix in ((_REQUIRED, e, ""), (_RECIPE_REQUIRED, e.get("recipe"), "recipe.")):
        if not isinstance(holder, dict):
            break
        for key, kind in fields.items():
            if key not in holder:
                raise ZooError(f"{where} has no field '{prefix}{key}'")
            if not isinstance(holder[key], kind) or isinstance(holder[key], bool):
                raise ZooError(f"{where}: field '{prefix}{key}' is a {type(holder[key]).__name__}")
    for key, split in (("test", "test"), ("validation", "val")):
        for field_, kind in _SPLIT_REQUIRED.items():
            if not isinstance(e[key].get(field_), kind) or isinstance(e[key].get(field_), bool):
                raise ZooError(f"{where}: field '{key}.{field_}' is missing or not a {kind.__name__}")
        if e[key]["split"] != split:
            raise ZooError(f"{where}: field '{key}.split' is {e[key]['split']!r}, expected {split!r}")
    for prefix, holder in (("", e), ("validation.", e["validation"])):
        if not isinstance(holder.get("metrics"), dict) or not isinstance(holder["metrics"].get(e["method"]), dict) \
                or not isinstance(holder["metrics"][e["method"]].get("nme"), (int, float)):
            raise ZooError(f"{where}: field '{prefix}metrics' has no {e['method']!r} record with an 'nme' "
                           f"(its 'method')")
        if not isinstance(holder.get("baseline_nme"), (int, float)) or isinstance(holder.get("baseline_nme"), bool):
            raise ZooError(f"{where}: field '{prefix}baseline_nme' is missing or not a number")
    if e.get("base") is not None:
        for key, kind in (("base", str), ("base_sha256", str), ("stored", list)):
            if not isinstance(e.get(key), kind):
                raise ZooError(f"{where} has a base but its field {key!r} is missing or not a {kind.__name__}")
        if e["base"] == name:
            raise ZooError(f"{where} names itself as its base")


def manifest(directory=None) -> dict:
    """``{name: entry}`` of the zoo's manifest, validated (see :func:`read_manifest`)."""
    return read_manifest(directory)["entries"]


def write_manifest(entries: dict, directory=None) -> None:
    """Write ``entries`` as the manifest (atomically: a temporary file renamed)."""
    folder = zoo_dir(directory)
    text = json.dumps({"schema": SCHEMA, "entries": dict(sorted(entries.items()))}, indent=1)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
        f.write(text + "\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, folder / MANIFEST)


def migrate(doc: dict, rescore=None) -> dict:
    """A manifest document brought to :data:`SCHEMA`; weights and sha256 are untouched.

    1 -> 2: the recipe records of the entries scored with Earp's flip test-time averaging (their
    metrics have ``"dark+flip"``) gain ``train.flip_test = True``; that used to be inferred from
    the notebook number.

    2 -> 3: every model is scored on the held-out test faces (no training): ``rescore(entries)``
    returns ``{name: {"metrics", "baseline_nme", ["task_metrics",] "test", "validation"}}`` (the
    zoo's :func:`lmk.zoo.rescore`; this layer cannot score). The schema-2 ``metrics`` were on the
    validation faces; the rescore recomputes them there too, into ``validation``.

    Raises:
        ZooError: a schema this lmk does not know (a newer one is never written back as older),
            or 2 -> 3 without ``rescore``.
    """
    import copy

    doc = copy.deepcopy(doc)
    schema = doc.get("schema", 1)
    if isinstance(schema, bool) or schema not in range(1, SCHEMA + 1):
        raise ZooError(f"zoo manifest schema {schema!r} is not one this lmk knows (1 to {SCHEMA}); "
                       f"a newer lmk wrote it: update lmk")
    if schema == 1:
        for e in doc["entries"].values():
            if any(m.endswith("+flip") for m in e.get("metrics", {})):
                e["recipe"]["train"]["flip_test"] = True
        doc["schema"] = schema = 2
    if schema == 2:
        if rescore is None:
            raise ZooError("schema 2 -> 3 scores every model on the held-out test faces; run "
                           "`python -m lmk.zoo migrate` (a few minutes, no training)")
        for name, record in rescore(doc["entries"]).items():
            doc["entries"][name].update(record)
        doc["schema"] = 3
    return doc


def migrate_manifest(directory=None, rescore=None) -> tuple[int, int]:
    """Bring the zoo's manifest file to :data:`SCHEMA` (:func:`migrate`, ``rescore`` as there);
    returns ``(old, new)`` schema.

    Every entry is checked before the file is written (atomically), so a manifest this lmk
    cannot read is left as it is.
    """
    path, doc = _read_document(directory)
    if doc is None:
        raise ZooError(f"zoo manifest {path} does not exist: nothing to migrate")
    old = doc.get("schema", 1)
    try:
        migrated = migrate(doc, rescore)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ZooError(f"zoo manifest {path} cannot be migrated: an entry lacks a field "
                       f"({type(exc).__name__}: {exc})") from None
    for name, e in migrated["entries"].items():
        _check_entry(path, name, e)
    write_manifest(migrated["entries"], directory)
    return old, migrated["schema"]


def names(notebook: str | None = None, *, zoo_dir=None, **tags) -> list[str]:
    """Names of the zoo's models of a notebook whose tags match ``tags`` (all if none given)."""
    return [n for n, e in manifest(zoo_dir).items() if (notebook is None or e["notebook"] == notebook)
            and all(e["tags"].get(k) == v for k, v in tags.items())]


def entry(name: str, zoo_dir=None, entries: dict | None = None) -> dict:
    """The manifest entry of ``name`` (looked up in ``entries``, default the zoo's manifest); an
    unknown name says which names are close."""
    entries = manifest(zoo_dir) if entries is None else entries
    if name not in entries:
        where = _where(zoo_dir) / MANIFEST
        close = difflib.get_close_matches(str(name), list(entries), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"{len(entries)} models are listed"
        raise ZooError(f"no zoo model named {name!r} in {where}; {hint} (list them: python -m lmk.zoo "
                       f"list; build one: python -m lmk.zoo build {name})")
    return entries[name]


# ----------------------------------------------------------------------------------- weights
def weights_path(e: dict, directory=None) -> Path:
    """The weights file of entry ``e``, which must lie inside the zoo folder."""
    folder = zoo_dir(directory).resolve()
    path = (folder / e["file"]).resolve()
    if folder not in path.parents:
        raise ZooError(f"zoo entry {e.get('name')!r}: file {e['file']!r} lies outside the zoo {folder}")
    return path


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pack(state: dict) -> dict:
    """A state dict as ``{"format", "names", "shapes", "float16": one flat vector, "other": {...}}``."""
    floats = [(k, v.detach()) for k, v in state.items() if v.is_floating_point()]
    flat = (torch.cat([v.reshape(-1).half() for _, v in floats]) if floats
            else torch.empty(0, dtype=torch.float16))
    return {"format": PACKED, "names": [k for k, _ in floats], "shapes": [list(v.shape) for _, v in floats],
            "float16": flat, "other": {k: v for k, v in state.items() if not v.is_floating_point()}}


def unpack(obj: dict) -> dict:
    """The state dict of :func:`pack` (a plain state dict is returned as it is)."""
    if obj.get("format") != PACKED:
        return obj
    counts = [int(np.prod(shape, dtype=np.int64)) for shape in obj["shapes"]]
    if sum(counts) != obj["float16"].numel():
        raise ValueError(f"packed weights hold {obj['float16'].numel()} values, the shapes {sum(counts)}")
    out, start = {}, 0
    for name, shape, count in zip(obj["names"], obj["shapes"], counts):
        out[name] = obj["float16"][start:start + count].view(shape)
        start += count
    return {**out, **obj["other"]}


def to_float32(state: dict) -> dict:
    """A float16 state dict as float32 (integer buffers unchanged)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _read_own(name: str, e: dict, directory) -> dict:
    path = weights_path(e, directory)
    rebuild = f"rebuild it with `python -m lmk.zoo build {name}`"
    if path.is_dir():
        raise ZooError(f"zoo weights {path} are a folder, not a file; {rebuild}")
    if not path.is_file():
        raise ZooError(f"zoo weights {path} are missing; {rebuild}")
    if sha256(path) != e["sha256"]:
        raise ZooError(f"zoo weights {path} do not match the manifest's sha256 (corrupt or replaced); {rebuild}")
    try:
        obj = load_checkpoint(path)
        state = unpack(obj)
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise ValueError("not a state dict of named tensors")
    except CheckpointError as exc:
        raise ZooError(f"zoo weights {path}: {str(exc).split(': ', 1)[-1]}; {rebuild}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ZooError(f"zoo weights {path}: not packed zoo weights ({exc}); {rebuild}") from None
    return to_float32(state)


def read_state(name: str, directory=None, _seen=(), entries: dict | None = None) -> tuple[dict, dict]:
    """``(float32 state dict, entry)`` of a zoo model, completed from its base if it has one.

    An entry with a ``base`` ships only the ``stored`` parts it trained itself; the rest comes
    from the base entry, whose weights must be the ones it was built on (``base_sha256``).
    ``entries``: where to look the entries up (default: the zoo's manifest).
    """
    e = entry(name, directory, entries)
    state = _read_own(name, e, directory)
    if e.get("base") is None:
        return state, e
    if e["base"] in (*_seen, name):
        raise ZooError(f"zoo entry {name!r}: its bases form a cycle ({' -> '.join((*_seen, name, e['base']))})")
    base_state, base = read_state(e["base"], directory, (*_seen, name), entries)
    if base["sha256"] != e["base_sha256"]:
        raise ZooError(f"zoo entry {name!r} was built on other weights of {e['base']} than the shipped "
                       f"ones (rebuilt since?); rebuild it with `python -m lmk.zoo build {name}`")
    own = tuple(e["stored"])
    return {**{k: v for k, v in base_state.items() if not k.startswith(own)}, **state}, e


def write_weights(state: dict, path) -> None:
    """Write ``state`` packed in float16 to ``path`` (atomically, world-readable)."""
    path = Path(path)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        torch.save(pack(half), f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)
