"""The Runs page's table: one row per stored run, with the number that says how it did.

Kept apart from the page so what a row shows (which metric, how long a run took, how a data set
is named) is decided once and tested without Streamlit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from lift_core.draft import request_of_run
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.metrics import main_metric

COLUMNS = ["id", "name", "status", "data set", "model", "method", "metric", "value", "duration (s)", "created"]
_METRIC_LABELS = {"accuracy": "accuracy", "rmse": "RMSE"}


def lift_metric(run: dict[str, Any]) -> tuple[str | None, float | None]:
    """LIFT's main test metric of a run (accuracy or RMSE), or ``(None, None)`` before it has one.

    The metric follows the task, so a table mixing classification and regression runs still
    names what each number means.
    """
    doc = run.get("metrics") or {}
    task = doc.get("task") or run.get("task")
    if task not in ("classification", "regression"):
        return None, None
    name, _ = main_metric(task)
    value = ((doc.get("models") or {}).get("lift") or {}).get(name)
    return _METRIC_LABELS[name], float(value) if isinstance(value, (int, float)) else None


def run_duration(run: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds from start to finish; a run still going counts up to ``now``; None if never started."""
    started = run.get("started")
    if started is None:
        return None
    end = run.get("finished")
    if end is None:
        end = time.time() if now is None else now
    return max(0.0, float(end) - float(started))


def dataset_label(dataset: str | None) -> str:
    """A built-in name as is, an uploaded file by its file name (its stored path means nothing to people)."""
    return Path(dataset).name if dataset else ""


def runs_overview(runs: list[dict[str, Any]], now: float | None = None) -> pd.DataFrame:
    """One row per run, in the order given (the store lists newest first)."""
    rows = []
    for run in runs:
        metric, value = lift_metric(run)
        rows.append({
            "id": run["id"],
            "name": run.get("name") or "",
            "status": run.get("status") or "",
            "data set": dataset_label(run.get("dataset")),
            "model": run.get("model") or "",
            "method": run.get("method") or "",
            "metric": metric or "",
            "value": value,
            "duration (s)": run_duration(run, now),
            "created": pd.to_datetime(run["created"], unit="s", utc=True) if run.get("created") else pd.NaT,
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"value": "float64", "duration (s)": "float64"})


def rerun_request(run: dict[str, Any]) -> RunRequest:
    """The exact settings a stored run was started with, to submit them again."""
    try:
        return request_of_run(run)
    except (KeyError, TypeError) as exc:
        raise LiftError(
            f"run '{run.get('id')}' does not record the settings it was started with, so it cannot "
            "be re-run; set up the same run on the Data, Prompts and Train pages instead"
        ) from exc


def allowed_remote_code(run: dict[str, Any]) -> bool:
    """Whether the person who started this run allowed its hub model's own code: predicting with
    their own run again asks no second time (an uploaded zip's say is never taken)."""
    request = (run.get("config") or {}).get("request") or {}
    return (request.get("lift") or {}).get("trust_remote_code") is True
