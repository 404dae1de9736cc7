"""The harness of the real-browser test: the app served by `streamlit run`, driven by headless Chromium.

Streamlit draws its pages in the browser after the page has loaded, over a websocket, and redraws
parts of them on every rerun, so every helper here waits for what it needs to see (explicit waits,
stale elements retried) instead of sleeping. Chromium is Debian's (`apt-get install chromium
chromium-driver`); Selenium is told never to fetch a driver of its own (SE_OFFLINE), and the browser
is pointed only at the local server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync")
WIDTH, HEIGHT, MAX_SHOT_HEIGHT = 1400, 1600, 6000

T = TypeVar("T")


def missing_browser() -> str | None:
    """Why the browser test cannot run here (None when it can): said in the skip reason."""
    lacking = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if lacking:
        return (f"{' and '.join(lacking)} missing: run `make test` as root (it installs Debian's chromium and "
                "chromium-driver) or `apt-get install -y chromium chromium-driver`")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run app.py` on a free local port, with its own workspace (LIFT_HOME)."""

    def __init__(self, workspace: Path, log_path: Path) -> None:
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, LIFT_HOME=str(workspace), PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def healthy(self) -> bool:
        """Whether the server answers its health check right now."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as response:
                return response.status == 200 and response.read().strip() == b"ok"
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.5)
        raise TimeoutError(f"streamlit did not answer on {self.url} within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """End the server's process group (training workers live in their own groups: stop them first)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def make_driver(download_dir: Path):
    """Headless Debian Chromium with a fresh profile; downloads land in download_dir without asking."""
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a driver or a browser (no internet here)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='lift-chromium-')}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def wait_until(driver, what: Callable[[object], T], timeout_s: float, message: str) -> T:
    """Wait until what(driver) is truthy; elements that Streamlit redraws meanwhile are looked up again."""
    from selenium.common.exceptions import (ElementClickInterceptedException, NoSuchElementException,
                                            StaleElementReferenceException)
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException)).until(
        what, message)


def main_text(driver) -> str:
    """The visible text of the page's main area (not the sidebar)."""
    return driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]'); return m ? m.innerText : '';")


def wait_text(driver, text: str, timeout_s: float = 60) -> None:
    wait_until(driver, lambda d: text in main_text(d), timeout_s,
               f"{text!r} did not appear; the page shows:\n{main_text(driver)[-1500:]}")


def wait_alert(driver, starts: str, timeout_s: float = 60) -> str:
    """The text of the first alert box (st.info/success/warning/error) that starts with `starts`."""
    def alert(d) -> str | None:
        return d.execute_script(
            "for (const a of document.querySelectorAll('[data-testid=\"stMain\"] [data-testid=\"stAlert\"]'))"
            "  if (a.innerText.trim().startsWith(arguments[0])) return a.innerText.trim();"
            "return null;", starts)

    return wait_until(driver, alert, timeout_s,
                      f"no message starting {starts!r}; the page shows:\n{main_text(driver)[-1500:]}")


def wait_css(driver, css: str, timeout_s: float = 60):
    """The first visible element matching css."""
    from selenium.webdriver.common.by import By

    def visible(d):
        return next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)

    return wait_until(driver, visible, timeout_s, f"no visible {css!r}; the page shows:\n{main_text(driver)[-1500:]}")


def settle(driver, timeout_s: float = 60) -> None:
    """Wait for Streamlit's rerun to end: the 'running' indicator gone and no stale (faded) element left."""
    def idle(d) -> bool:
        return d.execute_script(
            "return !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
            "!document.querySelector('[data-stale=\"true\"]') && "
            "!!document.querySelector('[data-testid=\"stMain\"] h1');")

    wait_until(driver, idle, timeout_s, "the app kept running")


def widget(driver, testid: str, label: str, timeout_s: float = 60):
    """The widget of one kind (data-testid) whose label is exactly label."""
    from selenium.webdriver.common.by import By

    def find(d):
        for w in d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
            labels = w.find_elements(By.CSS_SELECTOR, '[data-testid="stWidgetLabel"]')
            if labels and labels[0].text.strip() == label and w.is_displayed():
                return w
        return None

    return wait_until(driver, find, timeout_s, f"no {testid} labelled {label!r}")


def click_button(driver, label: str, timeout_s: float = 60) -> None:
    """Click the enabled button (plain or download) whose text is label."""
    from selenium.webdriver.common.by import By

    def click(d) -> bool:
        for b in d.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] button"):
            if b.text.strip() == label and b.is_displayed() and b.is_enabled():
                d.execute_script("arguments[0].scrollIntoView({block: 'center'});", b)
                b.click()
                return True
        return False

    wait_until(driver, click, timeout_s, f"no enabled button {label!r}")


def click_link(driver, text: str, timeout_s: float = 60, where: str = "stMain") -> None:
    """Click a page link (in the main area or the sidebar: where='stSidebarNav') containing text."""
    from selenium.webdriver.common.by import By

    def click(d) -> bool:
        for a in d.find_elements(By.CSS_SELECTOR, f"[data-testid='{where}'] a"):
            if text in a.text and a.is_displayed():
                d.execute_script("arguments[0].scrollIntoView({block: 'center'});", a)
                a.click()
                return True
        return False

    wait_until(driver, click, timeout_s, f"no link {text!r} in {where}")


def choose_radio(driver, label: str, option_starts: str) -> None:
    """Pick the option of radio `label` whose text starts with option_starts."""
    from selenium.webdriver.common.by import By

    group = widget(driver, "stRadio", label)
    option = next(o for o in group.find_elements(By.CSS_SELECTOR, "label")
                  if o.text.strip().startswith(option_starts))
    option.click()
    wait_until(driver, lambda d: next(
        o for o in widget(d, "stRadio", label).find_elements(By.CSS_SELECTOR, "input[type=radio]")
        if o.find_element(By.XPATH, "./ancestor::label").text.strip().startswith(option_starts)).is_selected(),
        30, f"radio {label!r} did not take {option_starts!r}")


def choose_select(driver, label: str, option: str) -> None:
    """Pick option in selectbox `label` the way a user does: open it, click the option."""
    from selenium.webdriver.common.by import By

    box = widget(driver, "stSelectbox", label)
    box.find_element(By.CSS_SELECTOR, "input").click()

    def pick(d) -> bool:
        for o in d.find_elements(By.CSS_SELECTOR, "[role='option']"):
            if o.text.strip() == option and o.is_displayed():
                o.click()
                return True
        return False

    wait_until(driver, pick, 30, f"selectbox {label!r} has no option {option!r}")
    wait_until(driver, lambda d: widget(d, "stSelectbox", label).find_element(
        By.CSS_SELECTOR, "input").get_attribute("value") == option, 30, f"selectbox {label!r} did not take {option!r}")


def set_number(driver, label: str, value: int | float) -> None:
    """Type a value into number input `label` and commit it with Enter, as a user does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = widget(driver, "stNumberInput", label).find_element(By.CSS_SELECTOR, "input")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.ENTER)
    wait_until(driver, lambda d: float(widget(d, "stNumberInput", label).find_element(
        By.CSS_SELECTOR, "input").get_attribute("value")) == float(value), 30,
        f"number input {label!r} did not take {value}")


def set_checkbox(driver, label: str, checked: bool) -> None:
    """Tick or untick checkbox `label` by clicking it, as a user does."""
    from selenium.webdriver.common.by import By

    def box(d):
        return widget(d, "stCheckbox", label).find_element(By.CSS_SELECTOR, "input[type=checkbox]")

    if box(driver).is_selected() != checked:
        target = widget(driver, "stCheckbox", label).find_element(By.CSS_SELECTOR, "label")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
        target.click()
    wait_until(driver, lambda d: box(d).is_selected() == checked, 30,
               f"checkbox {label!r} did not turn {'on' if checked else 'off'}")


def metric_value(driver, label: str) -> str | None:
    """The shown value of metric `label`, None while it is not drawn."""
    return driver.execute_script(
        "for (const m of document.querySelectorAll('[data-testid=\"stMetric\"]')) {"
        "  const l = m.querySelector('[data-testid=\"stMetricLabel\"]');"
        "  if (l && l.innerText.trim() === arguments[0])"
        "    return m.querySelector('[data-testid=\"stMetricValue\"]').innerText.trim(); }"
        "return null;", label)


def train_step(driver) -> int:
    """The step the Train page's run panel shows (0 before the first one)."""
    shown = metric_value(driver, "Step") or ""
    found = re.match(r"\s*(\d+)\s*/", shown)
    return int(found.group(1)) if found else 0


def query_param(driver, name: str) -> str | None:
    from urllib.parse import parse_qs, urlparse

    return (parse_qs(urlparse(driver.current_url).query).get(name) or [None])[0]


def screenshot(driver, folder: Path, name: str) -> Path:
    """The whole page as a PNG: the window is stretched to the main area's height for the shot."""
    height = driver.execute_script(
        "const b = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        "return b ? b.scrollHeight + 160 : document.body.scrollHeight;")
    driver.set_window_size(WIDTH, max(HEIGHT, min(int(height), MAX_SHOT_HEIGHT)))
    time.sleep(0.5)  # the charts redraw for the new size
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, HEIGHT)
    return path


def wait_download(folder: Path, name: str, timeout_s: float = 30) -> Path:
    """The downloaded file once Chromium has finished writing it."""
    deadline = time.monotonic() + timeout_s
    target = folder / name
    while time.monotonic() < deadline:
        if target.is_file() and not list(folder.glob("*.crdownload")) and target.stat().st_size > 0:
            return target
        time.sleep(0.25)
    raise TimeoutError(f"{name} was not downloaded into {folder} within {timeout_s:.0f} s "
                       f"(found {sorted(p.name for p in folder.iterdir())})")


def process_gone(pid: int) -> bool:
    """Whether a process has ended (a zombie waiting for its parent to reap it counts as ended)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
