"""The Prompts page: templates, verbalizer and end marker change the preview that training uses."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lift_core.config import LiftConfig
from lift_core.draft import DRAFT_KEY
from lift_core.experiment import RunRequest, load_table

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "2_Prompts.py")
ROW = "When we have sepal length={}, sepal width={}, petal length={}, petal width={}, what is the species?"


@pytest.fixture(scope="module")
def first_rows():
    """The first five training rows of iris with the default split, as dicts."""
    table = load_table(RunRequest(data="iris"))
    return table.prepared.frame.iloc[table.split.train[:5]].to_dict("records")


def _page(model: str = "tiny") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if model != "bundled":
        at.session_state[DRAFT_KEY] = RunRequest(data="iris", lift=LiftConfig(model=model))
    at.run()
    assert not at.exception
    return at


def _text(v: float) -> str:
    """A value as the serializer writes it with precision "auto" (iris has one decimal: as written)."""
    return str(int(v)) if float(v).is_integer() else str(v)


def _row(r: dict) -> str:
    return ROW.format(*(_text(r[c]) for c in ("sepal length", "sepal width", "petal length", "petal width")))


@pytest.mark.slow  # counts tokens with the bundled model's tokenizer (converted once from its package)
def test_loads_with_the_default_draft(first_rows):
    at = _page("bundled")
    assert not at.error and not at.warning
    assert [c.value for c in at.code] == [_row(r) + f" {r['species']}<eos>" for r in first_rows]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["shapes"][0]["x0"] == 8192  # SmolLM2's context


def test_tiny_model_preview_histogram_and_warnings(first_rows):
    at = _page()
    assert not at.error and not at.warning
    assert at.code[0].value == _row(first_rows[0]) + " setosa<eos>"
    assert len(at.code) == 5
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["shapes"][0]["x0"] == 512  # the tiny GPT-2's context
    assert len(spec["data"][0]["x"]) == 150  # one length per row


def test_custom_template_changes_the_preview(first_rows):
    at = _page()
    at.selectbox(key="template_choice").set_value("custom").run()
    assert at.text_area(key="template_text").value.startswith("When we have sepal length={sepal length}")
    assert at.code[0].value == _row(first_rows[0]) + " setosa<eos>"  # the starter reads as lift_names
    at.text_area(key="template_text").input("Flower {petal length}: what is it?").run()
    assert not at.exception and not at.error
    assert [c.value for c in at.code] == [f"Flower {_text(r['petal length'])}: what is it? {r['species']}<eos>"
                                          for r in first_rows]
    assert at.session_state[DRAFT_KEY].lift.prompt.template == "Flower {petal length}: what is it?"


def test_insert_placeholder_appends_the_column():
    at = _page()
    at.selectbox(key="template_choice").set_value("custom").run()
    at.text_area(key="template_text").input("Width ").run()
    at.selectbox(key="placeholder_column").set_value("petal width").run()
    at.button(key="insert_placeholder").click().run()
    assert not at.exception
    assert at.text_area(key="template_text").value == "Width {petal width}"
    assert at.code[0].value.startswith("Width 0.2 setosa")


def test_unknown_placeholder_shows_an_error():
    at = _page()
    at.selectbox(key="template_choice").set_value("custom").run()
    at.text_area(key="template_text").input("Flower {petal size}: what is it?").run()
    assert not at.exception
    assert len(at.error) == 1 and "unknown column(s) 'petal size'" in at.error[0].value
    assert not at.code


def test_verbalizer_changes_the_answers(first_rows):
    at = _page()
    at.session_state["verbalizer"] = {"edited_rows": {0: {"answer": "first kind"}}, "added_rows": [],
                                      "deleted_rows": []}
    at.run()
    assert not at.exception and not at.error
    assert at.code[0].value == _row(first_rows[0]) + " first kind<eos>"
    assert at.session_state[DRAFT_KEY].lift.prompt.verbalizer == {"setosa": "first kind"}


def test_duplicate_answers_show_an_error():
    at = _page()
    at.session_state["verbalizer"] = {"edited_rows": {0: {"answer": "x"}, 1: {"answer": "x"}},
                                      "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "both answer 'x'" in at.error[0].value


def test_question_precision_and_end_marker(first_rows):
    at = _page()
    at.text_input(key="question").input("which iris?").run()
    at.selectbox(key="precision").set_value(2).run()
    at.text_input(key="end_marker").input("@@@").run()
    assert not at.exception and not at.error
    r = first_rows[0]
    assert at.code[0].value == (f"When we have sepal length={r['sepal length']:.2f}, sepal width={r['sepal width']:.2f}, "
                                f"petal length={r['petal length']:.2f}, petal width={r['petal width']:.2f}, "
                                "which iris? setosa@@@")
    at.text_input(key="end_marker").input("").run()
    assert len(at.error) == 1 and "end marker is empty" in at.error[0].value


def test_a_table_that_cannot_load_sends_the_user_back():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[DRAFT_KEY] = RunRequest(data="iris", target="species", task="regression",
                                             lift=LiftConfig(model="tiny"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "is not numeric" in at.error[0].value
    assert [b.label for b in at.button] == ["Back to data"]
