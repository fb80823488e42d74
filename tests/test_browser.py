"""Lab 01 in a real browser: JupyterLab in headless Chromium runs the whole notebook without an
error, renders the explorer's ipywidgets, and the explorer's figure follows its slider.

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``, which
``.ci/run`` does as root) and ``selenium`` (dev extras); without them the test skips. Nothing is
downloaded while it runs: the server listens on 127.0.0.1 only, behind a token, with its own
runtime, config and data folders, and is stopped at the end with its kernels.
"""

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from matplotlib import image as mpimg

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "solutions" / "01_kspace_undersampling.ipynb"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
RUN_ALL_SECONDS = 300  # the notebook takes about 30 s on 2 idle cores
SLIDER_LABEL = "R"  # the explorer's acceleration slider
# JupyterLab settings of the test's own config folder: every cell attached to the page (so the
# widgets render without scrolling), no update check or news fetched from the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False,
                                                    "fetchNews": "false"},
}

pytestmark = [pytest.mark.notebooks, pytest.mark.slow, pytest.mark.timeout(600)]

# the notebook panel's state, read from JupyterLab's own models (window.jupyterapp)
NOTEBOOK_STATE_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.sessionContext || !panel.content) return {ready: false};
const session = panel.sessionContext.session;
const kernel = session && session.kernel;
const state = {ready: panel.context.isReady && !!kernel, status: kernel ? kernel.status : null,
               pending: 0, errors: [], cells: panel.content.widgets.length};
panel.content.widgets.forEach((cell, i) => {
  if (cell.model.type !== "code") return;
  if (cell.model.executionCount === null) state.pending += 1;
  for (const out of cell.model.outputs.toJSON()) {
    if (out.output_type === "error") state.errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
  }
});
return state;
"""


def _browser_and_driver() -> tuple[str, str]:
    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no Chromium and chromedriver on the PATH: install them (Debian: apt-get "
                    "install chromium chromium-driver, as .ci/run does when it runs as root)")
    return browser, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


def _api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read() or "null")


@contextmanager
def _jupyter_lab(notebook_dir: Path, home: Path) -> Iterator[str]:
    """A JupyterLab server on a free 127.0.0.1 port serving ``notebook_dir``; yields its base
    URL (token included). Its kernels and the server are stopped on exit."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ}
    for name in ("runtime", "config", "data", "ipython"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), IPYTHONDIR=str(home / "ipython"),
               JUPYTER_PLATFORM_DIRS="0")
    for plugin, values in LAB_SETTINGS.items():
        path = home / "config" / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    log = (home / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={notebook_dir}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI runs as root
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited: {(home / 'jupyter.log').read_text()[-3000:]}")
        try:
            return bool(_api(f"{base}/api/status?token={token}"))
        except OSError:
            return False

    try:
        _wait_for(up, 60, "JupyterLab to answer")
        yield f"{base}/lab/tree/{{path}}?token={token}"
    finally:
        try:
            for kernel in _api(f"{base}/api/kernels?token={token}") or []:
                request = urllib.request.Request(
                    f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
                urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass  # the server is gone already: its kernels went with it
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


@contextmanager
def _headless_chromium(browser: str, driver: str, home: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium drives the browser: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1800", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking",
                     f"--user-data-dir={home / 'chromium'}"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=driver,
                                      log_output=str(home / "chromedriver.log"))
    chrome = webdriver.Chrome(options=options, service=service)
    try:
        yield chrome
    finally:
        chrome.quit()


def _pixels(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")[..., :3]


def test_lab01_runs_in_jupyterlab_and_its_explorer_follows_the_slider(tmp_path):
    browser, driver = _browser_and_driver()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    lab = nbformat.read(LAB, as_version=4)
    for cell in lab.cells:  # a fresh run: no stored output may pass for the browser's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    lab.metadata.pop("widgets", None)
    nbformat.write(lab, notebooks / LAB.name)

    with _jupyter_lab(notebooks, tmp_path / "jupyter") as url, \
            _headless_chromium(browser, driver, tmp_path) as chrome:
        chrome.get(url.format(path=LAB.name))
        state = lambda: chrome.execute_script(NOTEBOOK_STATE_JS)  # noqa: E731
        _wait_for(lambda: state()["ready"] and state()["status"] == "idle", 120,
                  "the notebook to open with an idle kernel")
        assert state()["pending"] == sum(c.cell_type == "code" for c in lab.cells)
        chrome.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        done = _wait_for(lambda: (s := state())["status"] == "idle"
                         and (s["pending"] == 0 or s["errors"]) and s, RUN_ALL_SECONDS,
                         "Run All to finish")
        chrome.save_screenshot(str(tmp_path / "page_after_run_all.png"))
        assert done["errors"] == [], f"cells with an error: {done['errors']}"

        explorers = chrome.find_elements(By.CSS_SELECTOR, ".widget-interact")
        assert len(explorers) == 1, "the explorer's widget is not rendered"
        explorer = explorers[0]
        chrome.execute_script("arguments[0].scrollIntoView({block: 'start'})", explorer)
        figure = lambda: explorer.find_elements(By.CSS_SELECTOR, ".widget-output img")  # noqa: E731
        first = _wait_for(figure, 60, "the explorer's figure")[0]
        _wait_for(lambda: chrome.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", first), 30,
            "the explorer's figure to load")
        output = explorer.find_element(By.CSS_SELECTOR, ".widget-output")
        before = output.screenshot_as_png
        (tmp_path / "explorer_before.png").write_bytes(before)
        assert _pixels(before).std() > 0.05, "the explorer's output is blank"
        source_before = first.get_attribute("src")

        sliders = [s for s in explorer.find_elements(By.CSS_SELECTOR, ".widget-slider")
                   if s.find_element(By.CSS_SELECTOR, ".widget-label").text == SLIDER_LABEL]
        assert len(sliders) == 1, f"no slider labelled {SLIDER_LABEL!r} in the explorer"
        readout = sliders[0].find_element(By.CSS_SELECTOR, ".widget-readout")
        value_before = readout.text
        handle = sliders[0].find_element(By.CSS_SELECTOR, ".noUi-handle")
        chrome.execute_script("arguments[0].focus()", handle)
        handle.send_keys(Keys.ARROW_RIGHT)  # one step: one update of the figure
        _wait_for(lambda: readout.text != value_before, 10, "the slider to move")
        seen: list[str] = []

        def new_figure_settled() -> bool:
            """A new, loaded figure, the same as one poll ago, with the kernel idle."""
            images = figure()
            source = images[0].get_attribute("src") if images else None
            settled = (source not in (None, source_before) and seen[-1:] == [source]
                       and state()["status"] == "idle" and chrome.execute_script(
                           "return arguments[0].complete && arguments[0].naturalWidth > 0",
                           images[0]))
            seen.append(source)
            return settled

        _wait_for(new_figure_settled, 60, f"the figure to follow {SLIDER_LABEL} "
                  f"({value_before} -> {readout.text})")
        after = output.screenshot_as_png
        (tmp_path / "explorer_after.png").write_bytes(after)
        chrome.save_screenshot(str(tmp_path / "page_after_slider.png"))
        a, b = _pixels(before), _pixels(after)
        assert a.shape == b.shape, "the explorer's output changed size"
        changed = np.abs(a - b).max(axis=-1) > 0.1
        assert changed.mean() > 0.01, f"the figure barely changed ({changed.mean():.2%})"
        assert "Traceback" not in output.text and "Error" not in output.text, output.text
        assert state()["errors"] == []
