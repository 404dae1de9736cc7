"""The Predict & export page on the shared finished tiny iris run."""


import numpy as np
import pytest
from streamlit.runtime import memory_media_file_storage

from lift_core.builtin import load_builtin
from lift_core.bundle import read_bundle, read_manifest
from lift_core.data import read_table
from lift_core.estimator import load_estimator, predictions_table
from lift_core.store import RunStore
from apptest_pages import open_page

PAGE = "pages/5_Predict.py"


@pytest.fixture
def workspace(finished_copy):
    """The page unpacks adapters into its workspace, so it works on a copy."""
    return finished_copy


@pytest.fixture
def downloads(monkeypatch):
    """The bytes handed to each download button, by file name (AppTest keeps no media files)."""
    seen = {}
    original = memory_media_file_storage.MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(memory_media_file_storage.MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


def _page(run_id=None):
    return open_page(PAGE, run_id, timeout=120)


def test_page_shows_the_run_and_its_adapter_downloads(workspace, downloads):
    _, run_id = workspace
    at = _page(run_id)
    assert not at.error
    assert at.selectbox[0].value == run_id
    assert "`tiny`" in at.markdown[0].value and "species" in at.markdown[0].value
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download adapter.zip"]
    data = downloads[f"lift-adapter-{run_id}.zip"]
    manifest = read_manifest(data)
    assert manifest["base_model"] == "tiny"
    assert manifest["target"] == "species" and len(manifest["features"]) == 4


def test_uploaded_rows_are_predicted_like_the_estimator_does(workspace, tmp_path):
    ws, run_id = workspace
    rows = load_builtin("iris").frame.iloc[[0, 60, 120, 149]]
    csv = rows.drop(columns="species").to_csv(index=False).encode()
    at = _page(run_id)
    at.file_uploader[0].upload("new.csv", csv, "text/csv")
    at.run()
    assert not at.exception and not at.error
    [predict] = [b for b in at.button if b.label.startswith("Predict")]
    assert predict.label == "Predict 4 row(s)"
    predict.click()
    at.run()
    assert not at.exception and not at.error
    [shown] = [d.value for d in at.dataframe if any(str(c).startswith("P(") for c in d.value.columns)]

    read_bundle(RunStore(ws).run_dir(run_id) / "adapter.zip", tmp_path / "direct")
    expected = predictions_table(load_estimator(tmp_path / "direct" / "adapter"), read_table(csv, name="new.csv"))
    p_cols = [c for c in expected.columns if str(c).startswith("P(")]
    assert p_cols == ["P(setosa)", "P(versicolor)", "P(virginica)"]
    assert list(shown.columns) == list(expected.columns)
    np.testing.assert_allclose(shown[p_cols].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(shown[p_cols].to_numpy(float), expected[p_cols].to_numpy(float), rtol=1e-5)
    assert shown["species (predicted)"].tolist() == expected["species (predicted)"].tolist()
    assert "Download predictions (CSV)" in [b.label for b in at.get("download_button")]


def test_missing_columns_are_named(workspace):
    _, run_id = workspace
    rows = load_builtin("iris").frame.iloc[:3].drop(columns=["species", "petal width"])
    at = _page(run_id)
    at.file_uploader[0].upload("partial.csv", rows.to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception
    assert "'petal width'" in at.error[0].value
    assert not [b for b in at.button if b.label.startswith("Predict")]


def test_adapter_zip_upload_good_and_malformed(workspace):
    ws, run_id = workspace
    at = _page()
    at.radio[0].set_value("An adapter zip file")
    at.run()
    good = (RunStore(ws).run_dir(run_id) / "adapter.zip").read_bytes()
    at.file_uploader[0].set_value(("adapter.zip", good, "application/zip"))
    at.run()
    assert not at.exception and not at.error
    assert "`tiny`" in at.markdown[0].value
    [trust] = [c for c in at.checkbox if c.key == "predict_trust_remote_code"]
    assert trust.value is False  # an uploaded zip never switches on a model's own code by itself

    at.file_uploader[0].set_value(("adapter.zip", b"PK\x03\x04 this is not a zip", "application/zip"))
    at.run()
    assert not at.exception
    assert at.error and "zip" in at.error[0].value.lower()
    assert not at.dataframe  # nothing from the previous bundle is left on the page


def test_one_row_form_predicts_that_row(workspace, tmp_path):
    ws, run_id = workspace
    row = load_builtin("iris").frame.iloc[[120]].drop(columns="species").reset_index(drop=True)
    at = _page(run_id)
    at.radio[1].set_value("Fill in one row")
    at.run()
    assert [n.label for n in at.number_input] == list(row.columns)  # float features get number inputs
    for box in at.number_input:
        box.set_value(float(row.at[0, box.label]))
    [submit] = [b for b in at.button if b.label == "Predict"]
    submit.click()
    at.run()
    assert not at.exception and not at.error
    [shown] = [d.value for d in at.dataframe if "species (predicted)" in d.value.columns]

    read_bundle(RunStore(ws).run_dir(run_id) / "adapter.zip", tmp_path / "direct")
    expected = predictions_table(load_estimator(tmp_path / "direct" / "adapter"), row)
    assert len(shown) == 1
    np.testing.assert_allclose(shown.filter(like="P(").to_numpy(float), expected.filter(like="P(").to_numpy(float),
                               rtol=1e-5)
