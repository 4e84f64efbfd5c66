"""Open course notebooks in JupyterLab in headless Chromium, as a student would, and report.

For each notebook (02-06 by default) this script:

1. opens it (from a scratch copy, unless ``--in-place``) and reports whether JupyterLab marks
   it modified or rewrites it on disk before anything runs (autosave every few seconds);
2. runs all cells and reports error outputs, the run time and the longest silence of a cell
   (seconds without new output while it runs);
3. moves every widget (sliders dragged, drop-downs stepped) and reports whether its figure was
   redrawn, whether the figure changed its pixel size or moved sideways, and any error;
4. reports every figure shown narrower than its PNG (JupyterLab shrinks images wider than the
   output area) with the scale it was shown at.

It is a manual check (not run by CI): it needs Chromium and its driver (Debian:
``apt-get install chromium chromium-driver``) and ``pip install -r tools/requirements.txt``.

    python tools/browser_check.py                  # notebooks 02-06, scratch copies
    python tools/browser_check.py 04 --in-place    # the committed file itself (it may be rewritten)

Exit status 1 when a problem was found.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lmk.viz import style  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
AUTOSAVE_S = 3          # JupyterLab's autosave interval during the check (its default is 120 s)

# JupyterLab's application object (exposed with --LabApp.expose_app_in_browser) and the notebook shown.
_PANEL = ("const app = window.jupyterapp;"
          "const panel = app && app.shell ? app.shell.currentWidget : null;")

_STATE_JS = _PANEL + """
const session = panel && panel.sessionContext && panel.sessionContext.session;
const kernel = session && session.kernel;
const cells = [];
if (panel && panel.content && panel.content.model) {
  for (const cell of panel.content.model.cells) { cells.push(cell.toJSON()); }
}
return {kernel: kernel ? kernel.status : null, cells: cells,
        dirty: panel && panel.context ? panel.context.model.dirty : null,
        running: Array.from(document.querySelectorAll('.jp-Cell')).findIndex(
                   c => (c.querySelector('.jp-InputPrompt') || {textContent: ''}).textContent.includes('*')),
        busy: Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => p.textContent.includes('*'))};
"""

_IMAGES_JS = """
const cell = arguments[0];
return Array.from(cell.querySelectorAll('.jp-OutputArea-output img')).map(img => {
  const r = img.getBoundingClientRect();
  return {natural: [img.naturalWidth, img.naturalHeight], shown: [r.width, r.height], left: r.left,
          src: img.src.length + ':' + img.src.slice(-64)};
});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root_dir: Path, settings_dir: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab on ``root_dir``, the app object exposed, autosave every ``AUTOSAVE_S`` seconds."""
    plugin = settings_dir / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(json.dumps({"autosave": True, "autosaveInterval": AUTOSAVE_S}))
    news = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
           "JUPYTERLAB_WORKSPACES_DIR": str(settings_dir / "workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
           "--LabApp.expose_app_in_browser=True", "--allow-root"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("JupyterLab did not start within 60 s")


def browser(width: int, height: int) -> webdriver.Chrome:
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary:
        options.binary_location = binary
    driver = shutil.which("chromedriver")
    return webdriver.Chrome(options=options, service=Service(driver) if driver else None)


def wait_for(driver, predicate, timeout: float, step: float = 0.5, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def state(driver) -> dict:
    return driver.execute_script(_STATE_JS)


def wait_idle(driver, timeout: float, settle: float = 1.0) -> dict:
    """Wait until the kernel is idle and no cell waits to run, ``settle`` seconds in a row."""
    end = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < end:
        s = state(driver)
        calm = s["kernel"] == "idle" and not s["busy"]
        calm_since = (calm_since or time.monotonic()) if calm else None
        if calm_since and time.monotonic() - calm_since >= settle:
            return s
        time.sleep(0.25)
    raise TimeoutError(f"the kernel was still busy after {timeout:.0f} s")


def errors_in(cells) -> list[str]:
    found = []
    for k, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {k}: {out.get('ename')}: {str(out.get('evalue'))[:200]}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                if "Traceback" in text or "Error" in text:
                    found.append(f"cell {k}: stderr: {text.strip().splitlines()[-1][:200]}")
    return found


def run_all(driver, timeout: float) -> tuple[float, float, int]:
    """Run every cell; returns (seconds, the longest time a running cell showed no new output,
    that cell's index in the notebook)."""
    start = time.monotonic()
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    time.sleep(1.0)
    last_change, last_outputs, last_cell = time.monotonic(), None, -1
    longest, longest_cell = 0.0, -1
    end = start + timeout
    while time.monotonic() < end:
        s = state(driver)
        outputs = json.dumps([c.get("outputs", []) for c in s["cells"]])
        now = time.monotonic()
        if outputs != last_outputs or s["running"] != last_cell:
            if now - last_change > longest and last_cell >= 0:
                longest, longest_cell = now - last_change, last_cell
            last_change, last_outputs, last_cell = now, outputs, s["running"]
        if s["kernel"] == "idle" and not s["busy"]:
            return now - start, longest, longest_cell
        time.sleep(0.5)
    raise TimeoutError(f"run all did not finish within {timeout:.0f} s")


def move_widgets(driver, timeout: float) -> list[str]:
    """Move every slider and drop-down once; report redraws, size changes and sideways jumps."""
    report, moved = [], 0
    cells = driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell")
    for k, cell in enumerate(cells):
        controls = cell.find_elements(By.CSS_SELECTOR, ".noUi-handle, .widget-dropdown select")
        for control in controls:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", control)
            label = control.get_attribute("aria-label") or ""
            try:
                description = control.find_element(
                    By.XPATH, "./ancestor::div[contains(@class,'widget-inline-hbox')][1]"
                              "//label").text
            except Exception:   # noqa: BLE001 - a control without a description
                description = label
            before = driver.execute_script(_IMAGES_JS, cell)
            if control.tag_name == "select":
                options = Select(control)
                now = [o.get_attribute("value") for o in options.options].index(
                    options.first_selected_option.get_attribute("value"))
                options.select_by_index((now + 1) % len(options.options))
            else:
                ActionChains(driver).click_and_hold(control).move_by_offset(60, 0).release().perform()
            time.sleep(0.5)
            wait_idle(driver, timeout)
            time.sleep(0.5)
            after = driver.execute_script(_IMAGES_JS, cell)
            moved += 1
            name = f"cell {k} widget '{description}'"
            if not before or not after:
                report.append(f"{name}: no figure found")
                continue
            b, a = before[-1], after[-1]
            if a["src"] == b["src"]:
                report.append(f"{name}: figure not redrawn")
            if a["natural"] != b["natural"]:
                report.append(f"{name}: figure size changed {b['natural']} -> {a['natural']} px")
            if abs(a["left"] - b["left"]) > 0.5:
                report.append(f"{name}: figure moved sideways by {a['left'] - b['left']:+.0f} px")
    print(f"  moved {moved} widget controls")
    return report


def shrunk_figures(driver) -> tuple[list[str], list[str]]:
    """Figures shown narrower than their PNG: (notes, problems where the course's smallest
    text, ``style.SMALLEST`` points at ``style.DPI``, ends up under ``style.MIN_TEXT_PX``)."""
    shown = driver.execute_script("""
      return Array.from(document.querySelectorAll('.jp-OutputArea-output img')).map(img =>
        [img.naturalWidth, img.getBoundingClientRect().width]);""")
    smallest_px = style.SMALLEST * style.DPI / 72
    notes, problems = [], []
    for w, s in shown:
        if w and s < w - 1:
            text = f"a {w} px figure shown {s:.0f} px wide ({100 * s / w:.0f} %)"
            if smallest_px * s / w < style.MIN_TEXT_PX:
                problems.append(f"{text}: its smallest text is under {style.MIN_TEXT_PX} px")
            else:
                notes.append(text)
    return notes, problems


def check(driver, base: str, path: Path, args) -> list[str]:
    problems, name = [], path.name
    original = path.read_bytes()
    driver.get(f"{base}/lab/tree/{name}?reset&token={args.token}")
    wait_for(driver, lambda: state(driver)["kernel"] == "idle", 120, what="the kernel")
    time.sleep(2 * AUTOSAVE_S + 2)              # long enough for autosave to write a changed model
    s = state(driver)
    if s["dirty"]:
        problems.append("marked modified after opening (before running anything)")
    if path.read_bytes() != original:
        problems.append("rewritten on disk after opening (before running anything)")
    seconds, silence, cell = run_all(driver, args.timeout)
    print(f"  ran in {seconds:.0f} s; longest silence of a running cell {silence:.0f} s (cell {cell})")
    if silence > args.max_silence:
        problems.append(f"cell {cell} ran {silence:.0f} s without new output")
    problems += errors_in(state(driver)["cells"])
    notes, shrunk = shrunk_figures(driver)
    problems += shrunk
    for note in notes:
        print(f"  note: {note}")
    problems += move_widgets(driver, args.timeout)
    problems += errors_in(state(driver)["cells"])
    width = driver.execute_script(
        "const a = document.querySelector('.jp-OutputArea-output'); return a ? a.clientWidth : null;")
    print(f"  output area {width} px wide")
    return sorted(set(problems), key=problems.index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=["02", "03", "04", "05", "06"],
                        help="notebook numbers (default: 02 03 04 05 06)")
    parser.add_argument("--in-place", action="store_true",
                        help="open the committed notebooks themselves (autosave may rewrite them)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for run-all (default 900)")
    parser.add_argument("--max-silence", type=float, default=20,
                        help="longest acceptable time without output from a running cell (s)")
    parser.add_argument("--window", default="1400x1000", help="browser window WIDTHxHEIGHT")
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOKS,
                        help="where the notebooks are (default: the course's notebooks/)")
    args = parser.parse_args(argv)
    args.token = secrets.token_hex(16)
    paths = []
    for number in args.notebooks:
        found = sorted(args.notebook_dir.glob(f"{number}_*.ipynb"))
        if not found:
            parser.error(f"no notebook {number}_*.ipynb in {args.notebook_dir}")
        paths.append(found[0])
    width, height = (int(v) for v in args.window.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="browser_check_") as scratch:
        scratch = Path(scratch)
        if args.in_place:
            root = args.notebook_dir
        else:
            root = scratch / "notebooks"
            root.mkdir()
            for p in paths:
                shutil.copy2(p, root / p.name)
        port = free_port()
        lab = start_lab(root, scratch / "settings", port, args.token)
        driver = browser(width, height)
        failed = False
        try:
            for p in paths:
                print(f"{p.name}:")
                try:
                    problems = check(driver, f"http://127.0.0.1:{port}", root / p.name, args)
                except Exception as exc:    # noqa: BLE001 - report and go on to the next notebook
                    message = getattr(exc, "msg", None) or str(exc)
                    problems = [f"check failed: {type(exc).__name__}: {message.splitlines()[0]}"]
                for problem in problems:
                    print(f"  PROBLEM: {problem}")
                if not problems:
                    print("  ok")
                failed |= bool(problems)
                driver.execute_script("window.jupyterapp.commands.execute('kernelmenu:shutdown');")
                driver.execute_script("window.jupyterapp.commands.execute('docmanager:close-all-files');")
                time.sleep(1)
        finally:
            driver.quit()
            lab.terminate()
            lab.wait(timeout=30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
