"""The Runs page's table and re-run request, on hand-made runs (no store, no Streamlit)."""

import pandas as pd
import pytest

from lift_core.config import LiftConfig
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.runs_table import COLUMNS, allowed_remote_code, rerun_request, runs_overview

T0 = 1_700_000_000.0


def _run(**kw):
    run = {"id": "r", "name": "n", "status": "succeeded", "dataset": "iris", "model": "tiny", "method": "lift",
           "created": T0, "started": T0 + 5, "finished": T0 + 65, "metrics": None, "config": None, "task": None}
    run.update(kw)
    return run


def test_overview_values():
    classif = _run(id="c", name="iris · tiny", metrics={"task": "classification",
                                                        "models": {"lift": {"accuracy": 0.9, "log_loss": 1.1},
                                                                   "logreg": {"accuracy": 1.0}}})
    regress = _run(id="g", status="succeeded", dataset="/ws/uploads/ab12/houses.csv", model="bundled",
                   metrics={"task": "regression", "models": {"lift": {"rmse": 2.5, "mae": 2.0}}})
    running = _run(id="u", status="running", started=T0 + 10, finished=None, metrics=None)
    queued = _run(id="q", status="queued", started=None, finished=None, name=None)
    failed = _run(id="f", status="failed", metrics={"task": "classification", "models": {"lift": {"error": "boom"}}})

    table = runs_overview([classif, regress, running, queued, failed], now=T0 + 110)

    assert list(table.columns) == COLUMNS
    assert table["id"].tolist() == ["c", "g", "u", "q", "f"]
    assert table["metric"].tolist() == ["accuracy", "RMSE", "", "", "accuracy"]  # blank, never "None"
    assert table["value"].iloc[0] == 0.9 and table["value"].iloc[1] == 2.5
    assert table["value"].iloc[2:].isna().all()
    assert table["duration (s)"].iloc[0] == 60.0
    assert table["duration (s)"].iloc[2] == 100.0  # running: counted up to now
    assert pd.isna(table["duration (s)"].iloc[3])  # never started
    assert table["data set"].tolist() == ["iris", "houses.csv", "iris", "iris", "iris"]
    assert table["name"].iloc[3] == ""
    assert table["created"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20", tz="UTC")
    assert table["status"].tolist() == ["succeeded", "succeeded", "running", "queued", "failed"]


def test_overview_of_no_runs_has_the_columns():
    table = runs_overview([])
    assert list(table.columns) == COLUMNS and len(table) == 0


def test_task_column_used_when_metrics_lack_it():
    run = _run(task="regression", metrics={"models": {"lift": {"rmse": 3}}})
    row = runs_overview([run]).iloc[0]
    assert (row["metric"], row["value"]) == ("RMSE", 3.0)


def test_rerun_request_round_trips_the_settings():
    request = RunRequest(data="wine", target="class", seed=3, baselines=False,
                         lift=LiftConfig(model="tiny", predict_mode="generate"))
    again = rerun_request(_run(config={"request": request.to_dict(), "request_key": "k"}))
    assert again == request


def test_rerun_request_without_settings_is_a_lift_error():
    with pytest.raises(LiftError, match="cannot be re-run"):
        rerun_request(_run(config=None))


def test_a_run_allows_remote_code_only_when_its_request_said_so():
    allowed = RunRequest(data="iris", lift=LiftConfig(model="tiny", trust_remote_code=True)).to_dict()
    assert allowed_remote_code(_run(config={"request": allowed}))
    assert not allowed_remote_code(_run(config={"request": RunRequest(data="iris").to_dict()}))
    assert not allowed_remote_code(_run(config={"request": {"lift": {"trust_remote_code": "yes"}}}))
    assert not allowed_remote_code(_run())
