"""Prompts: how each row is written as a sentence and each target as an answer.

Every edit replaces the draft's PromptSpec, and the preview below is produced by the same
Serializer that training uses, so what is shown is what the model will read.
"""

import dataclasses
import json

import streamlit as st

from lift_core.draft import get_draft, start_widget
from lift_core.errors import LiftError
from lift_core.experiment import LoadedTable, RunRequest, load_table, prompt_lengths
from lift_core.serialize import EOS, TEMPLATES
from lift_core.tableinfo import (PREVIEW_ROWS, check_end_marker, default_question, preview_texts,
                                 prompt_warnings, starter_template, token_histogram, verbalizer_of,
                                 verbalizer_table)

CUSTOM = "custom"
AUTO = "auto"
PRECISIONS = [AUTO] + list(range(0, 13))  # a selectbox shows None as "no choice", hence a word

st.set_page_config(page_title="Prompts · LIFT Studio", layout="wide")
state = st.session_state
draft = get_draft(state)


def seed(key: str, value, options=None) -> None:
    start_widget(state, key, value, options)


@st.cache_data(show_spinner="Reading the table ...", max_entries=8)
def cached_table(request_json: str) -> LoadedTable:
    return load_table(RunRequest.from_dict(json.loads(request_json)))


@st.cache_data(show_spinner="Counting prompt tokens ...", max_entries=32)
def cached_lengths(request_json: str) -> tuple[list[int], int, int]:
    """Token counts need only the model's tokenizer and config, never its weights."""
    request = RunRequest.from_dict(json.loads(request_json))
    return prompt_lengths(cached_table(table_key(request)), request.lift)


def table_key(request: RunRequest) -> str:
    d = request.to_dict()
    return json.dumps({k: d[k] for k in ("data", "target", "task", "features", "missing", "seed")})


def insert_placeholder() -> None:
    state["template_text"] = state.get("template_text", "") + "{" + state["placeholder_column"] + "}"


st.title("Prompts")
st.write("Each training row becomes a sentence (the prompt) followed by its answer; "
         "the model learns to write the answer.")

try:
    table = cached_table(table_key(draft))
except LiftError as exc:
    st.error(f"The table chosen on the Data page cannot be used: {exc}")
    if st.button("Back to data"):
        st.switch_page("pages/1_Data.py")
    st.stop()

p = table.prepared
spec = draft.lift.prompt
st.caption(f"{table.name}: predict {p.target!r} ({p.task}) from {len(p.features)} features.")

names = list(TEMPLATES) + [CUSTOM]
seed("template_choice", spec.template if spec.is_named else CUSTOM, names)
choice = st.selectbox("Template", names, key="template_choice",
                      format_func=lambda n: TEMPLATES.get(n, "Custom: your own text with {column} placeholders"))
question = spec.question
if choice == CUSTOM:
    seed("template_text", spec.template if not spec.is_named else state.get("custom_template")
         or starter_template(p.features, default_question(spec.template, p)))
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.selectbox("Column", p.features, key="placeholder_column")
    c2.button("Insert placeholder", key="insert_placeholder", on_click=insert_placeholder,
              help="Adds {column} at the end of the text; the row's value replaces it.")
    template = st.text_area("Template text", key="template_text", height=120,
                            help="Write {column} where a value goes, {{ and }} for literal braces.")
    state["custom_template"] = template  # kept while a named template is tried out
else:
    template = choice
    seed("question", spec.question or "")
    question = st.text_input("Question", key="question", placeholder=default_question(choice, p),
                             help="Ends every prompt; leave empty for the default shown.").strip() or None

c1, c2, c3 = st.columns(3)
with c1:
    seed("precision", AUTO if spec.precision is None else spec.precision, PRECISIONS)
    decimals = st.selectbox("Decimals for numbers", PRECISIONS, key="precision",
                            help="'auto' rounds to 4 decimals as LIFT's code does, keeps 4 significant digits of "
                                 "smaller values and drops trailing zeros: 5.1 stays 5.1, 0.07871 stays, "
                                 "-0.3936957105780956 becomes -0.3937 (the nameless LIFT template uses 2 for a class "
                                 "target, as in the paper).")
    precision = None if decimals == AUTO else int(decimals)
with c2:
    seed("end_marker", spec.end_marker)
    end_marker = st.text_input("End marker", key="end_marker",
                               help=f"Follows every answer so the model learns where it stops; {EOS} is the "
                                    "model's own end token.")
with c3:
    answer_digits = spec.answer_digits
    if p.task == "regression":
        seed("answer_digits", spec.answer_digits)
        answer_digits = int(st.number_input("Significant digits in answers", min_value=1, max_value=12,
                                            step=1, key="answer_digits"))

verbalizer = spec.verbalizer
if p.task == "classification":
    st.caption("Label verbalizer: the answer text for each class")
    edited = st.data_editor(verbalizer_table(p.classes, spec.verbalizer), key="verbalizer",
                            disabled=["class"], hide_index=True, num_rows="fixed")
    verbalizer = verbalizer_of(edited)

spec = dataclasses.replace(spec, template=template, question=question, precision=precision,
                           verbalizer=verbalizer, end_marker=end_marker, answer_digits=answer_digits)
draft.lift.prompt = spec

try:
    check_end_marker(end_marker)
    texts = preview_texts(p, table.split.train[:PREVIEW_ROWS], spec)
except LiftError as exc:
    st.error(f"{exc}")
    st.stop()

st.subheader("Preview: the first training rows as the model reads them")
for text in texts:
    st.code(text, language=None, wrap_lines=True)

st.subheader("Prompt lengths")
try:
    lengths, longest_answer, context = cached_lengths(json.dumps(draft.to_dict()))
except LiftError as exc:
    st.error(f"{exc}")
else:
    st.caption(f"Counted with the tokenizer of model {draft.lift.model!r} (change the model on the Train page).")
    st.plotly_chart(token_histogram(lengths, context))
    for warning in prompt_warnings(p, lengths, context, longest_answer):
        st.warning(warning)

if st.button("Next: train", key="next_train", type="primary"):
    st.switch_page("pages/3_Train.py")
