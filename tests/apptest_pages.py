"""Open a page the way the app serves it, for AppTest: from Home, so links to other pages resolve."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def open_page(page: str, run_id: str | None = None, timeout: float = 120):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page(page)
    if run_id is not None:
        at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    return at
