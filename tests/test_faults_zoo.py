"""Zoo faults: broken or crafted zoo files, where the zoo is, and bad inputs to predict.

Each test feeds one fault to :mod:`lmk.store` / :mod:`lmk.zoo` and checks the error (its type,
and the file, entry, field, folder or argument it names) or the right result. The tiny zoos are
copies of small shipped entries in ``tmp_path`` (``n02_1d_r025``: 0.5 MB, scored in seconds).
"""

import copy
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lmk.zoo as zoo
from lmk import store
from lmk.data import SynthFaces, to_original
from lmk.data.transforms import crop_matrix, normalize_image, warp_image
from lmk.store import ZooError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "zoo"
SMALL = "n02_1d_r025"


def copy_zoo(folder: Path, names=(SMALL,), rename: dict | None = None) -> tuple[Path, dict]:
    """A zoo in ``folder`` holding copies of shipped entries (``rename``: old name -> new name)."""
    shipped = store.manifest(SHIPPED)
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name in names:
        e = json.loads(json.dumps(shipped[name]))
        shutil.copy(SHIPPED / e["file"], folder / e["file"])
        new = (rename or {}).get(name, name)
        entries[new] = {**e, "name": new}
    store.write_manifest(entries, folder)
    return folder, entries


def replace_weights(folder: Path, entries: dict, name: str, write) -> Path:
    """Replace an entry's weights file with ``write(path)`` and update the manifest's sha256."""
    path = folder / entries[name]["file"]
    path.unlink()
    write(path)
    entries[name]["sha256"] = store.sha256(path)
    store.write_manifest(entries, folder)
    return path


@pytest.fixture
def small_zoo(tmp_path):
    return copy_zoo(tmp_path / "zoo")


@pytest.fixture
def face():
    return SynthFaces(1, size=128, seed=3)[0]


# ----------------------------------------------------------------- A: crafted and broken files
class NotWeights:
    """An object of a class of this test module: not a tensor or a plain Python type."""


class RunsCommand:
    """Unpickling this object calls ``os.system(command)`` (a pickle GLOBAL of ``posix.system``)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("kind", ["custom_class", "global_os_system", "raw_pickle_global"])
def test_crafted_weights_are_refused_naming_the_file_not_suggesting_weights_only_false(small_zoo, kind):
    folder, entries = small_zoo
    marker = folder.parent / "code_ran"
    command = f"touch {marker}"
    writers = {"custom_class": lambda p: torch.save({"float16": NotWeights()}, p),
               "global_os_system": lambda p: torch.save(RunsCommand(command), p),
               "raw_pickle_global": lambda p: p.write_bytes(pickle.dumps(RunsCommand(command)))}
    path = replace_weights(folder, entries, SMALL, writers[kind])
    with pytest.raises(ZooError) as info:
        zoo.load(SMALL, zoo_dir=folder)
    message = str(info.value)
    assert str(path) in message and f"lmk.zoo build {SMALL}" in message
    assert "weights_only=False" not in message
    assert not marker.exists()                                   # nothing was run
    if kind == "global_os_system":
        assert "system" in message                               # the refused global is named


def test_empty_weights_file_names_the_file(small_zoo):
    folder, entries = small_zoo
    path = replace_weights(folder, entries, SMALL, lambda p: p.write_bytes(b""))
    with pytest.raises(ZooError, match="empty") as info:
        zoo.load(SMALL, zoo_dir=folder)
    assert str(path) in str(info.value)


def test_weights_path_that_is_a_folder_says_so(small_zoo):
    folder, entries = small_zoo
    (folder / "sub").mkdir()
    entries[SMALL]["file"] = "sub"
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=r"sub are a folder, not a file"):
        zoo.load(SMALL, zoo_dir=folder)


@pytest.mark.parametrize("field", ["sha256", "file", "recipe"])
def test_entry_without_a_field_names_the_entry_and_the_field(small_zoo, field):
    folder, entries = small_zoo
    del entries[SMALL][field]
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError) as info:
        zoo.load(SMALL, zoo_dir=folder)
    message = str(info.value)
    assert f"entry '{SMALL}'" in message and f"no field '{field}'" in message
    assert "do not fit" not in message and str(folder / store.MANIFEST) in message


def test_recipe_without_a_field_names_it_with_its_path(small_zoo):
    folder, entries = small_zoo
    del entries[SMALL]["recipe"]["model_args"]
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=rf"entry '{SMALL}' has no field 'recipe\.model_args'"):
        zoo.load(SMALL, zoo_dir=folder)


def test_entry_whose_method_has_no_metrics_is_refused(small_zoo):
    folder, entries = small_zoo
    entries[SMALL]["method"] = "softargmax9"
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=rf"entry '{SMALL}'.*'metrics' has no 'softargmax9' record"):
        store.names(zoo_dir=folder)


def test_entries_as_a_list_is_refused(small_zoo):
    folder, entries = small_zoo
    (folder / store.MANIFEST).write_text(json.dumps({"schema": store.SCHEMA, "entries": list(entries.values())}))
    with pytest.raises(ZooError, match=r"manifest.json: expected an object with an 'entries' object, got list"):
        zoo.load(SMALL, zoo_dir=folder)


def test_manifest_that_is_a_folder_is_an_error_not_an_empty_zoo(tmp_path):
    (tmp_path / store.MANIFEST).mkdir()
    for call in (lambda: store.names(zoo_dir=tmp_path), lambda: zoo.load(SMALL, zoo_dir=tmp_path),
                 lambda: zoo.verify(zoo_dir=tmp_path, log=lambda *a: None)):
        with pytest.raises(ZooError, match=re.escape(f"{tmp_path / store.MANIFEST} is not a file")):
            call()


def test_zoo_folder_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "no_such_zoo"
    with pytest.raises(ZooError, match=re.escape(f"zoo folder {missing} does not exist")):
        store.names(zoo_dir=missing)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ZooError, match="is not a folder"):
        zoo.load(SMALL, zoo_dir=tmp_path / "a_file")
    with pytest.raises(ZooError, match="empty path"):
        store.manifest("")


def test_entry_that_is_its_own_base_is_refused(small_zoo):
    folder, entries = small_zoo
    entries[SMALL].update(base=SMALL, base_sha256=entries[SMALL]["sha256"], stored=["refinement."])
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=rf"entry '{SMALL}' names itself as its base"):
        zoo.load(SMALL, zoo_dir=folder)


@pytest.mark.parametrize("length", [2, 3])
def test_bases_in_a_cycle_are_an_error_not_a_recursion(tmp_path, length):
    names = ["n02_1d_r025", "n02_1d_r025_s1", "n02_1d_r025_s2"][:length]
    folder, entries = copy_zoo(tmp_path / "zoo", names)
    for name, base in zip(names, names[1:] + names[:1]):
        entries[name].update(base=base, base_sha256=entries[base]["sha256"], stored=["head."])
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=r"bases form a cycle") as info:
        zoo.load(names[0], zoo_dir=folder)
    assert all(n in str(info.value) for n in names)


def test_unknown_name_suggests_close_ones(small_zoo):
    folder, _ = small_zoo
    with pytest.raises(ZooError, match=rf"no zoo model named 'n02_1d_r25'.*did you mean {SMALL}") as info:
        zoo.load("n02_1d_r25", zoo_dir=folder)
    assert str(folder / store.MANIFEST) in str(info.value)
    with pytest.raises(ZooError, match="did you mean"):
        zoo.predict("n02_1d_r25", np.zeros((8, 8, 3), np.uint8), box=[0, 0, 4, 4], zoo_dir=folder)


@pytest.mark.parametrize("file", ["../../x.pt", "../zoo_twin/n02_1d_r025.pt", "/etc/passwd", "link.pt"])
def test_weights_outside_the_zoo_are_refused(small_zoo, file):
    folder, entries = small_zoo
    twin = folder.parent / "zoo_twin"                     # a sibling folder whose name extends the zoo's
    twin.mkdir()
    shutil.copy(folder / entries[SMALL]["file"], twin / entries[SMALL]["file"])
    (folder / "link.pt").symlink_to(twin / entries[SMALL]["file"])
    entries[SMALL]["file"] = file
    store.write_manifest(entries, folder)
    with pytest.raises(ZooError, match=re.escape(f"entry '{SMALL}': file '{file}' lies outside the zoo")):
        zoo.load(SMALL, zoo_dir=folder)


# ---------------------------------------------------------------------------- B: where the zoo is
def test_every_function_reads_the_zoo_it_is_given(tmp_path, face, monkeypatch):
    """A name only the copy has: a function that read another zoo could not find it."""
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    folder, _ = copy_zoo(tmp_path / "zoo", (SMALL, "n03_ssss"), rename={SMALL: "copied_1d"})
    assert store.names("03", zoo_dir=folder) == ["n03_ssss"]
    assert zoo.names("02", zoo_dir=folder) == ["copied_1d"]
    assert zoo.entry("copied_1d", zoo_dir=folder)["name"] == "copied_1d"
    model, e = zoo.load("copied_1d", zoo_dir=folder)
    assert e["name"] == "copied_1d" and not model.training
    s = zoo.score_entry("copied_1d", n=8, seed=0, zoo_dir=folder)
    assert s["name"] == "copied_1d" and s["nmes"].shape == (8,) and 0 < s["nme"] < s["baseline_nme"]
    points = zoo.predict("copied_1d", face["image"], box=face["box"], zoo_dir=folder)
    assert points.shape == (68, 2) and np.isfinite(points).all()
    problems = zoo.verify(["copied_1d"], zoo_dir=folder, log=lambda *a: None)
    assert problems == ["copied_1d: no recipe of that name any more (remove the entry or rebuild)"]
    with pytest.raises(ZooError, match="no zoo model named 'copied_1d'"):
        zoo.load("copied_1d", zoo_dir=SHIPPED)


def test_the_environment_variable_is_honoured_and_the_argument_wins(tmp_path, monkeypatch):
    folder, _ = copy_zoo(tmp_path / "zoo", rename={SMALL: "copied_1d"})
    monkeypatch.setenv(store.ENV_VAR, str(folder))
    assert store.zoo_dir() == folder
    assert zoo.names() == ["copied_1d"]
    assert zoo.load("copied_1d")[1]["name"] == "copied_1d"
    assert "copied_1d" not in zoo.names(zoo_dir=SHIPPED)
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(ZooError, match=re.escape(f"zoo folder {tmp_path / 'elsewhere'} does not exist")):
        zoo.names()


def test_installed_without_a_checkout_says_how_to_point_at_a_zoo(tmp_path, monkeypatch):
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    monkeypatch.setattr(store, "_CHECKOUT_ZOO", tmp_path / "site-packages" / "data" / "zoo")
    for call in (store.zoo_dir, lambda: zoo.load("n03_sdsd"), lambda: zoo.names("03")):
        with pytest.raises(ZooError, match=r"installed without its source checkout.*zoo_dir=.*--zoo-dir.*LMK_ZOO_DIR"):
            call()
    monkeypatch.setenv(store.ENV_VAR, str(SHIPPED))          # the fix it names works
    assert "n03_sdsd" in zoo.names("03")


def _cli(*args, env_zoo=None):
    env = {k: v for k, v in os.environ.items() if k != store.ENV_VAR}
    if env_zoo is not None:
        env[store.ENV_VAR] = str(env_zoo)
    return subprocess.run([sys.executable, "-m", "lmk.zoo", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.heavy
def test_cli_verify_names_the_tampered_entry_and_reports_the_other(tmp_path):
    folder, entries = copy_zoo(tmp_path / "zoo", (SMALL, "n02_1d_r1"))
    replace_weights(folder, entries, "n02_1d_r1", lambda p: shutil.copy(SHIPPED / "n02_1d_r025_s1.pt", p))
    entries["n02_1d_r1"]["sha256"] = store.manifest(SHIPPED)["n02_1d_r1"]["sha256"]   # the manifest is not
    store.write_manifest(entries, folder)                                              # told: a replaced file
    out = _cli("verify", "--zoo-dir", folder, "--jobs", "1", SMALL, "n02_1d_r1", env_zoo=tmp_path / "nowhere")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert f"FAIL n02_1d_r1: zoo weights {folder.resolve() / 'n02_1d_r1.pt'} do not match the manifest's sha256" in out.stderr
    assert SMALL not in out.stderr                          # the good entry passes...
    assert any(line.startswith(f"{SMALL} ") and "NME" in line for line in out.stdout.splitlines())   # ...with its line
    assert "verify: 1 problem(s) in n02_1d_r1" in out.stdout


def test_cli_list_of_a_bad_manifest_prints_an_error_and_exits_2(tmp_path):
    (tmp_path / store.MANIFEST).write_text('{"schema": 3, "entries": {"x": ')
    out = _cli("list", "--zoo-dir", tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"error: zoo manifest {tmp_path / store.MANIFEST} cannot be read as JSON")
    assert "Traceback" not in out.stderr


def test_cli_commands_report_zoo_errors_without_a_traceback(tmp_path, capsys, small_zoo):
    folder, entries = small_zoo
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / store.MANIFEST).write_text("[1, 2]")
    del entries[SMALL]["metrics"]
    store.write_manifest(entries, folder)
    cases = [(["list", "--zoo-dir", str(folder)], f"entry '{SMALL}' has no field 'metrics'"),
             (["--zoo-dir", str(folder), "list"], f"entry '{SMALL}' has no field 'metrics'"),
             (["list", "--zoo-dir", str(tmp_path / "typo")], "does not exist"),
             (["verify", "--zoo-dir", str(bad), "--jobs", "1"], "expected an object with an 'entries' object"),
             (["migrate", "--zoo-dir", str(bad)], "expected an object with an 'entries' object"),
             (["migrate", "--zoo-dir", str(tmp_path / "typo")], "does not exist"),
             (["migrate", "--zoo-dir", str(tmp_path)], "does not exist: nothing to migrate")]
    for argv, message in cases:
        assert zoo.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)


def _as_schema_2(e: dict) -> dict:
    """A schema-3 entry as schema 2 wrote it: validation figures at the top, no test faces."""
    e = copy.deepcopy(e)
    v = e.pop("validation")
    del e["test"]
    for key in ("metrics", "baseline_nme", "task_metrics"):
        if key in v:
            e[key] = v.pop(key)
    e["validation"] = {"n": v["n"], "seed": v["seed"], "threshold": v["threshold"]}
    return e


def test_migrate_brings_schema_1_up_by_rescoring_and_refuses_an_unknown_schema(small_zoo, capsys):
    folder, entries = small_zoo
    path = folder / store.MANIFEST
    old = {"entries": {SMALL: _as_schema_2(entries[SMALL])}}      # schema 1: no "schema" field
    path.write_text(json.dumps(old))
    with pytest.raises(ZooError, match="schema 1, this lmk reads 3; migrate it"):
        zoo.load(SMALL, zoo_dir=folder)
    assert zoo.main(["migrate", "--zoo-dir", str(folder), "--jobs", "1"]) == 0
    assert "schema 1 -> 3" in capsys.readouterr().out
    migrated = zoo.load(SMALL, zoo_dir=folder)[1]
    assert migrated["sha256"] == entries[SMALL]["sha256"]
    m = entries[SMALL]["method"]                                  # rescored: the shipped test figures
    assert migrated["metrics"][m]["nme"] == pytest.approx(entries[SMALL]["metrics"][m]["nme"], abs=2e-4)
    assert migrated["validation"]["metrics"][m]["nme"] == pytest.approx(old["entries"][SMALL]["metrics"][m]["nme"],
                                                                        abs=2e-4)
    future = json.dumps({"schema": 4, "entries": {SMALL: entries[SMALL]}})
    path.write_text(future)
    assert zoo.main(["migrate", "--zoo-dir", str(folder)]) == 2
    assert "schema 4 is not one this lmk knows" in capsys.readouterr().err
    assert path.read_text() == future                             # not rewritten as schema 3


def test_schema_3_entries_name_their_test_and_validation_faces(small_zoo):
    folder, entries = small_zoo
    for key, field, value, message in (("test", "split", "val", "field 'test.split' is 'val', expected 'test'"),
                                       ("validation", "seed", None, "field 'validation.seed' is missing"),
                                       ("validation", "metrics", {}, "field 'validation.metrics' has no")):
        broken = copy.deepcopy(entries)
        broken[SMALL][key][field] = value
        store.write_manifest(broken, folder)
        with pytest.raises(ZooError, match=re.escape(message)):
            zoo.load(SMALL, zoo_dir=folder)


# ------------------------------------------------------------------------------------ C: predict
def test_yin_detector_predicts_one_image_and_a_tracker_points_to_lmk_track(face):
    points = zoo.predict("n06_yin_detector", face["image"], box=face["box"])
    assert points.shape == (68, 2) and np.isfinite(points).all()
    iod = np.linalg.norm(face["landmarks"][36] - face["landmarks"][45])
    assert np.linalg.norm(points - face["landmarks"], axis=1).mean() < 0.25 * iod
    with pytest.raises(ValueError, match=r"n06_yin_l03 .*lmk\.track"):
        zoo.predict("n06_yin_l03", face["image"], box=face["box"])


def test_atpn_predict_crops_with_the_recipe_margin(face):
    model, e = zoo.load("n06_atpn")
    assert e["recipe"]["data"]["margin"] == 0.25
    points = zoo.predict("n06_atpn", face["image"], box=face["box"])

    def by_hand(margin):
        matrix = crop_matrix(np.asarray(face["box"], np.float64), 64, margin=margin)
        crop = normalize_image(warp_image(face["image"], matrix, 64))[None]
        with torch.no_grad():
            out = model(crop)["landmarks"][0].double().numpy()
        return to_original(out, matrix)

    np.testing.assert_allclose(points, by_hand(0.25), atol=1e-6)
    assert np.abs(points - by_hand(0.2)).max() > 1.0            # the margin matters: the check can fail


IMAGE = SynthFaces(1, size=128, seed=3)[0]["image"]
BAD_INPUTS = [
    ("empty image", np.zeros((0, 0, 3), np.uint8), None, r"image is empty"),
    ("empty rows", np.zeros((0, 16, 3), np.uint8), None, r"image is empty"),
    ("grayscale (H, W)", IMAGE[..., 0], None, r"image must be RGB .*grayscale"),
    ("grayscale (H, W, 1)", IMAGE[..., :1], None, r"image must be RGB .*grayscale"),
    ("RGBA", np.dstack([IMAGE, IMAGE[..., :1]]), None, r"image must be RGB .*\(128, 128, 4\)"),
    ("float image", IMAGE.astype(np.float32) / 255, None, r"image must be uint8 .*float32"),
    ("3-value box", IMAGE, [10.0, 10.0, 90.0], r"box must have shape \(4,\), got \(3,\)"),
    ("inf in box", IMAGE, [10.0, 10.0, np.inf, 90.0], r"box must be finite"),
    ("NaN in box", IMAGE, [10.0, np.nan, 90.0, 90.0], r"box must be finite"),
    ("x1 == x0", IMAGE, [50.0, 10.0, 50.0, 90.0], r"box must be \(x0, y0, x1, y1\) with x1 > x0"),
    ("x1 < x0", IMAGE, [90.0, 10.0, 10.0, 90.0], r"box must be \(x0, y0, x1, y1\) with x1 > x0"),
    ("y1 < y0", IMAGE, [10.0, 90.0, 90.0, 10.0], r"box must be \(x0, y0, x1, y1\) with x1 > x0 and y1 > y0"),
    ("text box", IMAGE, "10 10 90 90", r"box must be numbers"),
    ("box too large to invert", IMAGE, [-1e300, -1e300, 1e300, 1e300], r"box \[.*\] gives no usable crop"),
]


@pytest.mark.parametrize("image, box, message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_predict_names_a_bad_image_or_box(face, image, box, message):
    with pytest.raises(ValueError, match=message):
        zoo.predict("n06_atpn", image, box=face["box"] if box is None else box)


def test_predict_names_five_points_that_give_no_alignment(face):
    with pytest.raises(ValueError, match=r"five_points \[\[0\.0, 0\.0\].* gives no usable crop"):
        zoo.predict("n03_sdsd", face["image"], five_points=np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"five_points must have shape \(5, 2\)"):
        zoo.predict("n03_sdsd", face["image"], five_points=face["five_points"][:4])
