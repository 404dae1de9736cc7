"""The Results page renders a finished run, says where an unfinished one stands, and never crashes."""

import copy
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lift_core import charts
from lift_core.experiment import RunRequest, load_table
from lift_core.store import RunStore

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "4_Results.py")


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts_of(at: AppTest) -> list:
    return at.get("plotly_chart")


def frames_text(at: AppTest) -> str:
    return "\n".join(df.value.to_string() for df in at.dataframe)


@pytest.fixture
def copied_store(finished_copy):
    """The store of a writable copy of the finished run's workspace (the shared one must stay untouched)."""
    workspace, run_id = finished_copy
    return RunStore(workspace), run_id


def add_fake_run(store: RunStore, like: str, name: str, seed: int = 0, template: str | None = None,
                 lift_accuracy: float = 0.5, method: str = "lift") -> str:
    """A finished run made from another's record (settings and scores changed, no training)."""
    base = store.get(like)
    config = copy.deepcopy(base["config"])
    config["request"]["seed"] = seed
    if template:
        config["request"]["lift"]["prompt"]["template"] = template
    doc = copy.deepcopy(base["metrics"])
    doc["seed"] = seed
    doc["models"]["lift"]["accuracy"] = lift_accuracy
    config["request"]["lift"]["method"] = doc["method"] = method
    run_id = store.create_run(config, name=name, dataset="iris", model="tiny", method=method)
    store.finish(run_id, "succeeded", metrics=doc)
    return run_id


def test_finished_run_shows_table_charts_and_invalid_rate(finished_run, monkeypatch):
    workspace, run_id = finished_run
    monkeypatch.setenv("LIFT_HOME", str(workspace))
    at = page()
    assert not at.exception
    assert at.selectbox(key="results_run").value == run_id  # the newest finished run by default
    assert at.query_params["run"] == run_id  # and the choice is kept in the URL
    table = frames_text(at)
    assert "LIFT" in table and "Logistic regression" in table and "Accuracy" in table
    # comparison bar, confusion matrix, calibration, training curves
    assert len(charts_of(at)) == 4
    labels = {m.label: m.value for m in at.metric}
    assert labels["Invalid answers"] == "0.0%"
    assert "LIFT Accuracy" in labels
    assert not at.error
    assert "Decision regions" not in texts(at.subheader)  # iris has four features


def test_run_from_the_url_is_shown(finished_run, monkeypatch):
    workspace, run_id = finished_run
    monkeypatch.setenv("LIFT_HOME", str(workspace))
    at = page({"run": run_id})
    assert not at.exception and not at.error
    assert at.selectbox(key="results_run").value == run_id
    assert charts_of(at)


def test_no_runs_shows_a_hint():
    at = page()
    assert not at.exception
    assert "No runs yet" in texts(at.info)
    assert not charts_of(at) and not at.dataframe


def test_unknown_run_is_an_error_not_an_exception(finished_run, monkeypatch):
    workspace, run_id = finished_run
    monkeypatch.setenv("LIFT_HOME", str(workspace))
    at = page({"run": "unknown"})
    assert not at.exception
    assert "There is no run 'unknown'" in texts(at.error)
    assert at.selectbox(key="results_run").value == run_id  # falls back to the newest finished run


def test_unknown_run_in_an_empty_workspace_still_shows_the_hint():
    at = page({"run": "unknown"})
    assert not at.exception
    assert "There is no run 'unknown'" in texts(at.error) and "No runs yet" in texts(at.info)


def test_unfinished_runs_show_their_status():
    store = RunStore()
    queued = store.create_run({"request": RunRequest(data="iris").to_dict()}, name="iris · tiny")
    at = page()
    assert not at.exception
    assert "No run has finished yet" in texts(at.info) and "queued" in texts(at.info)

    failed = store.create_run({"request": RunRequest(data="iris").to_dict()}, name="iris · tiny")
    store.finish(failed, "failed", error="out of memory")
    at = page({"run": failed})
    assert not at.exception
    assert "out of memory" in texts(at.warning)
    at = page({"run": queued})
    assert "is queued" in texts(at.info)
    assert [b.label for b in at.button] == ["Go to the Train page"]
    assert not charts_of(at)


def test_compare_runs_and_seed_summary(copied_store):
    store, run_id = copied_store
    other = add_fake_run(store, run_id, "iris · template text", template="text", lift_accuracy=0.25)
    add_fake_run(store, run_id, "iris · seed 1", seed=1, lift_accuracy=0.75)
    at = page({"run": run_id})
    assert not at.exception
    # seed 1 has the same settings: the bar chart can average the two runs
    assert any("Mean ± std over the 2 runs" in t.label for t in at.toggle)
    assert "std over 2 runs" in charts_of(at)[0].proto.spec
    compare = at.multiselect(key="results_compare")
    assert len(compare.options) == 2  # every other finished run
    before = len(charts_of(at))
    at = compare.select(other).run()
    assert not at.exception
    assert at.query_params["compare"] == other
    table = at.dataframe[-1].value
    assert list(table["template"]) == ["lift_names", "text"]
    assert table["language model"].iloc[1] == 0.25
    assert len(charts_of(at)) == before + 1  # the grouped bar chart


def fake_finished_run(data: str, models: dict, history: list | None = None) -> str:
    """A finished run on a built-in data set with hand-made scores and perfect test predictions
    (no training), enough for the page; its request is real, so baselines can be refitted."""
    store = RunStore()
    request = RunRequest(data=data)
    table = load_table(request)
    p = table.prepared
    test = p.frame.iloc[table.split.test]
    preds = test[p.features].copy()
    preds[f"{p.target} (true)"] = test[p.target].to_numpy()
    preds[f"{p.target} (LIFT)"] = test[p.target].to_numpy()
    for c in p.classes or []:
        preds[f"P({c})"] = (test[p.target] == c).astype(float)
    doc = {"task": p.task, "dataset": data, "target": p.target, "seed": 0, "classes": p.classes,
           "models": models, "history": history or []}
    run_id = store.create_run({"request": request.to_dict()}, name=f"{data} · tiny", dataset=data)
    preds.to_csv(store.run_dir(run_id) / "test_predictions.csv", index=False)
    store.finish(run_id, "succeeded", metrics=doc)
    return run_id


def test_regression_run_shows_predicted_vs_actual_and_skipped_baselines():
    fake_finished_run("linear_1d", {"lift": {"rmse": 0.5, "rae": 0.1, "invalid_rate": 0.02, "best_epoch": 3},
                                    "ridge": {"rmse": 0.4, "rae": 0.08, "invalid_rate": 0.0},
                                    "gp": {"skipped": "too many rows for an exact GP"}},
                      history=[{"epoch": e} for e in (1, 2, 3)])
    at = page()
    assert not at.exception and not at.error
    assert "best at the last epoch (3 of 3)" in texts(at.info)  # still learning: more epochs advised
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["model", "RMSE", "RAE"]
    assert list(table["model"]) == ["Ridge regression", "LIFT", "Gaussian process"]
    assert {m.label: m.value for m in at.metric}["Invalid answers"] == "2.0%"
    specs = [c.proto.spec for c in charts_of(at)]
    assert len(specs) == 2  # the bar chart and predicted vs actual (no training events recorded)
    assert "Gaussian process: skipped: too many rows" in specs[0]
    assert "Predicted vs actual" in specs[1]
    assert "Decision regions" not in texts(at.subheader)  # one feature only


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_decision_regions_for_two_numeric_features(monkeypatch):
    """A run on two numeric features offers regions; a baseline's are drawn on click."""
    fake_finished_run("moons", {"lift": {"accuracy": 1.0, "invalid_rate": 0.0, "best_epoch": 1},
                                "logreg": {"accuracy": 0.85, "invalid_rate": 0.0}})
    at = page()
    assert not at.exception
    assert "Decision regions" in texts(at.subheader)
    assert "this run recorded no training progress" in texts(at.info).lower()
    assert "more epochs" not in texts(at.info)  # no validation history: no advice
    n = len(charts_of(at))
    at = click(at, "Draw decision regions")  # LIFT first: this run has no adapter, which is said, not raised
    assert not at.exception and "no adapter file" in texts(at.error)
    assert len(charts_of(at)) == n

    at.selectbox(key="results_region_model").set_value("logreg")
    at.slider(key="results_region_grid").set_value(10)
    at = click(at, "Draw decision regions")
    assert not at.exception and not at.error
    assert len(charts_of(at)) == n + 1
    assert "Decision regions: Logistic regression" in charts_of(at)[-1].proto.spec  # the figure as JSON
    at.slider(key="results_region_grid").set_value(20).run()
    assert len(charts_of(at)) == n  # another grid has not been drawn yet

    # LIFT's own predictor is tested in test_charts; here: the page feeds it the grid with a progress bar
    seen = []

    def fake_lift(adapter_zip, trust_remote_code):
        assert trust_remote_code is False  # the run did not allow its model's own code
        def predict(X, progress=None):
            seen.append(len(X))
            progress(len(X), len(X))
            return (X["x1"] > 0.5).astype(int).to_numpy()
        return predict

    monkeypatch.setattr(charts, "lift_predictor", fake_lift)
    at.selectbox(key="results_region_model").set_value("lift")
    at = click(at, "Draw decision regions")
    assert not at.exception and not at.error
    assert seen == [400]
    assert "Decision regions: LIFT" in charts_of(at)[-1].proto.spec


def test_runs_of_several_methods_on_one_table_are_compared_by_method(copied_store):
    store, run_id = copied_store
    at = page({"run": run_id})
    assert "Methods on this table" not in texts(at.subheader)  # one method so far: nothing to compare
    add_fake_run(store, run_id, "iris · L-Tuning prefix", method="ltuning-prefix", lift_accuracy=0.4)
    add_fake_run(store, run_id, "iris · prompt tuning", method="prompt", lift_accuracy=0.3)
    at = page({"run": run_id})
    assert not at.exception
    assert "Methods on this table" in texts(at.subheader)
    spec = "\n".join(c.proto.spec for c in charts_of(at))
    assert "L-Tuning prefix" in spec and "Prompt tuning" in spec and "best baseline" in spec
    method_run = [r["id"] for r in store.list_runs() if r["method"] == "prompt"][0]
    at = page({"run": method_run})
    assert "Prompt tuning Accuracy" in [m.label for m in at.metric]
