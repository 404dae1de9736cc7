"""Results of a finished run: LIFT against every baseline, where it errs, how it trained, other runs.

The chosen run lives in the URL (?run=ID), so a result can be bookmarked or shared. What each chart
and table shows is decided in lift_core.charts; this page only lays them out.
"""

import streamlit as st

from lift_core import charts
from lift_core.errors import LiftError
from lift_core.progress import format_duration, more_epochs_advice
from lift_core.runs_table import allowed_remote_code
from lift_core.store import ACTIVE, SUCCEEDED, RunStore

st.set_page_config(page_title="Results · LIFT Studio", layout="wide")
st.title("Results")


def go(label: str, page: str, run_id: str | None = None) -> None:
    """A button to another step, taking the run along (st.page_link cannot resolve pages under AppTest)."""
    if st.button(label, key=f"go_{page}"):
        st.switch_page(page, query_params={"run": run_id} if run_id else None)


def train_link(run_id: str | None = None) -> None:
    go("Go to the Train page", "pages/3_Train.py", run_id)


def remember_run() -> None:
    st.query_params["run"] = st.session_state["results_run"]


def remember_compare() -> None:
    picked = st.session_state["results_compare"]
    if picked:
        st.query_params["compare"] = picked
    else:
        st.query_params.pop("compare", None)


try:
    store = RunStore()
    runs = store.list_runs()
except LiftError as exc:
    st.error(str(exc))
    st.stop()

by_id = {r["id"]: r for r in runs}
finished = [r for r in runs if r["status"] == SUCCEEDED]
requested = st.query_params.get("run")
if requested is not None and requested not in by_id:
    st.error(f"There is no run {requested!r} in this workspace (it may have been deleted, or the link "
             "comes from another workspace)." + (" Showing the newest finished run; pick another below."
                                                if finished else ""))
    requested = None
if not runs:
    st.info("No runs yet. Choose a data set, then start a run on the Train page; its results "
            "(LIFT against every classic baseline) appear here when it finishes.")
    train_link()
    st.stop()
options = [r["id"] for r in finished]
if requested is not None and requested not in options:
    options.insert(0, requested)  # an unfinished run named in the URL: say where it stands
if not options:
    newest = runs[0]
    st.info(f"No run has finished yet. The newest, {charts.run_label(newest)}, is {newest['status']}.")
    train_link(newest["id"])
    st.stop()

choice = st.selectbox("Run", options, index=options.index(requested) if requested else 0, key="results_run",
                      format_func=lambda i: f"{charts.run_label(by_id[i])} ({by_id[i]['status']})",
                      on_change=remember_run)
if st.query_params.get("run") != choice:
    st.query_params["run"] = choice
run = by_id[choice]

if run["status"] != SUCCEEDED:
    if run["status"] in ACTIVE:
        st.info(f"Run {choice} is {run['status']}; its results appear here when it finishes. "
                "Follow its progress on the Train page.")
    else:
        st.warning(f"Run {choice} {run['status']}" + (f": {run['error']}" if run.get("error") else ".")
                   + " It has no results; change its settings and start it again on the Train page.")
    train_link(choice)
    st.stop()

try:
    results = charts.load_results(store, choice)
except LiftError as exc:
    st.error(str(exc))
    st.stop()
doc, preds = results.doc, results.predictions
task = doc["task"]
main = charts.metric_options(task)[0]
st.caption(f"{doc['dataset']} · {task} · target **{doc['target']}** · {doc.get('n_train')} train / "
           f"{doc.get('n_val')} validation / {doc.get('n_test')} test rows · seed {doc.get('seed')} · "
           f"{doc.get('machine', '')}")

# -- headline ---------------------------------------------------------------------------------------
lift_value, best = charts.lift_score(doc), charts.best_baseline(doc)
invalid = charts.lift_invalid_rate(doc)
cols = st.columns(4)
lm_name = charts.model_label("lift", doc.get("method", "lift"))
cols[0].metric(f"{lm_name} {charts.metric_label(main)}", "—" if lift_value is None else f"{lift_value:.4g}")
if best:
    cols[1].metric("Best baseline", f"{best[1]:.4g}")
    cols[1].caption(charts.model_label(best[0]))
cols[2].metric("Invalid answers", "—" if invalid is None else f"{invalid:.1%}",
               help="Share of test rows whose LIFT answer could not be read. They count as wrong in "
                    "every score above; they are never dropped.")
cols[3].metric("Best epoch (kept)", str(doc["models"]["lift"].get("best_epoch") or "—"))
advice = more_epochs_advice(doc)
if advice:
    st.info(advice)
lm_entry = doc["models"]["lift"]
if lm_entry.get("trainable_parameters"):
    st.caption(f"{lm_name} trained {lm_entry['trainable_parameters']:,} parameters in "
               f"{format_duration(lm_entry.get('train_seconds'))} on {lm_entry.get('device', '?')}"
               f"{' (' + lm_entry['quantization'] + ')' if lm_entry.get('quantization') not in (None, 'none') else ''}.")
go("Predict new rows with this run's model", "pages/5_Predict.py", choice)

# -- every model ------------------------------------------------------------------------------------
st.subheader("All models")
st.dataframe(charts.metrics_table(doc), hide_index=True)

st.subheader(f"{lm_name} against the baselines")
metric = st.selectbox("Metric", charts.metric_options(task), format_func=charts.metric_label, key="results_metric")
docs = [doc]
siblings = charts.seed_siblings(run, finished)
if len(siblings) > 1:
    seeds = ", ".join(str(charts.run_settings(r)["seed"]) for r in siblings)
    if st.toggle(f"Mean ± std over the {len(siblings)} runs with these settings (seeds {seeds})", value=True):
        docs = [r["metrics"] for r in siblings]
try:
    st.plotly_chart(charts.comparison_bar(docs, metric))
except LiftError as exc:
    st.warning(str(exc))

same_table = charts.same_table_runs(run, finished)
if len({r["metrics"].get("method", "lift") for r in same_table}) > 1:
    st.subheader("Methods on this table")
    st.caption("Every finished run on this table and target, grouped by method (LIFT, L-Tuning, plain "
               "prefix/prompt tuning): mean ± std over each method's runs, beside the best baseline.")
    try:
        st.plotly_chart(charts.method_bar(same_table, metric))
    except LiftError as exc:
        st.warning(str(exc))

# -- LIFT's test predictions ------------------------------------------------------------------------
st.subheader(f"Where {lm_name} is right and wrong")
if preds is None:
    st.info("This run did not keep its test predictions, so there is nothing to break down.")
else:
    try:
        if task == "classification":
            left, right = st.columns(2)
            left.plotly_chart(charts.confusion_matrix(preds.true, preds.pred, doc["classes"], model=lm_name))
            if preds.proba is not None:
                right.plotly_chart(charts.calibration_plot(preds.true, preds.proba, doc["classes"], model=lm_name))
        else:
            st.plotly_chart(charts.predicted_vs_actual(preds.true, preds.pred))
    except LiftError as exc:
        st.error(str(exc))
    st.download_button("Download the test predictions (CSV)", preds.frame.to_csv(index=False),
                       file_name=f"{choice}-test-predictions.csv", mime="text/csv")

st.subheader("Training")
try:
    st.plotly_chart(charts.training_curves(results.events))
except LiftError as exc:
    st.info(str(exc))

# -- decision regions (two numeric features only) ---------------------------------------------------
features = charts.two_numeric_features(preds)
if features:
    st.subheader("Decision regions")
    st.caption("The model's answer over a grid of the two features, with the test rows on top. LIFT "
               "answers every grid point with the language model, which takes a while on a CPU.")
    left, right = st.columns(2)
    who = left.selectbox("Model", ["lift", *charts.region_baselines(doc)], format_func=charts.model_label,
                         key="results_region_model")
    grid = right.slider("Grid points per axis", 10, 60, 25, step=5, key="results_region_grid")
    saved = f"results_regions:{choice}:{who}:{grid}"
    if st.button("Draw decision regions", type="primary"):
        bar = st.progress(0.0, text="Preparing the model …")
        try:
            if who == "lift":
                lift_predict = charts.lift_predictor(store.run_dir(choice) / "adapter.zip",
                                                     allowed_remote_code(run))

                def predict(X):
                    return lift_predict(X, progress=lambda done, total: bar.progress(
                        done / total, text=f"LIFT: {done} of {total} grid points"))
            else:
                predict = charts.baseline_predictor(run, who)
            st.session_state[saved] = charts.decision_regions(
                predict, preds.frame, features, f"{doc['target']} (true)", grid=grid, classes=doc.get("classes"),
                title=f"Decision regions: {charts.model_label(who)}")
        except LiftError as exc:
            st.error(str(exc))
        bar.empty()
    if saved in st.session_state:
        st.plotly_chart(st.session_state[saved])

# -- other runs -------------------------------------------------------------------------------------
st.subheader("Compare runs")
others = [r["id"] for r in finished if r["id"] != choice]
if not others:
    st.caption("Finish another run (say, the same data with another prompt template) to compare it here.")
else:
    wanted = [i for i in st.query_params.get_all("compare") if i in others]
    picked = st.multiselect("Other finished runs", others, default=wanted, key="results_compare",
                            format_func=lambda i: charts.run_label(by_id[i]), on_change=remember_compare)
    if picked:
        chosen = [run, *(by_id[i] for i in picked)]
        st.dataframe(charts.compare_table(chosen), hide_index=True)
        try:
            st.plotly_chart(charts.grouped_bar([(charts.run_label(r), r["metrics"]) for r in chosen],
                                               metric if all(r["metrics"]["task"] == task for r in chosen) else None))
        except LiftError as exc:
            st.warning(str(exc))
