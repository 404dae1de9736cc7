"""Reading, preparing and splitting tables: formats round-trip, bad input gives helpful errors."""

import io

import numpy as np
import pandas as pd
import pytest

from lift_core.data import Prepared, infer_task, make_split, prepare, read_table
from lift_core.errors import LiftError

SMALL = pd.DataFrame(
    {"sepal length": [5.1, 4.9, 6.3], "colour": ["blue", "red", "green"], "n": [1, 2, 3]}
)


def _same(frame: pd.DataFrame, expected: pd.DataFrame = SMALL) -> None:
    assert list(frame.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False, check_index_type=False)
    assert pd.api.types.is_float_dtype(frame["sepal length"])
    assert pd.api.types.is_integer_dtype(frame["n"])
    assert frame["colour"].tolist() == ["blue", "red", "green"]


# ---------------------------------------------------------------------------- reading formats


def test_csv_with_semicolons_and_decimal_commas(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sepal length;colour;n\n5,1;blue;1\n4,9;red;2\n6,3;green;3\n")
    _same(read_table(path))


def test_tsv_and_pipe_txt(tmp_path):
    (tmp_path / "t.tsv").write_text(SMALL.to_csv(sep="\t", index=False))
    (tmp_path / "t.txt").write_text(SMALL.to_csv(sep="|", index=False))
    _same(read_table(tmp_path / "t.tsv"))
    _same(read_table(str(tmp_path / "t.txt")))


def test_cp1252_csv_keeps_accents(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,city\nJosé,Zürich\nnaïve,Orléans\n".encode("cp1252"))
    frame = read_table(path)
    assert frame["name"].tolist() == ["José", "naïve"]
    assert frame["city"].tolist() == ["Zürich", "Orléans"]


def test_utf8_bom_and_messy_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf a ,b,b,,\n1,x,y,,\n2,z,w,,\n")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b", "b.1"]  # stripped, unique, empty column dropped
    assert frame["a"].tolist() == [1, 2]


def test_empty_header_is_filled(tmp_path):
    path = tmp_path / "idx.csv"
    path.write_text(",value\n0,3.5\n1,4.5\n")
    assert list(read_table(path).columns) == ["Unnamed: 0", "value"]


def test_xlsx(tmp_path):
    path = tmp_path / "t.xlsx"
    SMALL.to_excel(path, index=False)
    _same(read_table(path))


def test_parquet_and_upload_bytes(tmp_path):
    path = tmp_path / "t.parquet"
    SMALL.to_parquet(path)
    _same(read_table(path))
    _same(read_table(io.BytesIO(path.read_bytes()), name="upload.parquet"))


def test_content_wins_over_wrong_extension(tmp_path):
    buffer = io.BytesIO()
    SMALL.to_excel(buffer, index=False)
    _same(read_table(buffer.getvalue(), name="actually_excel.csv"))


def test_jsonl_and_json_forms(tmp_path):
    (tmp_path / "t.jsonl").write_text(SMALL.to_json(orient="records", lines=True))
    _same(read_table(tmp_path / "t.jsonl"))
    (tmp_path / "list.json").write_text(SMALL.to_json(orient="records"))
    _same(read_table(tmp_path / "list.json"))
    (tmp_path / "lines.json").write_text(SMALL.to_json(orient="records", lines=True))
    _same(read_table(tmp_path / "lines.json"))


def test_unknown_extension_is_sniffed_as_csv():
    upload = io.BytesIO(b"a;b\n1;x\n2;y\n")
    upload.name = "export.dat"
    frame = read_table(upload)
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == [1, 2]


def test_upload_read_twice_like_a_streamlit_rerun():
    upload = io.BytesIO(SMALL.to_csv(index=False).encode())
    upload.name = "upload.csv"
    _same(read_table(upload))
    _same(read_table(upload))


def test_question_mark_is_missing():
    frame = read_table(b"a,b\n1,?\n2,3.5\n", name="uci.csv")
    assert frame["b"].isna().tolist() == [True, False]
    assert pd.api.types.is_float_dtype(frame["b"])


# ---------------------------------------------------------------------------- reading errors


def _error(match: str, *args, **kwargs) -> str:
    with pytest.raises(LiftError, match=match) as info:
        read_table(*args, **kwargs)
    return str(info.value)


def test_missing_file(tmp_path):
    message = _error("no such file", tmp_path / "nope.csv")
    assert "nope.csv" in message and "check the path" in message


def test_empty_files(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    _error("empty", tmp_path / "zero.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    _error("no data rows", tmp_path / "header.csv")


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert "choose a CSV" in _error("binary", path)


def test_fake_parquet_and_too_large(tmp_path):
    _error("not a parquet file", b"a,b\n1,2\n", name="x.parquet")
    _error("larger than", b"a,b\n1,2\n" * 100, name="big.csv", max_bytes=50)
    path = tmp_path / "big.csv"
    path.write_text("a,b\n1,2\n" * 100)
    _error("raise max_bytes", path, max_bytes=50)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_a_small_file_that_unpacks_past_the_limit_is_refused_before_it_is_parsed(fmt, monkeypatch):
    """A few kB of repeated cells can unpack to gigabytes inside the app's process."""
    from lift_core import data

    buffer = io.BytesIO()
    frame = pd.DataFrame({f"c{i}": ["same text in every cell"] * 3000 for i in range(8)})
    frame.to_excel(buffer, index=False) if fmt == "xlsx" else frame.to_parquet(buffer)
    packed = buffer.getvalue()
    monkeypatch.setattr(data, "_parse", lambda *a: pytest.fail("parsed a file past the limit"))
    _error(f"unpacks to .*this app reads from a {fmt} file; use a sample of its rows", packed, name=f"t.{fmt}",
           max_bytes=len(packed) + 1)  # within the upload limit itself
    monkeypatch.undo()
    assert read_table(packed, name=f"t.{fmt}", max_bytes=10 * len(packed)).shape == (3000, 8)


def test_ragged_rows_and_bad_json():
    assert "line 3" in _error("every row has as many fields", b"a,b\n1,2\n3,4,5,6\n", name="r.csv")
    assert "line 2" in _error("not valid JSON", b'{"a": 1}\n{"a": \n', name="r.jsonl")
    _error("not a table", b"[1, 2, 3]", name="r.json")


# ---------------------------------------------------------------------------- infer_task


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 1, 0, 2], "classification"),
        ([1.0, 2.0, 1.0, np.nan], "classification"),
        (list(range(21)), "regression"),  # 21 distinct integers, all rows distinct
        ([0.5, 1.5, 0.5, 1.5], "regression"),
        ([i % 30 for i in range(1000)], "classification"),  # 30 distinct integers = 3 % of rows
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values)) == task


def test_infer_task_category():
    assert infer_task(pd.Series([1.5, 2.5, 3.5], dtype="category")) == "classification"


# ---------------------------------------------------------------------------- prepare


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "z": ["a", "b", "c", None, "e", "f"],
            "label": ["no", "yes", "no", "yes", None, "no"],
            "price": ["3.5", "4", "2.25", "1", "7", "9.5"],
        }
    )


def test_prepare_defaults_drop_missing_target_with_warning():
    prep = prepare(_table(), "label")
    assert isinstance(prep, Prepared)
    assert prep.task == "classification" and prep.classes == ["no", "yes"]
    assert prep.features == ["x", "z", "price"]
    assert list(prep.frame.columns) == ["x", "z", "price", "label"]
    assert list(prep.frame.index) == [0, 1, 2, 3, 4]
    report = prep.report
    assert (report["rows_in"], report["rows_dropped_missing_target"]) == (6, 1)
    assert any("target 'label' is missing" in w for w in report["warnings"])


def test_missing_word_keeps_nan_and_counts():
    prep = prepare(_table(), "label", features=["x", "z"], missing="word")
    assert len(prep.frame) == 5
    assert prep.frame["x"].isna().sum() == 1 and prep.frame["z"].isna().sum() == 1
    assert prep.report["n_missing_per_feature"] == {"x": 1, "z": 1}
    assert prep.report["rows_dropped_missing_features"] == 0


def test_missing_drop_counts_and_warns():
    prep = prepare(_table(), "label", features=["x", "z"], missing="drop")
    assert len(prep.frame) == 3
    assert not prep.frame[["x", "z"]].isna().any().any()
    assert prep.report["rows_dropped_missing_features"] == 2
    assert any("dropped 2 rows with a missing feature" in w for w in prep.report["warnings"])


def test_missing_drop_leaving_nothing():
    frame = pd.DataFrame({"x": [np.nan, np.nan], "y": ["a", "b"]})
    with pytest.raises(LiftError, match="missing='word'"):
        prepare(frame, "y", missing="drop")
    with pytest.raises(LiftError, match="'word' or 'drop'"):
        prepare(frame, "y", missing="zero")


def test_regression_converts_numeric_strings():
    prep = prepare(_table(), "price", features=["x"], task="regression")
    assert prep.frame["price"].tolist() == [3.5, 4.0, 2.25, 1.0, 7.0, 9.5]
    assert prep.classes is None


def test_regression_rejects_words():
    with pytest.raises(LiftError, match="'yes'|'no'") as info:
        prepare(_table().dropna(subset=["label"]), "label", task="regression")
    assert "classification" in str(info.value)


def test_unknown_columns_list_the_choices():
    with pytest.raises(LiftError, match="pick one of") as info:
        prepare(_table(), "lable")
    assert "'lable'" in str(info.value) and "label" in str(info.value)
    with pytest.raises(LiftError, match="unknown feature column 'w'"):
        prepare(_table(), "label", features=["x", "w"])
    wide = pd.DataFrame({f"c{i}": [1, 2] for i in range(40)})
    with pytest.raises(LiftError, match="and 28 more"):
        prepare(wide, "nope")


def test_bad_feature_choices():
    with pytest.raises(LiftError, match="include the target"):
        prepare(_table(), "label", features=["x", "label"])
    with pytest.raises(LiftError, match="at least one feature"):
        prepare(_table(), "label", features=[])
    with pytest.raises(LiftError, match="unknown task"):
        prepare(_table(), "label", task="clustering")


def test_one_class_and_all_missing_target():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "a", None], "e": [np.nan] * 3})
    with pytest.raises(LiftError) as info:
        prepare(frame, "y")
    assert str(info.value) == (
        "target 'y' has one class 'a'; classification needs at least two; "
        "pick another target or use regression"
    )
    with pytest.raises(LiftError, match="no values"):
        prepare(frame, "e")


def test_classes_keep_their_type_and_many_classes_warn():
    frame = pd.DataFrame({"x": range(8), "y": [3.0, 1.0, np.nan, 2.0, 1.0, 3.0, 2.0, 1.0]})
    prep = prepare(frame, "y")
    assert prep.classes == [1, 2, 3] and all(type(c) is int for c in prep.classes)
    floats = pd.DataFrame({"x": range(100), "y": np.linspace(0, 1, 100)})
    prep = prepare(floats, "y", task="classification")
    assert len(prep.classes) == 100
    assert any("100 classes" in w for w in prep.report["warnings"])
    assert prepare(floats, "y").task == "regression"
    sizes = pd.DataFrame({"x": range(4), "y": pd.Categorical(["1.5", "2.5", "1.5", "3.5"])})
    assert prepare(sizes, "y").classes == ["1.5", "2.5", "3.5"]
    numeric_text = pd.DataFrame({"x": range(4), "y": ["1.5", "2.25", "3.5", "4.75"]})
    assert prepare(numeric_text, "y").task == "regression"


# ---------------------------------------------------------------------------- split


def _prepared(n_per_class=(50, 30, 20)) -> Prepared:
    labels = np.concatenate([[name] * k for name, k in zip("abc", n_per_class)])
    frame = pd.DataFrame({"x": np.arange(len(labels)), "y": labels})
    return prepare(frame, "y")


def test_split_is_stratified_disjoint_and_covering():
    prep = _prepared()
    split = make_split(prep, seed=0)
    parts = [split.train, split.val, split.test]
    assert sum(len(p) for p in parts) == 100 and len(split.test) == 20
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    test_labels = prep.frame["y"].iloc[split.test].value_counts()
    for name, total in zip("abc", (50, 30, 20)):
        assert abs(test_labels[name] - 0.2 * total) <= 1
    assert split.warnings == ()


def test_split_seeds():
    prep = _prepared()
    first, again, other = make_split(prep, 0), make_split(prep, 0), make_split(prep, 1)
    for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.test, other.test)
    assert set(first.val) != set(other.val)
    assert set(first.train) | set(first.val) == set(other.train) | set(other.val)


def test_split_falls_back_when_a_class_is_tiny():
    prep = _prepared((40, 20, 1))
    split = make_split(prep, 0)
    assert len(split.test) + len(split.val) + len(split.train) == 61
    assert any("not stratified" in w and "'c'" in w for w in split.warnings)


def test_split_too_few_rows_and_regression():
    tiny = prepare(pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1]}), "y")
    with pytest.raises(LiftError, match="at least 5"):
        make_split(tiny)
    reg = prepare(pd.DataFrame({"x": range(50), "y": np.linspace(0, 1, 50) ** 2}), "y")
    split = make_split(reg, 3)
    assert (len(split.train), len(split.val), len(split.test)) == (32, 8, 10)


def test_fixed_sizes():
    prep = prepare(pd.DataFrame({"x": range(10), "y": np.linspace(0, 1, 10) ** 2}), "y")
    split = make_split(prep, seed=5, fixed_sizes=(6, 2, 2))
    assert split.train.tolist() == list(range(6))
    assert split.val.tolist() == [6, 7] and split.test.tolist() == [8, 9]
    with pytest.raises(LiftError, match="adding up to the table's 10 rows"):
        make_split(prep, fixed_sizes=(6, 2, 1))


def test_limit_train_keeps_a_stratified_seeded_subset_and_leaves_validation_and_test_alone():
    from lift_core.builtin import load_builtin
    from lift_core.data import limit_train, make_split, prepare

    b = load_builtin("iris")
    prep = prepare(b.frame, b.target)
    split = make_split(prep, seed=1)
    small = limit_train(prep, split, 12, seed=1)
    assert len(small.train) == 12 and set(small.train) <= set(split.train)
    np.testing.assert_array_equal(small.val, split.val)
    np.testing.assert_array_equal(small.test, split.test)
    assert prep.frame[prep.target].iloc[small.train].value_counts().tolist() == [4, 4, 4]  # stratified
    np.testing.assert_array_equal(limit_train(prep, split, 12, seed=1).train, small.train)  # seeded
    assert limit_train(prep, split, 10_000) is split  # more than there are: all of them


def test_limit_train_to_all_but_one_row_draws_at_random_and_says_why():
    """95 of iris's 96 leaves one row out, too few to stratify 3 classes (sklearn raised)."""
    from lift_core.builtin import load_builtin
    from lift_core.data import limit_train, make_split, prepare

    b = load_builtin("iris")
    prep = prepare(b.frame, b.target)
    split = make_split(prep, seed=0)
    kept = limit_train(prep, split, len(split.train) - 1)
    assert len(kept.train) == len(split.train) - 1
    assert "drawn at random, not stratified" in kept.warnings[-1]


def test_a_target_of_lists_is_refused_with_a_message():
    frame = read_table(b'{"a": 1, "tags": [1, 2]}\n{"a": 2, "tags": [3]}\n', name="x.jsonl")
    with pytest.raises(LiftError, match=r"target 'tags' holds lists or mappings \(for example \[1, 2\]\)"):
        prepare(frame, "tags")


def test_whole_float_labels_past_int64_stay_distinct_floats():
    prep = prepare(pd.DataFrame({"x": range(6), "y": [1e20, 2e20] * 3}), "y", task="classification")
    assert prep.classes == [1e20, 2e20]  # astype(int64) overflowed both to one negative class


def test_a_csv_with_a_field_past_the_csv_modules_limit_still_reads():
    frame = read_table(("a,b\n1," + "x" * 200_000 + "\n2,y\n").encode(), name="big.csv")
    assert frame.shape == (2, 2) and len(frame.at[0, "b"]) == 200_000


def test_limit_train_refuses_fewer_than_two_rows():
    from lift_core.builtin import load_builtin
    from lift_core.data import limit_train, make_split, prepare

    b = load_builtin("iris")
    prep = prepare(b.frame, b.target)
    with pytest.raises(LiftError, match="at least 2"):
        limit_train(prep, make_split(prep), 1)
