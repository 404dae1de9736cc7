"""Every run in the workspace's run store, with its status (kept true by process liveness)."""

import streamlit as st

from lift_core.store import RunStore

st.title("Runs")
runs = RunStore().list_runs()
if not runs:
    st.write("No runs yet. Start one with `python -m lift_core run --data iris`.")
else:
    st.dataframe(
        [{"id": r["id"], "status": r["status"], "data set": r["dataset"], "model": r["model"],
          "error": r["error"] or ""} for r in runs],
        hide_index=True,
    )
