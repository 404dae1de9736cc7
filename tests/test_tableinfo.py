"""What the Data and Prompts pages show, checked without Streamlit."""

import numpy as np
import pandas as pd
import pytest

from lift_core.data import prepare
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest, load_table
from lift_core.serialize import PromptSpec
from lift_core.tableinfo import (check_end_marker, column_kind, column_summary, default_question, default_target,
                                 default_task, preview_texts, prompt_warnings, starter_template, target_chart,
                                 token_histogram, verbalizer_of, verbalizer_table)

IRIS_ROW0 = "When we have sepal length=5.1, sepal width=3.5, petal length=1.4, petal width=0.2, what is the species?"


@pytest.fixture(scope="module")
def iris():
    return load_table(RunRequest(data="iris")).prepared


def test_column_summary_names_each_column_in_words():
    frame = pd.DataFrame({
        "size": [1.5, None, 3.0, 4.0],
        "ok": [True, False, True, True],
        "color": ["red", "blue", "red", "blue"],
        "name": ["ann", "bob", "cy", None],
    })
    assert column_summary(frame).to_dict("records") == [
        {"column": "size", "type": "number", "missing": 1, "distinct": 3, "example": "1.5"},
        {"column": "ok", "type": "boolean", "missing": 0, "distinct": 2, "example": "True"},
        {"column": "color", "type": "category", "missing": 0, "distinct": 2, "example": "red"},
        {"column": "name", "type": "text", "missing": 1, "distinct": 3, "example": "ann"},
    ]


def test_column_kind_of_a_pandas_category_and_an_empty_column():
    assert column_kind(pd.Series(["a", "b", "c"], dtype="category")) == "category"
    assert column_kind(pd.Series([None, None], dtype=object)) == "text"
    summary = column_summary(pd.DataFrame({"gap": [None, None]}, dtype=object))
    assert summary.loc[0, "example"] == "" and summary.loc[0, "missing"] == 2
    nested = column_summary(pd.DataFrame({"tags": [["a"], ["b"], ["a"], ["b"]]}))  # JSON lists
    assert nested.to_dict("records") == [
        {"column": "tags", "type": "category", "missing": 0, "distinct": 2, "example": "['a']"}]


def test_default_target_and_task():
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3], "label": [1, 2, 1], "price": [1.5, 2.25, 3.75]})
    assert default_target(frame) == "price"
    assert default_target(frame, "label") == "label"
    assert default_target(frame, "gone") == "price"
    assert default_task(frame, "label") == "classification"
    assert default_task(frame, "price") == "regression"
    assert default_task(frame, "price", {"price": "classification"}) == "classification"


def test_target_chart_counts_classes_in_class_order():
    frame = pd.DataFrame({"y": [10, 2, 2, 10, 10, None]})
    fig = target_chart(frame, "y", "classification")
    bar = fig.data[0]
    assert bar.type == "bar"
    assert list(bar.x) == ["2", "10"] and list(bar.y) == [2, 3]
    assert fig.layout.xaxis.type == "category"
    text = target_chart(pd.DataFrame({"y": ["b", "a", "b", "c"]}), "y", "classification").data[0]
    assert list(text.x) == ["a", "b", "c"] and list(text.y) == [1, 2, 1]


def test_target_chart_is_a_histogram_for_regression():
    fig = target_chart(pd.DataFrame({"y": [1.0, 2.5, np.nan, 4.0]}), "y", "regression")
    assert fig.data[0].type == "histogram"
    assert list(fig.data[0].x) == [1.0, 2.5, 4.0]
    assert fig.layout.title.text == "Distribution of y"


def test_token_histogram_marks_the_context():
    near = token_histogram([100, 900, 400], 1024)
    assert list(near.data[0].x) == [100, 900, 400]
    assert near.layout.shapes[0].x0 == 1024 and near.layout.shapes[0].x1 == 1024
    assert list(near.layout.xaxis.range) == [0, pytest.approx(1024 * 1.05)]
    assert near.layout.title.text == "Prompt length in tokens (longest 900 of the model's 1024)"
    over = token_histogram([100, 2000], 1024)
    assert list(over.layout.xaxis.range) == [0, pytest.approx(2100)]


def test_token_histogram_zooms_on_prompts_far_below_the_context():
    fig = token_histogram([40, 45, 50], 8192)
    assert list(fig.layout.xaxis.range) == [0, pytest.approx(60)]
    assert fig.layout.shapes[0].x0 == 8192
    assert "longest 50 of the model's 8192" in fig.layout.title.text


def test_preview_texts_are_prompt_space_answer_end_marker(iris):
    assert preview_texts(iris, [0], PromptSpec()) == [IRIS_ROW0 + " setosa<eos>"]
    spec = PromptSpec(verbalizer={"setosa": "flower A"}, end_marker="@@@")
    assert preview_texts(iris, [0, 50], spec) == [
        IRIS_ROW0 + " flower A@@@",
        "When we have sepal length=7, sepal width=3.2, petal length=4.7, petal width=1.4, "
        "what is the species? versicolor@@@",
    ]


def test_preview_texts_of_a_custom_template_and_its_errors(iris):
    spec = PromptSpec(template="Flower {petal length}: what is it?")
    assert preview_texts(iris, [0], spec) == ["Flower 1.4: what is it? setosa<eos>"]
    with pytest.raises(LiftError, match="unknown column.*'petal size'"):
        preview_texts(iris, [0], PromptSpec(template="Flower {petal size}"))
    with pytest.raises(LiftError, match="both answer 'same'"):
        preview_texts(iris, [0], PromptSpec(verbalizer={"setosa": "same", "virginica": "same"}))


def test_preview_texts_of_regression_answers():
    prep = prepare(pd.DataFrame({"x": [1, 2, 3, 4, 5], "y": [1.23456, 2.0, 3.5, 4.25, 5.125]}), "y")
    assert preview_texts(prep, [0], PromptSpec(answer_digits=3)) == [
        "When we have x=1, what should be the y value? 1.23<eos>"]


def test_starter_template_reproduces_the_named_lift_sentence(iris):
    start = starter_template(iris.features, default_question("lift_names", iris))
    assert start == ("When we have sepal length={sepal length}, sepal width={sepal width}, "
                     "petal length={petal length}, petal width={petal width}, what is the species?")
    assert preview_texts(iris, [0, 7], PromptSpec(template=start)) == preview_texts(iris, [0, 7], PromptSpec())
    assert default_question("lift", iris) == "what is this type?"


def test_end_marker_must_not_be_empty():
    check_end_marker("<eos>")
    check_end_marker("@@@")
    with pytest.raises(LiftError, match="end marker is empty"):
        check_end_marker("")


def test_verbalizer_table_round_trip():
    table = verbalizer_table([0, 1.0, "cat"], {"1": "yes"})
    assert table.to_dict("list") == {"class": ["0", "1", "cat"], "answer": ["0", "yes", "cat"]}
    assert verbalizer_of(table) == {"1": "yes"}
    table.loc[0, "answer"] = "no"
    table.loc[2, "answer"] = None
    assert verbalizer_of(table) == {"0": "no", "1": "yes", "cat": ""}


def test_no_prompt_warnings_for_iris(iris):
    assert prompt_warnings(iris, [45] * len(iris.frame), 8192, 3) == []


def test_prompt_warnings_for_a_prompt_over_or_near_the_context(iris):
    lengths = [10] * len(iris.frame)
    lengths[7] = 50
    assert prompt_warnings(iris, lengths, 40) == [
        "row 7's prompt is 50 tokens and with its answer needs 50, more than the model's context of 40; "
        "training will refuse this table: use fewer features, a lower precision, a shorter template, or a "
        "model with a longer context"]
    lengths[7] = 33
    assert prompt_warnings(iris, lengths, 40) == [
        "the longest prompt (row 7, 33 tokens) fills 82% of the model's context of 40; training will be slow: "
        "use fewer features, a lower precision or a shorter template"]
    assert prompt_warnings(iris, lengths, 40, longest_answer=8)[0].startswith(
        "row 7's prompt is 33 tokens and with its answer needs 41")
    lengths[7] = 32
    assert prompt_warnings(iris, lengths, 40) == []  # exactly 80 % is still fine


def test_prompt_warnings_for_many_classes():
    frame = pd.DataFrame({"x": np.arange(44) % 7, "y": np.arange(44) % 11})
    prep = prepare(frame, "y", task="classification")
    assert prompt_warnings(prep, [5] * 44, 1024) == [
        "11 classes: label scoring reads every class's answer for every row, so prediction gets slow, and "
        "accuracy usually drops with many classes; merge rare classes or predict a coarser target"]
    ten = prepare(pd.DataFrame({"x": np.arange(40) % 7, "y": np.arange(40) % 10}), "y", task="classification")
    assert prompt_warnings(ten, [5] * 40, 1024) == []


def test_prompt_warnings_for_id_and_free_text_columns():
    n = 120
    frame = pd.DataFrame({
        "row": np.arange(1, n + 1),  # numbers the rows: an id
        "name": [f"person {i}" for i in range(n)],  # unique text: an id
        "city": [f"city {i % 60}" for i in range(n)],  # 60 distinct: free text
        "shade": [f"shade {i % 50}" for i in range(n)],  # 50 distinct: at the limit, fine
        "score": np.arange(n) * 2,  # unique numbers that do not count rows: fine
        "y": ["a", "b"] * (n // 2),
    })
    prep = prepare(frame, "y")
    assert prompt_warnings(prep, [20] * n, 1024) == [
        "column 'row' numbers the rows (a different value in every row): it cannot help predict and "
        "lengthens every prompt; drop it from the features",
        "text column 'name' has a different value in every row (an id or a name?): it cannot help predict "
        "and lengthens every prompt; drop it from the features",
        "text column 'city' has 60 distinct values: long, rarely repeated text makes prompts long and is hard "
        "to learn from few rows; consider dropping it from the features",
    ]


def test_prompt_warnings_for_many_features():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 51)), columns=[f"f{i}" for i in range(51)])
    frame["y"] = ["a", "b"] * 10
    assert prompt_warnings(prepare(frame, "y"), [100] * 20, 8192) == [
        "51 features: prompts get long and training slow; LIFT works best with up to about 50; drop the "
        "features that matter least"]
    assert prompt_warnings(prepare(frame.drop(columns="f0"), "y"), [100] * 20, 8192) == []
