"""LIFT Studio's home page. The full walk-through pages (upload → prompts → train → results →
predict) come on top of lift_core; until then this page shows what the core already offers."""

import streamlit as st

from lift_core.builtin import BUILTIN

st.set_page_config(page_title="LIFT Studio", layout="wide")
st.title("LIFT Studio")
st.markdown(
    "Fine-tune a language model on an ordinary table and see, honestly, whether it beats classic "
    "machine learning on it. Each row becomes a sentence (*When we have sepal length=5.1, …, what "
    "is the species?*), the target becomes the answer, and the model learns with LoRA."
)
st.info("The guided pages are being built. Meanwhile every step runs from a terminal: "
        "`python -m lift_core run --data iris`.")
st.subheader("Built-in data sets")
st.dataframe([{"name": k, "description": v} for k, v in BUILTIN.items()], hide_index=True)
