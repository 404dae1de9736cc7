"""The app in a real browser: `streamlit run app.py` driven by headless Chromium through Selenium.

What AppTest cannot show: the pages as a browser draws them, the session kept across page links,
the Train page's live panel polling a worker process, a reload re-attaching from the URL, the
adapter really downloaded, and the app surviving a worker killed by hand. Screenshots of every
page go to $LIFT_SCREENSHOTS (kept by CI when set) or the test's tmp folder; the path is printed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from browser_helpers import (StreamlitServer, choose_radio, choose_select, click_button, click_link, main_text,
                             make_driver, missing_browser, process_gone, query_param, screenshot, set_checkbox,
                             set_number, settle, train_step, wait_alert, wait_css, wait_download, wait_text,
                             wait_until)
from lift_core import jobs
from lift_core.bundle import read_manifest
from lift_core.store import ACTIVE, RunStore

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(missing_browser() is not None, reason=f"browser test skipped: {missing_browser()}"),
]

TINY_LABEL = "tiny"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app server for the module, with its own empty workspace; its workers are stopped after."""
    workspace = tmp_path_factory.mktemp("browser-workspace")
    app = StreamlitServer(workspace, workspace / "streamlit.log")
    try:
        app.wait_ready()
        yield app
    finally:
        store = RunStore(workspace)
        for run in store.list_runs():
            if run["status"] in ACTIVE:
                jobs.stop(run["id"], store, grace_s=2)
        app.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ["LIFT_SCREENSHOTS"]) if os.environ.get("LIFT_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = make_driver(downloads)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, server: StreamlitServer, path: str, title: str) -> None:
    """Open a page by its URL (a new browser session) and wait until Streamlit has drawn its title."""
    driver.get(f"{server.url}/{path}")
    wait_until(driver, lambda d: d.execute_script(
        "const h = document.querySelector('[data-testid=\"stMain\"] h1'); return h && h.innerText.trim();")
        == title, 90, f"the {title} page did not load at /{path}:\n{server.log_tail()}")


def start_tiny_run(driver, epochs: int) -> str:
    """On the Train page: pick the tiny model, set the epochs, Start; the run's id from the URL."""
    choose_radio(driver, "Model", TINY_LABEL)
    settle(driver)
    set_checkbox(driver, "Automatic epochs", False)
    settle(driver)
    set_number(driver, "Epochs", epochs)
    settle(driver)
    click_button(driver, "Start training")
    run_id = wait_until(driver, lambda d: query_param(d, "run"), 60, "Start did not put the run in the URL")
    wait_text(driver, f"Run {run_id}")
    return run_id


def wait_training(driver, timeout_s: float = 90) -> int:
    """Wait until the worker has made optimizer steps; the step shown."""
    return wait_until(driver, lambda d: train_step(d) > 0 and train_step(d), timeout_s,
                      f"no training step shown:\n{main_text(driver)[-1500:]}")


def test_main_path_data_prompts_train_results_predict(server, browser, shots):
    d = browser
    open_page(d, server, "", "LIFT Studio")
    wait_text(d, "Five steps")
    settle(d)
    screenshot(d, shots, "00_home")
    click_link(d, "1. Data")
    wait_until(d, lambda d_: d_.current_url.endswith("/Data"), 30, "Home's first step did not open Data")
    choose_select(d, "Built-in data set", "iris")
    wait_css(d, ".js-plotly-plot")  # the target's class chart
    wait_text(d, "Training rows")
    settle(d)
    screenshot(d, shots, "01_data")

    click_button(d, "Next: prompts")  # switch_page keeps the session (and its draft)
    wait_until(d, lambda d_: d_.current_url.endswith("/Prompts"), 30, "Next did not open Prompts")
    wait_text(d, "Preview: the first training rows as the model reads them")
    preview = wait_css(d, "[data-testid='stCode']")
    assert "sepal length" in preview.text and "species" in preview.text, preview.text
    wait_css(d, ".js-plotly-plot")  # prompt lengths
    settle(d)
    screenshot(d, shots, "02_prompts")

    click_button(d, "Next: train")
    wait_until(d, lambda d_: "/Train" in d_.current_url, 30, "Next did not open Train")
    wait_text(d, "Data: iris")
    run_id = start_tiny_run(d, epochs=1)
    wait_css(d, "[data-testid='stProgress']")
    screenshot(d, shots, "03_train_started")
    wait_alert(d, "Finished", timeout_s=150)
    assert RunStore(server.workspace).get(run_id)["status"] == "succeeded"
    wait_css(d, "[data-testid='stProgress']")
    assert train_step(d) > 0
    settle(d)
    screenshot(d, shots, "04_train_finished")

    click_link(d, "See the results")
    wait_until(d, lambda d_: "/Results" in d_.current_url and query_param(d_, "run") == run_id, 30,
               "the results link did not open this run's results")
    wait_css(d, ".js-plotly-plot", timeout_s=90)
    wait_text(d, "LIFT against the baselines")
    settle(d)
    assert "Traceback" not in main_text(d)
    screenshot(d, shots, "05_results")

    click_link(d, "Predict", where="stSidebarNav")
    wait_until(d, lambda d_: "/Predict" in d_.current_url, 30, "the sidebar did not open Predict")
    wait_text(d, "Base model")
    settle(d)
    assert query_param(d, "run") == run_id  # the only finished run is the one shown
    screenshot(d, shots, "06_predict")
    click_button(d, "Download adapter.zip")
    adapter = wait_download(d.downloads, f"lift-adapter-{run_id}.zip")
    manifest = read_manifest(adapter)
    assert manifest["target"] == "species" and manifest["task"] == "classification"
    assert manifest["features"] == ["sepal length", "sepal width", "petal length", "petal width"]
    assert sorted(manifest["classes"]) == ["setosa", "versicolor", "virginica"]


def test_reload_reattaches_to_the_run_and_stop_ends_its_process(server, browser, shots):
    d = browser
    store = RunStore(server.workspace)
    open_page(d, server, "Train", "Train")
    run_id = start_tiny_run(d, epochs=30)
    before = wait_training(d)

    d.refresh()
    wait_text(d, f"Run {run_id}", timeout_s=90)
    assert query_param(d, "run") == run_id
    wait_until(d, lambda d_: train_step(d_) > before, 60,
               f"the step stayed at {before} after the reload:\n{main_text(d)[-1500:]}")
    assert query_param(d, "run") == run_id
    screenshot(d, shots, "07_train_reloaded")

    pid = store.get(run_id)["pid"]
    assert pid and not process_gone(pid)
    click_button(d, "Stop")
    wait_alert(d, "Cancelled", timeout_s=30)
    assert store.get(run_id)["status"] == "cancelled"
    wait_until(d, lambda d_: process_gone(pid), 15, f"the worker {pid} still runs after Stop")
    settle(d)
    screenshot(d, shots, "08_train_cancelled")


def test_a_killed_worker_shows_failed_and_the_app_still_answers(server, browser, shots):
    d = browser
    store = RunStore(server.workspace)
    open_page(d, server, "Train", "Train")
    run_id = start_tiny_run(d, epochs=30)
    wait_training(d)

    pid = store.get(run_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    message = wait_alert(d, "Failed", timeout_s=20)
    assert time.monotonic() - killed < 20
    assert f"pid {pid}" in message, message
    assert store.get(run_id)["status"] == "failed"
    settle(d)
    screenshot(d, shots, "09_train_failed")

    assert server.healthy()
    click_link(d, "Runs", where="stSidebarNav")
    wait_until(d, lambda d_: "/Runs" in d_.current_url, 30, "the sidebar did not open Runs")
    wait_css(d, "[data-testid='stDataFrame']")
    settle(d)
    shown = d.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"stSelectbox\"] input')].map(i => i.value);")
    assert any("failed" in value for value in shown), shown
    screenshot(d, shots, "10_runs")
