"""Predict new rows with a finished run's adapter or an adapter zip downloaded earlier; export the adapter."""

import hashlib
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from lift_core.bundle import read_bundle, read_manifest
from lift_core.data import read_table
from lift_core.errors import LiftError
from lift_core.estimator import STATE_FILE, check_features, input_kind, load_estimator, predictions_table
from lift_core.runs_table import allowed_remote_code
from lift_core.store import SUCCEEDED, RunStore

RESULT_KEY = "predict_result"
FROM_RUN, FROM_ZIP = "A finished run", "An adapter zip file"
FROM_TABLE, FROM_FORM = "Upload a table", "Fill in one row"


@st.cache_resource(max_entries=2, show_spinner=False)
def _estimator(adapter_dir: str, mtime_ns: int, trust_remote_code: bool):
    """The model, loaded once per adapter folder version and shared; the lock serializes its use."""
    return load_estimator(Path(adapter_dir), trust_remote_code), threading.Lock()


def _unpacked(zip_bytes: bytes, digest: str, root: Path) -> Path:
    """The bundle unpacked once into the workspace, in a folder named by its content."""
    dest = root / "imports" / digest
    if not (dest / "adapter").exists():
        read_bundle(zip_bytes, dest)
    return dest / "adapter"


st.set_page_config(page_title="Predict · LIFT Studio", layout="wide")
st.title("Predict & export")

try:
    store = RunStore()
    finished = store.list_runs(status=SUCCEEDED)
except LiftError as exc:
    st.error(str(exc))
    st.stop()

source = st.radio("Use the model of", [FROM_RUN, FROM_ZIP], horizontal=True,
                  index=0 if finished or "run" in st.query_params else 1)

if source == FROM_RUN:
    if not finished:
        st.info("No run has finished yet. Start one on the **Train** page, or upload an adapter zip "
                "downloaded earlier.")
        st.stop()
    by_id = {r["id"]: r for r in finished}
    wanted = st.query_params.get("run")
    if wanted and wanted not in by_id:
        st.warning(f"Run {wanted} has not finished successfully, so it has no model to predict with; "
                   "showing the newest finished run instead.")
    ids = list(by_id)
    run_id = st.selectbox("Run", ids, index=ids.index(wanted) if wanted in by_id else 0,
                          format_func=lambda i: f"{by_id[i]['name'] or i} · {i}")
    st.query_params["run"] = run_id
    zip_path = store.run_dir(run_id) / "adapter.zip"
    if not zip_path.is_file():
        st.error(f"Run {run_id} has no adapter.zip in {zip_path.parent}; it may have been removed by hand. "
                 "Run it again from the Runs page.")
        st.stop()
    zip_bytes, zip_name = zip_path.read_bytes(), f"lift-adapter-{run_id}.zip"
    trust_remote_code = allowed_remote_code(by_id[run_id])  # as its owner chose when training it
else:
    upload = st.file_uploader("Adapter zip (downloaded from this page earlier)", type="zip")
    if upload is None:
        st.info("Upload an adapter zip to predict with it.")
        st.stop()
    zip_bytes, zip_name = upload.getvalue(), upload.name
    trust_remote_code = st.checkbox(
        "Allow the model's own code (trust_remote_code)", value=False, key="predict_trust_remote_code",
        help="Some hub models ship Python code; only allow it for models you trust. A zip cannot switch "
             "this on by itself.")

try:
    manifest = read_manifest(zip_bytes)
except LiftError as exc:
    st.error(str(exc))
    st.stop()

digest = hashlib.sha256(zip_bytes).hexdigest()[:16]
features = manifest.get("features")
if not isinstance(features, list) or not features:
    st.error(f"{zip_name} does not list the features its model was trained on, so rows cannot be "
             "turned into prompts; export the adapter again from LIFT Studio.")
    st.stop()
schema = manifest.get("feature_schema") or {}

st.subheader("The model")
st.markdown(
    f"- **Base model:** `{manifest['base_model']}`\n"
    f"- **Task:** {manifest.get('task', '?')} of **{manifest.get('target', '?')}**"
    f" (data set {manifest.get('dataset', '?')})\n"
    f"- **Features ({len(features)}):** {', '.join(f'`{f}`' for f in features)}\n"
    + (f"- **Classes:** {', '.join(map(str, manifest['classes']))}\n" if manifest.get("classes") else "")
    + (f"- **Created:** {manifest['created']}\n" if manifest.get("created") else "")
)
numbers = {k: v for k, v in (manifest.get("metrics") or {}).items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
if numbers:
    st.caption("Test metrics recorded when it was trained")
    st.dataframe(pd.DataFrame({"metric": list(numbers), "value": list(numbers.values())}), hide_index=True)

if source == FROM_RUN:
    st.download_button("Download adapter.zip", zip_bytes, file_name=zip_name, mime="application/zip",
                       on_click="ignore", help="The adapter with its manifest and model card; upload it "
                       "here later, or use it with `python -m lift_core predict --adapter`")

st.subheader("Predict")
how = st.radio("Rows", [FROM_TABLE, FROM_FORM], horizontal=True)
frame = None
if how == FROM_TABLE:
    table = st.file_uploader("Table with the feature columns (the target column is not needed)")
    if table is not None:
        try:
            candidate = read_table(table.getvalue(), name=table.name)
        except LiftError as exc:
            st.error(str(exc))
        else:
            try:
                check_features(features, candidate, table.name)
            except LiftError as exc:
                st.error(f"{exc}, and upload it again.")
                candidate = None
            if candidate is not None and st.button(f"Predict {len(candidate)} row(s)", type="primary"):
                frame = candidate
else:
    with st.form("one_row"):
        values = {}
        for f in features:
            kind = input_kind(schema.get(f, "object"))
            if kind == "integer":
                values[f] = st.number_input(f, value=None, step=1)
            elif kind == "number":
                values[f] = st.number_input(f, value=None)
            else:
                values[f] = st.text_input(f) or None
        if st.form_submit_button("Predict", type="primary"):
            frame = pd.DataFrame([values], columns=features)

if frame is not None:
    try:
        adapter_dir = _unpacked(zip_bytes, digest, store.root)
        state = adapter_dir / STATE_FILE
        with st.spinner("Loading the model (only the first time) and predicting…"):
            est, lock = _estimator(str(adapter_dir), state.stat().st_mtime_ns if state.exists() else 0,
                                   trust_remote_code)
            with lock:
                st.session_state[RESULT_KEY] = (digest, predictions_table(est, frame))
    except LiftError as exc:
        st.error(str(exc))
    except (OSError, KeyError, ValueError) as exc:  # a bundle from elsewhere that lacks what LIFT saves
        st.error(f"Could not load the model in {zip_name}: {exc}. Export the adapter again from LIFT Studio.")

result = st.session_state.get(RESULT_KEY)
if result is not None and result[0] == digest:
    predictions = result[1]
    st.dataframe(predictions, hide_index=True)
    st.download_button("Download predictions (CSV)", predictions.to_csv(index=False).encode(),
                       file_name="predictions.csv", mime="text/csv", on_click="ignore")
