"""End to end through the command line with the tiny model: ``run`` writes metrics.json and
adapter.zip and records the run; ``predict`` reads the zip back and predicts new rows exactly as
the estimator loaded from the unpacked zip does. The tiny model cannot learn, so these tests
check mechanics (files, keys, ranges, equality), never accuracy.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lift_core.builtin import load_builtin
from lift_core.bundle import read_bundle
from lift_core.cli import main
from lift_core.estimator import load_estimator
from lift_core.store import RunStore

REPO = Path(__file__).resolve().parents[1]
BASELINES = ("majority", "logreg", "tree", "knn", "mlp", "svm", "rf", "gbt")
CLASSES = ["setosa", "versicolor", "virginica"]


def _run_cli(tmp_path_factory, name: str, argv: list[str]) -> SimpleNamespace:
    """One ``run`` in its own workspace; the store is read before the workspace is unset."""
    root = tmp_path_factory.mktemp(name)
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFT_HOME", str(root / "workspace"))
        mp.setenv("TOKENIZERS_PARALLELISM", "false")
        code = main([*argv, "--out", str(out)])
        runs = RunStore().list_runs()
        stages = [e for r in runs for e in RunStore().events(r["id"], kind="stage")]
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else None
    return SimpleNamespace(code=code, out=out, runs=runs, metrics=metrics, stages=stages)


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return _run_cli(tmp_path_factory, "iris-run",
                    ["run", "--data", "iris", "--model", "tiny", "--epochs", "1", "--batch-size", "8",
                     "--checkpoint-dir", str(tmp_path_factory.getbasetemp() / "iris-checkpoints")])


def test_the_run_reports_how_far_validation_testing_and_the_baselines_are(iris_run):
    """The run panel's second bar: each stage's rows (or baselines) done, ending complete."""
    by = {}
    for e in iris_run.stages:
        by.setdefault(e["stage"], []).append(e)
    assert list(by) == ["validation", "test", "baselines"]  # in the order they run
    assert [(e["done"], e["total"]) for e in by["validation"]][-1] == (24, 24)  # iris: 24 validation rows
    assert [(e["done"], e["total"]) for e in by["test"]][-1] == (30, 30)
    fitted = by["baselines"]
    ran = [name for name, m in iris_run.metrics["models"].items() if name != "lift" and "skipped" not in m]
    assert [(e["done"], e["total"]) for e in fitted] == [(i, len(ran)) for i in range(len(ran))]
    assert len(ran) >= 7 and all(e["baseline"] for e in fitted)


@pytest.fixture(scope="module")
def new_rows(tmp_path_factory):
    """A few iris rows of every species, without the target, as a CSV file."""
    b = load_builtin("iris")
    frame = b.frame.groupby(b.target, group_keys=False).head(3).drop(columns=b.target).reset_index(drop=True)
    path = tmp_path_factory.mktemp("new-rows") / "rows.csv"
    frame.to_csv(path, index=False)
    return path, frame


# ------------------------------------------------------------------------------- classification run


def test_run_exits_0_and_writes_metrics(iris_run):
    assert iris_run.code == 0
    m = iris_run.metrics
    assert m is not None, "metrics.json was not written to --out"
    assert m["task"] == "classification" and m["dataset"] == "iris"
    assert m["classes"] == CLASSES
    assert (m["n_train"], m["n_val"], m["n_test"]) == (96, 24, 30)
    assert 0.0 <= m["models"]["lift"]["accuracy"] <= 1.0
    assert m["models"]["lift"]["best_epoch"] == 1 and len(m["history"]) == 1
    assert m["models"]["lift"]["learning_rate"] == 2e-3  # automatic: 96 rows at batch 8 are 12 steps an epoch
    assert m["models"]["lift"]["epochs"] == 1  # set by hand (--epochs 1)
    assert isinstance(m["models"]["lift"]["bf16"], bool)  # a CPU's probe picks it, and it moves the figures
    assert m["models"]["lift"]["resumed_at_steps"] == []


def test_a_finished_run_removes_its_checkpoints(iris_run, tmp_path_factory):
    assert iris_run.code == 0
    assert not (tmp_path_factory.getbasetemp() / "iris-checkpoints").exists()


def test_run_evaluates_every_baseline(iris_run):
    models = iris_run.metrics["models"]
    for name in BASELINES:
        assert name in models, f"baseline {name} missing from metrics.json"
        assert "error" not in models[name], models[name]
        assert 0.0 <= models[name]["accuracy"] <= 1.0


def test_run_writes_the_adapter_zip_and_predictions(iris_run):
    assert (iris_run.out / "adapter.zip").is_file()
    preds = pd.read_csv(iris_run.out / "test_predictions.csv")
    assert len(preds) == iris_run.metrics["n_test"]
    np.testing.assert_allclose(preds[[f"P({c})" for c in CLASSES]].sum(axis=1), 1.0, atol=1e-6)


def test_the_model_card_keeps_training_figures_out_of_the_test_metrics(iris_run):
    import zipfile

    with zipfile.ZipFile(iris_run.out / "adapter.zip") as z:
        card = z.read("README.md").decode()
    tested, trained = card.split("## Test metrics")[1].split("## Training")
    assert "- accuracy:" in tested and "epochs" not in tested and "learning_rate" not in tested
    assert "- epochs: 1" in trained and "- learning_rate:" in trained


def test_run_is_recorded_as_succeeded(iris_run):
    assert len(iris_run.runs) == 1
    run = iris_run.runs[0]
    assert run["status"] == "succeeded"
    assert run["dataset"] == "iris" and run["model"] == "tiny"


# ------------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def predicted(iris_run, new_rows, tmp_path_factory):
    assert iris_run.code == 0
    path, _ = new_rows
    out = tmp_path_factory.mktemp("predict") / "preds.csv"
    code = main(["predict", "--adapter", str(iris_run.out / "adapter.zip"), "--data", str(path),
                 "--out", str(out)])
    return code, out


def test_predict_writes_one_row_per_input(predicted, new_rows):
    code, out = predicted
    _, frame = new_rows
    assert code == 0
    preds = pd.read_csv(out)
    assert len(preds) == len(frame)
    pd.testing.assert_frame_equal(preds[list(frame.columns)], frame, check_dtype=False)
    assert set(preds["species (predicted)"]) <= set(CLASSES)
    proba = preds[[f"P({c})" for c in CLASSES]].to_numpy()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_predict_matches_the_estimator_loaded_from_the_zip(predicted, new_rows, iris_run, tmp_path):
    _, out = predicted
    _, frame = new_rows
    read_bundle(iris_run.out / "adapter.zip", tmp_path / "unpacked")
    est = load_estimator(tmp_path / "unpacked" / "adapter")
    assert list(est.classes_) == CLASSES
    proba = est.predict_proba(frame)
    preds = pd.read_csv(out)
    np.testing.assert_allclose(preds[[f"P({c})" for c in CLASSES]].to_numpy(), proba, rtol=0, atol=1e-9)
    assert list(preds["species (predicted)"]) == list(est.classes_[proba.argmax(axis=1)])


def test_predict_rows_lacking_a_trained_column(iris_run, new_rows, tmp_path, capsys):
    _, frame = new_rows
    path = tmp_path / "rows.csv"
    frame.drop(columns="petal width").to_csv(path, index=False)
    capsys.readouterr()
    code = main(["predict", "--adapter", str(iris_run.out / "adapter.zip"), "--data", str(path),
                 "--out", str(tmp_path / "preds.csv")])
    err = capsys.readouterr().err
    assert code == 2
    # In-process only the last line is checked: run as `python -m lift_core`, library warnings from
    # loading the model come first, because the columns are checked only after the model loads.
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "petal width" in last and "add them" in last
    assert not (tmp_path / "preds.csv").exists()


# ------------------------------------------------------------------------------- regression run


def test_regression_run_reports_every_regression_metric(tmp_path_factory):
    run = _run_cli(tmp_path_factory, "regression-run",
                   ["run", "--data", "linear_1d", "--model", "tiny", "--epochs", "1", "--batch-size", "32",
                    "--no-baselines"])
    assert run.code == 0
    m = run.metrics
    assert m["task"] == "regression" and m["dataset"] == "linear_1d"
    assert (m["n_train"], m["n_val"], m["n_test"]) == (200, 50, 100)
    assert list(m["models"]) == ["lift"]  # --no-baselines
    lift = m["models"]["lift"]
    for key in ("rmse", "mae", "r2", "rae", "rae_filtered", "invalid_rate"):
        assert isinstance(lift[key], (int, float)) and math.isfinite(lift[key]), (key, lift.get(key))
    assert lift["rmse"] >= lift["mae"] >= 0 and 0.0 <= lift["invalid_rate"] <= 1.0
    assert (run.out / "adapter.zip").is_file()
    assert [r["status"] for r in run.runs] == ["succeeded"]


# ------------------------------------------------------------------------------- accelerate launch


def test_accelerate_launch_runs_the_command_line(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "LIFT_HOME": str(tmp_path / "workspace"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--num_cpu_threads_per_process", str(min(2, os.cpu_count() or 1)),
         "-m", "lift_core", "run", "--data", "iris", "--model", "tiny", "--epochs", "1",
         "--batch-size", "32", "--no-baselines", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification" and list(metrics["models"]) == ["lift"]
    assert (out / "adapter.zip").is_file()
    assert [r["status"] for r in RunStore(tmp_path / "workspace").list_runs()] == ["succeeded"]


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_a_split_seed_numpy_cannot_take_is_refused_with_its_range(seed):
    """The Data page's seed box and the command line both reach load_table; sklearn's own error
    (a ValueError) was a traceback in both."""
    from lift_core.errors import LiftError
    from lift_core.experiment import RunRequest, load_table

    with pytest.raises(LiftError, match="split seed must be a whole number from 0 to 4294967295"):
        load_table(RunRequest(data="iris", seed=seed))
