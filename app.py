"""LIFT Studio's home page: what LIFT is, the five steps, and a one-click first run on iris."""

from pathlib import Path

import streamlit as st

from lift_core import jobs
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.progress import RUN_STATE_KEY
from lift_core.store import RunStore

PAGES = Path(__file__).parent / "pages"
STEPS = [
    ("Data", "Upload a table (CSV, Excel, Parquet, JSON lines) or pick a built-in one; choose the column to predict."),
    ("Prompts", "See how each row becomes a sentence and its target the answer; pick a template."),
    ("Train", "Choose the model and settings, start, and watch the loss and validation live."),
    ("Results", "Compare LIFT with classic baselines on the same held-out rows; download the adapter."),
    ("Predict", "Predict new rows with a trained adapter."),
]


def page_of(step: str) -> str | None:
    """The page file of a step (pages/<n>_<Step>.py), whatever its number; None until it exists."""
    found = sorted(PAGES.glob(f"*_{step}.py"))
    return f"pages/{found[0].name}" if found else None


st.set_page_config(page_title="LIFT Studio", layout="wide")
st.title("LIFT Studio")
st.markdown(
    "**LIFT** (Language-Interfaced Fine-Tuning) teaches a language model your table: each row becomes a "
    "sentence — *When we have sepal length=5.1, …, what is the species?* — and the target its answer, "
    "and the model is fine-tuned with LoRA without changing its architecture or loss. "
    "LIFT Studio then compares it honestly with classic machine learning on the same held-out rows."
)

st.subheader("Five steps")
for number, (step, what) in enumerate(STEPS, start=1):
    page = page_of(step)
    left, right = st.columns([1, 4])
    with left:
        if page:
            st.page_link(page, label=f"{number}. {step}")
        else:
            st.markdown(f"{number}. {step}")
    right.write(what)

st.subheader("Try it")
st.write("One click trains the bundled SmolLM2-135M on the iris flowers with every default setting, "
         "then opens the Train page to watch it.")
if st.button("Try it on iris", type="primary", key="try_iris"):
    try:
        with st.spinner("Checking the table and the model …"):
            run_id = jobs.submit(RunRequest(data="iris"), RunStore())
    except LiftError as exc:
        st.error(f"Could not start the iris run: {exc}")
    else:
        st.session_state[RUN_STATE_KEY] = run_id  # switch_page may drop query params: keep it here too
        st.switch_page("pages/3_Train.py", query_params={"run": run_id})
