"""What the Data and Prompts pages tell people about a table, decided here and tested alone.

The pages only lay these out: which kind a column looks like, what the target's distribution is,
what a training text looks like, and which choices are likely to make LIFT slow or bad. Every
threshold below is a rule of thumb for a warning, never a refusal (``check_request`` refuses).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from lift_core.data import Prepared, infer_task
from lift_core.errors import LiftError
from lift_core.serialize import EOS, PromptSpec, Serializer, class_key
from lift_core.serialize import default_question as spec_question

MAX_CLASSES = 10  # label scoring reads one answer per class for every row; beyond this it gets slow
NEAR_CONTEXT = 0.8  # a longest prompt above this share of the context leaves little room to spare
HIGH_CARDINALITY = 50  # distinct values in a text column above which it reads like free text or an id
MAX_FEATURES = 50  # beyond this prompts get long and training slow; LIFT's tables had fewer
CATEGORY_MAX = 20  # a text column with at most this many distinct values reads as a category
FAR_FROM_CONTEXT = 0.25  # prompts shorter than this share of the context: zoom the histogram on them
MISSING_LABELS = {"word": "write the word 'missing'", "drop": "drop rows"}
UPLOAD_TYPES = ["csv", "tsv", "txt", "xlsx", "parquet", "jsonl", "json"]  # what read_table reads
PREVIEW_ROWS = 5


# ----------------------------------------------------------------------------- columns


def column_kind(column: pd.Series) -> str:
    """The type people see: boolean, number, category (few repeated labels) or text.

    People care whether a column is a measurement, a label or free text, not about dtypes; a
    text column whose values repeat (at most CATEGORY_MAX distinct, each seen twice on average)
    is a category.
    """
    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column):
        return "number"
    if isinstance(column.dtype, pd.CategoricalDtype):
        return "category"
    values = column.dropna()
    distinct = _distinct(values)
    if 0 < distinct <= CATEGORY_MAX and distinct * 2 <= len(values):
        return "category"
    return "text"


def _distinct(values: pd.Series) -> int:
    """Distinct values, also for JSON cells holding lists or objects (unhashable: compared as text)."""
    try:
        return int(values.nunique())
    except TypeError:
        return int(values.astype(str).nunique())


def column_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column: name, type, missing count, distinct values and an example value."""
    rows = []
    for name in frame.columns:
        column = frame[name]
        present = column.dropna()
        rows.append({
            "column": str(name),
            "type": column_kind(column),
            "missing": int(column.isna().sum()),
            "distinct": _distinct(present),
            "example": str(present.iloc[0]) if len(present) else "",
        })
    return pd.DataFrame(rows, columns=["column", "type", "missing", "distinct", "example"])


def default_target(frame: pd.DataFrame, suggested: str | None = None) -> str:
    """A built-in's own target when it is a column, else the last column (where tables keep labels)."""
    if suggested is not None and suggested in frame.columns:
        return suggested
    return str(frame.columns[-1])


def default_task(frame: pd.DataFrame, target: str, known: dict[str, str] | None = None) -> str:
    """A built-in's declared task for its own target; otherwise guessed from the values."""
    if known and target in known:
        return known[target]
    return infer_task(frame[target])


# ----------------------------------------------------------------------------- charts


def target_chart(frame: pd.DataFrame, target: str, task: str) -> go.Figure:
    """Class balance as bars (classification) or the value distribution (regression).

    A rare class or a skewed target is the first thing that explains a poor accuracy or RAE.
    """
    values = frame[target].dropna()
    if task == "classification":
        counts = values.map(class_key).value_counts(sort=False)
        counts = counts.reindex(sorted(counts.index, key=_class_order(values)))
        fig = go.Figure(go.Bar(x=list(counts.index), y=[int(c) for c in counts], name=target))
        fig.update_layout(title=f"Rows per class of {target}", xaxis_title=target, yaxis_title="rows",
                          xaxis_type="category")
    else:
        fig = go.Figure(go.Histogram(x=values.astype(float).tolist(), name=target))
        fig.update_layout(title=f"Distribution of {target}", xaxis_title=target, yaxis_title="rows")
    fig.update_layout(showlegend=False, height=320)
    return fig


def _class_order(values: pd.Series):
    """Sort class keys as the classes themselves sort (2 before 10), as ``prepare`` orders them."""
    first: dict[str, object] = {}
    for v in values:
        first.setdefault(class_key(v), v)

    def key(k: str) -> tuple:
        v = first[k]
        return (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0.0, k)

    return key


def token_histogram(lengths: Sequence[int], context: int) -> go.Figure:
    """Prompt token counts with the model's context as a dashed line.

    When every prompt is far below the context (FAR_FROM_CONTEXT) the axis stays on the prompts,
    so their spread stays readable, and the title gives the context instead of the line.
    """
    longest = max(lengths) if lengths else 0
    fig = go.Figure(go.Histogram(x=list(lengths), name="prompts"))
    fig.add_vline(x=context, line_dash="dash", line_color="red",
                  annotation_text=f"context {context}", annotation_position="top left")
    if longest < FAR_FROM_CONTEXT * context:
        fig.update_xaxes(range=[0, max(longest, 1) * 1.2])
    else:
        fig.update_xaxes(range=[0, max(longest, context) * 1.05])
    fig.update_layout(title=f"Prompt length in tokens (longest {longest} of the model's {context})",
                      xaxis_title="tokens per prompt", yaxis_title="rows", showlegend=False, height=320)
    return fig


# ----------------------------------------------------------------------------- prompts


def preview_texts(prepared: Prepared, rows: Sequence[int], spec: PromptSpec) -> list[str]:
    """The training texts of some rows, exactly as training writes them: prompt, a space, the
    answer, the end marker (``<eos>`` stands for the tokenizer's end token).

    Raises LiftError for a template or verbalizer the serializer refuses.
    """
    p = prepared
    ser = Serializer(spec, p.features, p.target, p.task, p.classes)
    part = p.frame.iloc[list(rows)]
    return [f"{prompt} {ser.answer(y)}{spec.end_marker}"
            for prompt, y in zip(ser.prompts(part), part[p.target])]


def default_question(template: str, prepared: Prepared) -> str:
    """The question a named template asks when none is given (shown as the field's placeholder)."""
    # The serializer's own rule, without building a Serializer (that also checks the classes).
    return spec_question(PromptSpec(template=template), prepared.target, prepared.task)


def starter_template(features: Sequence[str], question: str) -> str:
    """A custom template to start from: LIFT's sentence with every feature as a placeholder."""
    body = ", ".join(f"{f}={{{f}}}" for f in features)
    return f"When we have {body}, {question}"


def check_end_marker(marker: str) -> None:
    """An empty end marker would leave the model no way to say where an answer stops."""
    if not marker:
        raise LiftError(f"the end marker is empty; write {EOS} (the model's own end token) or a short "
                        "text such as '@@@' that never appears in an answer")


def verbalizer_table(classes: Sequence[object], verbalizer: dict[str, str]) -> pd.DataFrame:
    """Class value → answer text for the editable table (the value itself when not renamed)."""
    keys = [class_key(c) for c in classes]
    return pd.DataFrame({"class": keys, "answer": [verbalizer.get(k, k) for k in keys]})


def verbalizer_of(table: pd.DataFrame) -> dict[str, str]:
    """The verbalizer an edited table means: only the classes whose answer was changed."""
    out = {}
    for key, answer in zip(table["class"], table["answer"]):
        text = "" if pd.isna(answer) else str(answer)
        if text != key:
            out[str(key)] = text
    return out


def prompt_warnings(prepared: Prepared, lengths: Sequence[int], context: int,
                    longest_answer: int = 0) -> list[str]:
    """Choices that make LIFT slow or inaccurate, each with what to do about it.

    ``lengths`` are the prompts' token counts in the order of ``prepared.frame``'s rows;
    ``longest_answer`` (tokens, end marker included) is added when checking the context.
    """
    p = prepared
    out: list[str] = []
    if p.classes is not None and len(p.classes) > MAX_CLASSES:
        out.append(f"{len(p.classes)} classes: label scoring reads every class's answer for every row, so "
                   "prediction gets slow, and accuracy usually drops with many classes; merge rare "
                   "classes or predict a coarser target")
    if lengths:
        worst = max(range(len(lengths)), key=lambda i: lengths[i])
        row = p.frame.index[worst]
        need = lengths[worst] + longest_answer
        if need > context:
            out.append(f"row {row}'s prompt is {lengths[worst]} tokens and with its answer needs {need}, more "
                       f"than the model's context of {context}; training will refuse this table: use fewer "
                       "features, a lower precision, a shorter template, or a model with a longer context")
        elif need > NEAR_CONTEXT * context:
            out.append(f"the longest prompt (row {row}, {lengths[worst]} tokens) fills {need / context:.0%} "
                       f"of the model's context of {context}; training will be slow: use fewer features, a "
                       "lower precision or a shorter template")
    n_rows = len(p.frame)
    for f in p.features:
        column = p.frame[f]
        if column_kind(column) != "text":
            numeric_id = (pd.api.types.is_integer_dtype(column) and n_rows > 1
                          and _distinct(column) == n_rows and column.max() - column.min() + 1 == n_rows)
            if numeric_id:
                out.append(f"column {f!r} numbers the rows (a different value in every row): it cannot help "
                           "predict and lengthens every prompt; drop it from the features")
            continue
        distinct = _distinct(column)
        if n_rows > 1 and distinct == n_rows:
            out.append(f"text column {f!r} has a different value in every row (an id or a name?): it cannot "
                       "help predict and lengthens every prompt; drop it from the features")
        elif distinct > HIGH_CARDINALITY:
            out.append(f"text column {f!r} has {distinct} distinct values: long, rarely repeated text makes "
                       "prompts long and is hard to learn from few rows; consider dropping it from the features")
    if len(p.features) > MAX_FEATURES:
        out.append(f"{len(p.features)} features: prompts get long and training slow; LIFT works best with up "
                   f"to about {MAX_FEATURES}; drop the features that matter least")
    return out
