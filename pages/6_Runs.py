"""Every run in the workspace: open one, run it again with the same settings, carry a stopped one on, or
delete it."""

import streamlit as st

from lift_core.errors import LiftError
from lift_core.jobs import carry_on, carry_on_step, checkpoint_bytes, discard_checkpoints, submit
from lift_core.runs_table import rerun_request, runs_overview
from lift_core.store import ACTIVE, RunStore

CONFIRM_KEY = "runs_confirm_delete"
FLASH_KEY = "runs_flash"

st.set_page_config(page_title="Runs · LIFT Studio", layout="wide")
st.title("Runs")

if FLASH_KEY in st.session_state:
    st.success(st.session_state.pop(FLASH_KEY))

try:
    store = RunStore()
    runs = store.list_runs()
except LiftError as exc:
    st.error(str(exc))
    st.stop()

if not runs:
    st.info("No runs yet. Choose a data set on the **Data** page, check the sentences on **Prompts**, "
            "and start a run on **Train**; every run then appears here.")
    st.stop()

overview = runs_overview(runs)
st.dataframe(
    overview,
    hide_index=True,
    column_config={
        "metric": st.column_config.TextColumn("main metric", help="The language model's test accuracy or RMSE (LIFT or the run's method)"),
        "value": st.column_config.NumberColumn("value", format="%.3f"),
        "duration (s)": st.column_config.NumberColumn("duration", format="%.0f s", help="Wall time from the "
                                                      "first start; a carried-on run counts the time it lay stopped"),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm"),
    },
)

by_id = {r["id"]: r for r in runs}
ids = list(by_id)
wanted = st.query_params.get("run")
if wanted and wanted not in by_id:
    st.warning(f"Run {wanted} is no longer in the workspace (deleted in another tab?); showing the newest run.")
run_id = st.selectbox(
    "Run", ids, index=ids.index(wanted) if wanted in by_id else 0,
    format_func=lambda i: f"{by_id[i]['name'] or i} · {by_id[i]['status']} · {i}",
)
st.query_params["run"] = run_id
run = by_id[run_id]

if run.get("error"):
    st.warning(f"This run ended with: {run['error']}")

links = st.columns(3)
if run["status"] == "succeeded":
    links[0].page_link("pages/4_Results.py", label="Open its results", icon="📊", query_params={"run": run_id})
else:  # active runs are followed on Train; ended ones show their error and log there
    label = "Follow it on Train" if run["status"] in ACTIVE else "See its log on Train"
    links[0].page_link("pages/3_Train.py", label=label, icon="🏃", query_params={"run": run_id})
if run["status"] == "succeeded":
    links[1].page_link("pages/5_Predict.py", label="Predict with it", icon="🔮", query_params={"run": run_id})

act = st.columns(4)
# Every action's key names its run: a click made while another run was shown (one since deleted in
# another tab, so this rerun shows the newest) matches no button here instead of acting on this one.
if act[0].button("Run again with the same settings", key=f"rerun_{run_id}", help="Identical settings already "
                 "queued or running are not started twice: you are taken to that run."):
    try:
        new_id = submit(rerun_request(run))
    except LiftError as exc:
        st.error(str(exc))
    else:
        st.switch_page("pages/3_Train.py", query_params={"run": new_id})

step = carry_on_step(store, run)
if step is not None and act[2].button(f"Carry on from step {step}", key=f"carry_on_{run_id}",
                                      help="Train on from the run's last checkpoint "
                                      "with the same settings; the steps after it are trained again."):
    try:
        carry_on(run_id, store)
    except LiftError as exc:
        st.error(str(exc))
    else:
        st.switch_page("pages/3_Train.py", query_params={"run": run_id})

kept = 0 if run["status"] in ACTIVE else checkpoint_bytes(store, run_id)
if kept:
    st.caption(f"Its checkpoints take {kept / 2**20:.1f} MB of disk; they are kept until the run is carried on "
               "to the end, discarded or deleted.")
    if act[3].button("Discard its checkpoints", key=f"discard_{run_id}",
                     help="Frees the disk space; the run can then no longer be carried "
                     "on. Its results and log stay."):
        try:
            discard_checkpoints(run_id, store)
        except LiftError as exc:
            st.error(str(exc))
        else:
            st.session_state[FLASH_KEY] = f"Discarded the checkpoints of run {run_id}."
            st.rerun()

if act[1].button("Delete…", key=f"delete_{run_id}",
                 help="Removes the run, its metrics, log, adapter and checkpoints from the workspace"):
    st.session_state[CONFIRM_KEY] = run_id

if st.session_state.get(CONFIRM_KEY) == run_id:
    st.warning(f"Delete run **{run['name'] or run_id}** ({run_id}) with its metrics, log, adapter and checkpoints? "
               "This cannot be undone; download its adapter on the Predict page first to keep it.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", type="primary", key=f"confirm_delete_{run_id}"):
        try:
            store.delete(run_id)
        except LiftError as exc:
            st.session_state.pop(CONFIRM_KEY, None)
            st.error(str(exc))
        else:
            st.session_state.pop(CONFIRM_KEY, None)
            del st.query_params["run"]
            st.session_state[FLASH_KEY] = f"Deleted run {run_id}."
            st.rerun()
    if no.button("Cancel", key=f"cancel_delete_{run_id}"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()
