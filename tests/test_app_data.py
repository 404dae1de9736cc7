"""The Data page: built-in or uploaded table, preview, target chart, split sizes, clear errors."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lift_core.draft import DRAFT_KEY

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Data.py")
GOOD_CSV = "\n".join(["width,height,colour,same,kind"]
                     + [f"{i % 7},{(i * 3) % 11},{'red' if i % 2 else 'blue'},1,{'ab'[i % 2]}" for i in range(20)]
                     ).encode()


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.radio(key="data_source").set_value("Upload a file").run()
    assert not at.exception
    at.file_uploader(key="upload").set_value((name, content, "text/csv")).run()
    assert not at.exception
    return at


def test_iris_by_default_with_preview_chart_and_split():
    at = _page()
    assert at.selectbox(key="builtin").value == "iris"
    assert any("Iris flowers" in c.value for c in at.caption)
    preview, summary = at.dataframe[0].value, at.dataframe[1].value
    assert list(preview.columns) == ["sepal length", "sepal width", "petal length", "petal width", "species"]
    assert len(preview) == 10
    assert summary["type"].tolist() == ["number"] * 4 + ["category"]
    assert at.selectbox(key="target").value == "species"
    assert at.selectbox(key="task").value == "classification"
    assert at.multiselect(key="features").value == ["sepal length", "sepal width", "petal length", "petal width"]
    assert _metrics(at) == {"Training rows": "96", "Validation rows": "24", "Test rows": "30"}
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["data"][0]["x"] == ["setosa", "versicolor", "virginica"]
    assert not at.error
    draft = at.session_state[DRAFT_KEY]
    assert (draft.data, draft.target, draft.task, draft.missing, draft.seed) == (
        "iris", "species", "classification", "word", 0)


def test_choices_update_the_draft():
    at = _page()
    at.selectbox(key="builtin").set_value("diabetes").run()
    assert not at.exception and not at.error
    draft = at.session_state[DRAFT_KEY]
    assert (draft.data, draft.target, draft.task) == ("diabetes", "progression", "regression")
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["type"] == "histogram"
    at.multiselect(key="features").set_value(["age", "bmi"]).run()
    at.number_input(key="split_seed").set_value(3).run()
    at.radio(key="missing").set_value("drop").run()
    assert not at.exception and not at.error
    draft = at.session_state[DRAFT_KEY]
    assert (draft.features, draft.seed, draft.missing) == (["age", "bmi"], 3, "drop")


def test_a_valid_csv_upload_is_saved_and_split():
    at = _upload(_page(), "shapes.csv", GOOD_CSV)
    assert not at.error
    draft = at.session_state[DRAFT_KEY]
    assert Path(draft.data).name == "shapes.csv" and Path(draft.data).read_bytes() == GOOD_CSV
    assert (draft.target, draft.task) == ("kind", "classification")
    assert draft.features == ["width", "height", "colour", "same"]
    assert sum(int(v) for v in _metrics(at).values()) == 20
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02binary\xff\x00" * 20, "looks like a binary file"),
    (b"", "is empty"),
])
def test_a_malformed_upload_shows_an_error(content, message):
    at = _upload(_page(), "broken.csv", content)
    assert len(at.error) == 1 and message in at.error[0].value
    assert at.session_state[DRAFT_KEY].data == "iris"  # the draft keeps the last good table
    assert not at.get("plotly_chart")


def test_a_one_class_target_shows_the_error():
    at = _upload(_page(), "shapes.csv", GOOD_CSV)
    at.selectbox(key="target").set_value("same").run()
    assert not at.exception
    assert len(at.error) == 1 and "target 'same' has one class 1" in at.error[0].value
    assert not at.metric


def test_a_text_target_cannot_be_regression():
    at = _page()
    at.selectbox(key="task").set_value("regression").run()
    assert not at.exception
    assert len(at.error) == 1 and "target 'species' is not numeric" in at.error[0].value


def test_next_opens_prompts_with_the_choices_and_coming_back_keeps_them():
    from lift_core.config import LiftConfig
    from lift_core.experiment import RunRequest

    at = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=60)
    at.session_state[DRAFT_KEY] = RunRequest(data="iris", lift=LiftConfig(model="tiny"))
    at.run()
    at.switch_page("pages/1_Data.py").run()
    at.selectbox(key="builtin").set_value("diabetes").run()
    at.multiselect(key="features").set_value(["age", "bmi"]).run()
    at.button(key="next_prompts").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Prompts"]
    assert len(at.code) == 5
    assert all(c.value.startswith("When we have age=") and "what should be the progression value? " in c.value
               for c in at.code)
    at.switch_page("pages/1_Data.py").run()
    assert not at.exception
    assert at.selectbox(key="builtin").value == "diabetes"
    assert at.multiselect(key="features").value == ["age", "bmi"]
