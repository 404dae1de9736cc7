"""Tables in, checked, split: everything between a user's file and rows ready to serialize.

Reading turns any common table file (or a Streamlit upload) into a DataFrame or a LiftError that
says what to fix; ``prepare`` picks target and features and handles missing values visibly;
``make_split`` applies LIFT's protocol (fixed stratified test set, seeded train/validation split).
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from charset_normalizer import from_bytes
from sklearn.model_selection import train_test_split

from lift_core.errors import LiftError

TASKS = ("classification", "regression")
MISSING = ("word", "drop")
MIN_ROWS = 5  # one test, one validation and at least three training rows
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 8192
_MAGIC = {b"PAR1": "parquet", b"PK\x03\x04": "xlsx", b"\xd0\xcf\x11\xe0": "xls"}
_EXCEL_ENGINES = {"xlsx": "openpyxl", "xls": "xlrd"}
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+(,\d+)?\s*$")
# An .xlsx is a zip and a Parquet file compresses its columns: what they unpack to may be this many
# times the upload limit, not more (a few-MB sheet of repeated cells can unpack to gigabytes).
UNPACK_FACTOR = 5


# ----------------------------------------------------------------------------------- reading


def read_table(
    source: str | Path | bytes | IO[bytes],
    name: str | None = None,
    max_bytes: int = 200 * 1024 * 1024,
) -> pd.DataFrame:
    """Read a table file (CSV/TSV/TXT, Excel, Parquet, JSON/JSON lines) into a DataFrame.

    ``source`` is a path, raw bytes or a binary file object (a Streamlit upload); ``name`` gives
    the file name, whose extension picks the format, when ``source`` carries none. The content's
    magic bytes win over a wrong extension (an .xlsx saved as .csv is still read). Text files get
    their encoding and delimiter detected; "?" counts as missing, as in UCI/OpenML tables. Column
    names are stripped and made unique; fully empty rows and unnamed empty columns are dropped.
    """
    data, label = _raw_bytes(source, name, max_bytes)
    if not data.strip():
        raise LiftError(f"{label} is empty; choose a file with a header row and data rows")
    kind = _kind(data, label)
    _check_unpacked_size(data, kind, label, UNPACK_FACTOR * max_bytes)
    frame = _parse(data, kind, label)
    frame = _clean(frame)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise LiftError(f"{label} has no data rows; choose a file with a header row and data rows")
    return frame


def _raw_bytes(source: object, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """All bytes of the source and a label for messages, refusing what exceeds ``max_bytes``."""
    too_big = (
        "{label} is larger than the {limit} limit; use a sample of its rows or raise max_bytes"
    )
    limit = _size_text(max_bytes)
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise LiftError(f"no such file: {path} ({what}); check the path")
        if path.stat().st_size > max_bytes:
            raise LiftError(too_big.format(label=label, limit=limit))
        return path.read_bytes(), label
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "the uploaded file"
    elif hasattr(source, "read"):
        label = name or getattr(source, "name", None) or "the uploaded file"
        if getattr(source, "seekable", lambda: False)():
            source.seek(0)  # a Streamlit upload read on an earlier rerun sits at its end
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    else:
        raise TypeError(f"read_table needs a path, bytes or a binary file object, not {source!r}")
    if len(data) > max_bytes:
        raise LiftError(too_big.format(label=label, limit=limit))
    return data, str(label)


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:.0f} MB" if n_bytes >= 1024 * 1024 else f"{n_bytes} bytes"


def _kind(data: bytes, label: str) -> str:
    """Which parser: the content's magic bytes first, then the file name's extension."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    ext = Path(label).suffix.lower()
    if ext in (".parquet", ".xlsx", ".xls"):
        raise LiftError(
            f"{label} has the extension {ext} but its content is not a {ext[1:]} file; "
            "export it again, or rename it to match its real format (for example .csv)"
        )
    if ext in (".json", ".jsonl", ".ndjson"):
        return "json"
    return "tsv" if ext == ".tsv" else "text"


def _check_unpacked_size(data: bytes, kind: str, label: str, limit: int) -> None:
    """Refuse a workbook or Parquet file whose contents unpack past ``limit``, from the sizes its
    own directory declares (zipfile never inflates a member past its declared size) or, for
    Parquet, at least 8 bytes a cell, before any parser holds it in memory. A damaged file is left
    to the parser, which says so."""
    size = None
    if kind == "xlsx":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                size = sum(info.file_size for info in zf.infolist())
        except (zipfile.BadZipFile, OSError):
            return
    elif kind == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(io.BytesIO(data)).metadata
            size = max(sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)),
                       8 * meta.num_rows * meta.num_columns)  # run-length encoded, a repeated value is ~free
        except Exception:  # noqa: BLE001 - pyarrow raises many types for a damaged file; _parse reports it
            return
    if size is not None and size > limit:
        raise LiftError(f"{label} unpacks to {_size_text(size)}, more than the {_size_text(limit)} this app reads "
                        f"from a {kind} file; use a sample of its rows")


def _parse(data: bytes, kind: str, label: str) -> pd.DataFrame:
    if kind == "parquet":
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise LiftError(
                f"could not read {label} as Parquet ({exc}); the file may be damaged, "
                "export it again"
            ) from exc
    if kind in _EXCEL_ENGINES:
        return _read_excel(data, kind, label)
    text = _decode(data, label)
    if kind == "json":
        return _read_json(text, label)
    return _read_delimited(text, "\t" if kind == "tsv" else _delimiter(text), label)


def _read_excel(data: bytes, kind: str, label: str) -> pd.DataFrame:
    engine = _EXCEL_ENGINES[kind]
    try:
        return pd.read_excel(io.BytesIO(data), sheet_name=0, engine=engine)
    except ImportError as exc:
        raise LiftError(
            f"reading the old Excel format of {label} needs the {engine} package; "
            f"pip install {engine}, or save the sheet as .xlsx or CSV"
        ) from exc
    except Exception as exc:  # openpyxl/zipfile raise many types for a damaged workbook
        raise LiftError(
            f"could not read {label} as an Excel workbook ({exc}); if it is a zip archive, "
            "unzip it first, otherwise open it in Excel and save it again as .xlsx or CSV"
        ) from exc


def _decode(data: bytes, label: str) -> str:
    """Text from bytes: a BOM or UTF-8 first, then the best guess among legacy encodings.

    charset_normalizer alone often picks cp1250 for short Western text ("naïve" -> "naďve"),
    so among its equally plausible guesses cp1252, the usual Excel-on-Windows export, wins.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise LiftError(
            f"{label} looks like a binary file, not a table (it holds NUL bytes); "
            "choose a CSV, Excel, Parquet or JSON file (decompress .gz/.zip files first)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = (matches := from_bytes(data)).best()
    tied = [m.encoding for m in matches if best is not None and m.chaos <= best.chaos]
    for encoding in (["cp1252"] if not tied or "cp1252" in tied else []) + tied:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")  # decodes any bytes


def _delimiter(text: str) -> str:
    """The candidate delimiter giving the widest header that most rows agree with."""
    lines = [line for line in text.splitlines() if line.strip()][:50]

    def score(delimiter: str) -> tuple[bool, float, int]:
        try:
            widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:  # a field past the csv module's 128 kB limit: pandas reads it, this cannot judge
            return False, 0.0, 0
        agree = sum(w == widths[0] for w in widths) / len(widths)
        return widths[0] > 1, agree, widths[0]

    return max(_DELIMITERS, key=score)


def _read_delimited(text: str, delimiter: str, label: str) -> pd.DataFrame:
    shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text), sep=delimiter, index_col=False, skipinitialspace=True,
                na_values=["?"],
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise LiftError(
            f"could not read {label} as a table with delimiter {shown} ({reason}); "
            "check that every row has as many fields as the header, or save it again as CSV"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise LiftError(f"{label} has no columns; choose a file with a header row") from exc
    return _decimal_commas(frame) if delimiter != "," else frame


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers written with a decimal comma (``3,5`` in a ``;`` file) become numbers."""
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty or pd.api.types.is_numeric_dtype(values):
            continue
        text = values.astype(str)
        if text.str.match(_DECIMAL_COMMA).all() and text.str.contains(",").any():
            frame[column] = pd.to_numeric(frame[column].str.replace(",", ".", regex=False))
    return frame


def _read_json(text: str, label: str) -> pd.DataFrame:
    """A list of records, one record, an object of columns, or JSON lines (a record per line)."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return pd.DataFrame(_json_lines(text, label))
    if isinstance(whole, dict) and all(isinstance(v, (list, dict)) for v in whole.values()):
        try:
            return pd.DataFrame(whole)
        except ValueError as exc:
            raise LiftError(
                f"the columns in {label} have different lengths ({exc}); "
                "give every column the same number of values"
            ) from exc
    records = whole if isinstance(whole, list) else [whole]
    if not all(isinstance(r, dict) for r in records):
        raise LiftError(
            f"{label} holds JSON but not a table; write a list of records like "
            '[{"a": 1, "b": "x"}, ...] or one record per line (JSON lines)'
        )
    return pd.DataFrame(records)


def _json_lines(text: str, label: str) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LiftError(
                f"line {number} of {label} is not valid JSON ({exc.msg}); "
                "write one JSON object per line, or a list of records"
            ) from exc
        if not isinstance(record, dict):
            raise LiftError(
                f"line {number} of {label} is not a JSON object; write one record like "
                '{"a": 1, "b": "x"} per line'
            )
        records.append(record)
    return records


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Stripped, filled, unique column names; no fully empty rows or unnamed empty columns."""
    names, seen = [], set()
    for position, column in enumerate(frame.columns):
        filled = column is not None and column == column  # NaN != NaN
        name = (str(column).strip() if filled else "") or f"Unnamed: {position}"
        unique, copy = name, 0
        while unique in seen:
            copy += 1
            unique = f"{name}.{copy}"
        seen.add(unique)
        names.append(unique)
    frame = frame.set_axis(names, axis=1)
    empty = [c for c in names if c.startswith("Unnamed: ") and frame[c].isna().all()]
    frame = frame.drop(columns=empty).dropna(how="all")
    return frame.reset_index(drop=True)


# ----------------------------------------------------------------------------------- task


def infer_task(y: pd.Series) -> str:
    """Guess "classification" or "regression" from the target's values.

    Rule: non-numeric values (strings, objects, booleans, categories) -> classification.
    Numbers that are all integer-valued with at most 20 distinct values, or with at most 5 % of
    the rows distinct, -> classification (labels coded as numbers). Anything else -> regression.
    Missing values are ignored.
    """
    values = y.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    n_distinct = values.nunique()
    if _integer_valued(values) and (n_distinct <= 20 or n_distinct <= 0.05 * len(values)):
        return "classification"
    return "regression"


def _integer_valued(values: pd.Series) -> bool:
    numbers = values.to_numpy(dtype=float)
    return bool(np.all(np.isfinite(numbers) & (numbers == np.round(numbers))))


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (readable in messages, JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class Prepared:
    """A table checked and reduced to features + target, with a record of what was done.

    ``frame`` holds the kept rows (index reset); missing feature values stay NaN when
    ``missing == "word"``. ``classes`` are the sorted target values for classification, in the
    data's own type. ``report`` has rows_in, rows_out, rows_dropped_missing_target,
    rows_dropped_missing_features, n_missing_per_feature and warnings (list of sentences).
    """

    frame: pd.DataFrame
    target: str
    task: str
    features: list[str]
    classes: list | None
    missing: str
    report: dict


def prepare(
    frame: pd.DataFrame,
    target: str,
    task: str | None = None,
    features: list[str] | None = None,
    missing: str = "word",
) -> Prepared:
    """Check the user's choices against the table and return the rows ready to serialize.

    ``task=None`` infers it (see ``infer_task``); ``features=None`` takes every other column;
    ``missing="word"`` keeps rows with missing features (the serializer writes a word for them),
    ``missing="drop"`` drops them. Rows with a missing target are always dropped, with a warning.
    """
    if missing not in MISSING:
        raise LiftError(f"missing={missing!r} is not an option; use 'word' or 'drop'")
    if task is not None and task not in TASKS:
        raise LiftError(
            f"unknown task {task!r}; use 'classification', 'regression' or None (infer it)"
        )
    _check_columns(frame, [target], "target")
    if features is None:
        features = [c for c in frame.columns if c != target]
    else:
        features = list(dict.fromkeys(features))
        _check_columns(frame, features, "feature")
        if target in features:
            raise LiftError(
                f"the features include the target {target!r}; remove it from the features"
            )
    if not features:
        raise LiftError(
            f"there are no feature columns besides the target {target!r}; "
            "pick at least one feature column"
        )

    table = frame[features + [target]].copy()
    warns: list[str] = []
    rows_in = len(table)
    no_target = table[target].isna()
    if no_target.all():
        raise LiftError(
            f"target {target!r} has no values (all {rows_in} rows are missing); "
            "pick another target column"
        )
    if no_target.any():
        table = table[~no_target]
        warns.append(f"dropped {int(no_target.sum())} rows whose target {target!r} is missing")
    nested = table[target].map(lambda v: isinstance(v, (list, dict, set, tuple))) \
        if table[target].dtype == object else pd.Series(False, index=table.index)
    if nested.any():  # JSON lines can hold them; a class or a number is one value
        raise LiftError(f"target {target!r} holds lists or mappings (for example "
                        f"{_plain(table[target][nested].iloc[0])!r:.60}); pick a column of single values")

    n_missing = {f: int(table[f].isna().sum()) for f in features}
    incomplete = table[features].isna().any(axis=1)
    if missing == "drop" and incomplete.any():
        if incomplete.all():
            raise LiftError(
                "every row has a missing feature value, so missing='drop' leaves no rows; "
                "use missing='word' or choose features with fewer gaps"
            )
        table = table[~incomplete]
        warns.append(f"dropped {int(incomplete.sum())} rows with a missing feature value")
    table = table.reset_index(drop=True)

    task, y = _resolve_task(table[target], target, task)
    table[target] = y
    classes = _classes(table[target], target, warns) if task == "classification" else None
    report = {
        "rows_in": rows_in,
        "rows_out": len(table),
        "rows_dropped_missing_target": int(no_target.sum()),
        "rows_dropped_missing_features": int(incomplete.sum()) if missing == "drop" else 0,
        "n_missing_per_feature": n_missing,
        "warnings": warns,
    }
    return Prepared(table, target, task, features, classes, missing, report)


def _check_columns(frame: pd.DataFrame, names: list, role: str) -> None:
    unknown = [n for n in names if n not in frame.columns]
    if unknown:
        shown = [str(c) for c in frame.columns[:12]]
        more = f" and {len(frame.columns) - 12} more" if len(frame.columns) > 12 else ""
        raise LiftError(
            f"unknown {role} column {', '.join(map(repr, unknown))}; "
            f"pick one of the table's columns: {', '.join(shown)}{more}"
        )


def _resolve_task(y: pd.Series, target: str, task: str | None) -> tuple[str, pd.Series]:
    """The task and the target column as it will be used (numbers for regression)."""
    numbers = _as_numbers(y)
    if task is None:  # numeric strings count as numbers; a categorical dtype stays labels
        categorical = isinstance(y.dtype, pd.CategoricalDtype)
        task = infer_task(y if numbers is None or categorical else numbers)
    if task == "regression":
        if numbers is None:
            bad = _first_non_number(y)
            raise LiftError(
                f"target {target!r} is not numeric (for example {bad!r}); regression needs "
                "numbers; use task 'classification' or clean the column"
            )
        if not np.isfinite(numbers.to_numpy(dtype=float)).all():
            raise LiftError(
                f"target {target!r} holds infinite values; regression needs finite numbers; "
                "remove those rows or use task 'classification'"
            )
        if numbers.nunique() < 2:
            raise LiftError(
                f"target {target!r} has the same value {_plain(numbers.iloc[0])!r} in every row; "
                "regression needs values that vary; pick another target"
            )
        return task, numbers
    if pd.api.types.is_float_dtype(y) and _integer_valued(y) and y.abs().max() < 2**53:
        return task, y.astype("int64")  # 1.0/2.0 labels (a float column from gaps) read as 1/2; 1e20 stays
    return task, y


def _as_numbers(y: pd.Series) -> pd.Series | None:
    """The target as numbers (numeric strings like "3.5" converted), or None if it is not."""
    if pd.api.types.is_bool_dtype(y):
        return None
    if pd.api.types.is_numeric_dtype(y):
        return y
    converted = pd.to_numeric(y.astype(str).str.strip(), errors="coerce")
    return converted if converted.notna().all() else None


def _first_non_number(y: pd.Series) -> object:
    if pd.api.types.is_bool_dtype(y):
        return _plain(y.iloc[0])
    converted = pd.to_numeric(y.astype(str).str.strip(), errors="coerce")
    return _plain(y[converted.isna()].iloc[0])


def _classes(y: pd.Series, target: str, warns: list[str]) -> list:
    values = [_plain(v) for v in pd.unique(y)]
    try:
        classes = sorted(values)
    except TypeError:  # mixed types, e.g. numbers and strings in one column
        classes = sorted(values, key=lambda v: (type(v).__name__, str(v)))
    if len(classes) < 2:
        raise LiftError(
            f"target {target!r} has one class {classes[0]!r}; classification needs at least two; "
            "pick another target or use regression"
        )
    if len(classes) > 50:
        warns.append(
            f"target {target!r} has {len(classes)} classes; with so many, classification is hard "
            "(a numeric target may suit regression better)"
        )
    return classes


# ----------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    """Row positions into ``Prepared.frame`` for training, validation and test (sorted)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    warnings: tuple[str, ...] = ()


def make_split(
    prep: Prepared, seed: int = 0, fixed_sizes: tuple[int, int, int] | None = None
) -> Split:
    """LIFT's protocol: 20 % test (stratified, random_state=0, whatever the seed), then the rest
    80/20 train/validation (stratified for classification, random_state=seed).

    ``fixed_sizes=(n_train, n_val, n_test)`` says the rows are already in that order (LIFT's
    synthetic regression sets) and returns those consecutive blocks.
    """
    n = len(prep.frame)
    if fixed_sizes is not None:
        sizes = tuple(int(s) for s in fixed_sizes)
        if len(sizes) != 3 or min(sizes) < 1 or sum(sizes) != n:
            raise LiftError(
                f"fixed sizes {tuple(fixed_sizes)} must be three positive counts adding up to the "
                f"table's {n} rows; fix the sizes or let the split be drawn"
            )
        edges = np.cumsum(sizes)
        return Split(np.arange(edges[0]), np.arange(edges[0], edges[1]), np.arange(edges[1], n))
    if n < MIN_ROWS:
        raise LiftError(
            f"only {n} rows; a train/validation/test split needs at least {MIN_ROWS}; add rows"
        )
    codes = None
    if prep.task == "classification":  # codes in sorted class order, as StratifiedShuffleSplit
        lookup = {value: code for code, value in enumerate(prep.classes)}
        codes = prep.frame[prep.target].map(lookup).to_numpy(dtype=int)
    warns: list[str] = []
    dev, test = _part(np.arange(n), codes, prep.classes, 0, "test", warns)
    train, val = _part(dev, codes, prep.classes, seed, "validation", warns)
    return Split(np.sort(train), np.sort(val), np.sort(test), tuple(warns))


def _part(
    rows: np.ndarray,
    codes: np.ndarray | None,
    classes: list | None,
    seed: int,
    part: str,
    warns: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` 80/20, stratified by class when possible; say so when it is not."""
    if codes is not None:
        try:
            train, held = train_test_split(
                rows, test_size=0.2, random_state=seed, stratify=codes[rows]
            )
            return train, held
        except ValueError:
            counts = np.bincount(codes[rows], minlength=len(classes))
            rarest = int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
            n_classes = np.count_nonzero(counts)
            why = (
                f"class {classes[rarest]!r} has only {counts[rarest]} row there"
                if counts[rarest] < 2
                else f"{n_classes} classes do not fit in {len(rows)} rows split 80/20"
            )
            warns.append(f"the {part} rows were drawn at random, not stratified: {why}")
    train, held = train_test_split(rows, test_size=0.2, random_state=seed)
    return train, held


def limit_train(prep: Prepared, split: Split, rows: int, seed: int = 0) -> Split:
    """Keep only ``rows`` of the training rows (stratified by class when possible, drawn by
    ``seed``); validation and test rows stay as they are, so sizes compare on the same test.

    For learning curves (LIFT's sample-size study): how many rows does the model need?
    """
    if rows < 2:
        raise LiftError(f"training rows must be at least 2 (got {rows}); leave it unset to use every training row")
    if rows >= len(split.train):
        return split
    warns = list(split.warnings)
    stratify = None
    if prep.task == "classification":
        codes = prep.frame[prep.target].iloc[split.train].to_numpy()
        _, counts = np.unique(codes, return_counts=True)
        if counts.min() >= 2 and rows >= len(counts) and len(split.train) - rows >= len(counts):
            stratify = codes
        else:
            warns.append(f"the {rows} training rows were drawn at random, not stratified: stratifying "
                         f"{len(counts)} classes needs 2 rows of each, and {len(counts)} rows kept and left out")
    kept, _ = train_test_split(split.train, train_size=rows, random_state=seed, stratify=stratify)
    return Split(np.sort(kept), split.val, split.test, tuple(warns))
