"""Data: pick or upload a table, choose what to predict from what, and see how it will be split.

Every choice goes straight into the session's draft request, which the later pages read.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from lift_core.builtin import BUILTIN, load_builtin
from lift_core.config import SEED_RANGE
from lift_core.data import MISSING, TASKS, read_table
from lift_core.draft import get_draft, start_widget
from lift_core.errors import LiftError
from lift_core.experiment import LoadedTable, RunRequest, load_table
from lift_core.tableinfo import (MISSING_LABELS, UPLOAD_TYPES, column_summary, default_target, default_task,
                                 target_chart)
from lift_core.uploads import save_upload

SOURCES = ("Built-in data set", "Upload a file")

st.set_page_config(page_title="Data · LIFT Studio", layout="wide")
state = st.session_state
draft = get_draft(state)


def seed(key: str, value, options=None) -> None:
    start_widget(state, key, value, options)


def use_table(data: str) -> None:
    """A new table: the choices that belonged to the old one start over."""
    if data != draft.data:
        draft.data, draft.target, draft.task, draft.features = data, None, None, None
        for key in ("target", "task", "features"):
            state.pop(key, None)


def target_changed() -> None:
    """Another target: its task is guessed afresh and every other column is a feature again."""
    draft.task, draft.features = None, None
    for key in ("task", "features"):
        state.pop(key, None)


@st.cache_data(show_spinner="Reading the table ...", max_entries=8)
def raw_table(data: str, seed_: int) -> tuple[pd.DataFrame, str | None, str | None]:
    """The table as read, and a built-in's own target and task."""
    if data in BUILTIN:
        builtin = load_builtin(data, seed=seed_)
        return builtin.frame, builtin.target, builtin.task
    return read_table(Path(data)), None, None


@st.cache_data(show_spinner="Checking and splitting ...", max_entries=16)
def split_table(data: str, target: str, task: str, features: tuple[str, ...], missing: str,
                seed_: int) -> LoadedTable:
    return load_table(RunRequest(data=data, target=target, task=task, features=list(features),
                                 missing=missing, seed=seed_))


st.title("Data")
st.write("Choose the table to learn from and the column to predict.")

seed("data_source", SOURCES[0] if draft.data in BUILTIN else SOURCES[1], SOURCES)
source = st.radio("Table", SOURCES, key="data_source", horizontal=True)
if source == SOURCES[0]:
    names = list(BUILTIN)
    seed("builtin", draft.data if draft.data in BUILTIN else "iris", names)
    name = st.selectbox("Built-in data set", names, key="builtin")
    st.caption(BUILTIN[name])
    use_table(name)
else:
    upload = st.file_uploader(
        "Drop a table here (CSV, TSV, TXT, Excel, Parquet, JSON or JSON lines)", type=UPLOAD_TYPES,
        key="upload", help="The size limit is set by server.maxUploadSize in .streamlit/config.toml.")
    if upload is not None:
        saved = state.get("saved_upload")
        if not saved or saved[0] != upload.file_id:
            try:
                path = save_upload(upload.getvalue(), upload.name)
            except LiftError as exc:
                st.error(f"{exc}")
                st.stop()
            state["saved_upload"] = (upload.file_id, str(path))
        use_table(state["saved_upload"][1])
    else:
        earlier = state["saved_upload"][1] if "saved_upload" in state else draft.data
        if earlier in BUILTIN:
            st.info("Drop a table file above; the first row must name the columns.")
            st.stop()
        use_table(earlier)
        st.caption(f"Using the table uploaded earlier: {Path(earlier).name}")

seed("split_seed", int(draft.seed))
try:
    frame, builtin_target, builtin_task = raw_table(draft.data, int(state["split_seed"]))
except LiftError as exc:
    st.error(f"{exc}")
    st.stop()

st.subheader("Preview")
left, right = st.columns([3, 2])
with left:
    st.caption(f"First rows of {len(frame)} rows × {frame.shape[1]} columns")
    st.dataframe(frame.head(10), hide_index=True)
with right:
    st.caption("Columns")
    st.dataframe(column_summary(frame), hide_index=True)

st.subheader("What to predict")
columns = [str(c) for c in frame.columns]
known_task = {builtin_target: builtin_task} if builtin_target else None
c1, c2, c3 = st.columns(3)
with c1:
    seed("target", draft.target or default_target(frame, builtin_target), columns)
    target = st.selectbox("Target column", columns, key="target", on_change=target_changed)
with c2:
    guessed = default_task(frame, target, known_task)
    seed("task", draft.task or guessed, TASKS)
    task = st.selectbox("Task", TASKS, key="task", help=f"Guessed from the target's values: {guessed}.")
with c3:
    seed("missing", draft.missing, MISSING)
    missing = st.radio("Missing feature values", MISSING, key="missing", format_func=MISSING_LABELS.get)
options = [c for c in columns if c != target]
kept = [f for f in (draft.features or options) if f in options]
seed("features", kept)
state["features"] = [f for f in state["features"] if f in options]
features = st.multiselect("Features (the columns the model reads)", options, key="features")
split_seed = st.number_input("Split seed", min_value=SEED_RANGE[0], max_value=SEED_RANGE[1], step=1,
                             key="split_seed",
                             help="Which rows go to training and validation; the test rows stay the same "
                                  "for every seed (LIFT's protocol). For LIFT's regression simulations it "
                                  "also draws a new simulation.")

draft.target, draft.task, draft.features = target, task, list(features)
draft.missing, draft.seed = missing, int(split_seed)

try:
    table = split_table(draft.data, target, task, tuple(features), missing, int(split_seed))
except LiftError as exc:
    st.error(f"{exc}")
    st.stop()

split = table.split
m1, m2, m3 = st.columns(3)
m1.metric("Training rows", len(split.train))
m2.metric("Validation rows", len(split.val))
m3.metric("Test rows", len(split.test))
for warning in list(table.prepared.report.get("warnings", [])) + list(split.warnings):
    st.warning(warning)
st.plotly_chart(target_chart(table.prepared.frame, target, task))

if st.button("Next: prompts", key="next_prompts", type="primary"):
    st.switch_page("pages/2_Prompts.py")
