"""Rows become sentences and targets become answer text: LIFT's whole interface to the model.

Everything the model sees is decided here, so the same spec serializes training rows, the page's
preview and new rows at prediction time. Templates are plain text with ``{column}`` placeholders
filled by string substitution: nothing a user types is ever executed or formatted by Python's
``str.format`` (which can reach attributes).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from lift_core.errors import LiftError

TEMPLATES: dict[str, str] = {
    "lift_names": "LIFT with feature names: When we have sepal length=5.1, ..., what is the species?",
    "lift": "LIFT without names: When we have x1=5.10, x2=3.50, ..., what is this type?",
    "text": "TabLLM text: The sepal length is 5.1. The sepal width is 3.5. What is the species?",
    "list": "TabLLM list: - sepal length: 5.1 (one line per feature), then the question",
}
DEFAULT_TEMPLATE = "lift_names"
EOS = "<eos>"  # end marker meaning "the tokenizer's own end-of-sequence token"

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class PromptSpec:
    """How rows and answers are written; stored with every run and inside every adapter zip.

    ``template`` is a name from TEMPLATES or a custom text with ``{column}`` placeholders (write
    ``{{`` and ``}}`` for literal braces). ``precision`` is the number of decimals for real-valued
    features (None: automatic, at most 4 decimals as in LIFT's code but at least 4 significant
    digits, trailing zeros dropped; the nameless LIFT template defaults to 2 for classification, as in
    the paper's "x1=5.10", and keeps the automatic precision for regression, its "x1=-3.1416").
    ``verbalizer`` maps a class value (as text) to its answer text; a class missing from it answers
    with its own value. ``end_marker`` follows every answer so the model learns
    where an answer stops (``<eos>`` = the tokenizer's end token).
    """

    template: str = DEFAULT_TEMPLATE
    question: str | None = None
    precision: int | None = None
    verbalizer: dict[str, str] = field(default_factory=dict)
    end_marker: str = EOS
    missing_word: str = "missing"
    answer_digits: int = 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptSpec":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @property
    def is_named(self) -> bool:
        return self.template in TEMPLATES


def default_question(spec: PromptSpec, target: str, task: str) -> str:
    if spec.question is not None:
        return spec.question
    if spec.template == "lift":
        return "what is this type?" if task == "classification" else "what should be the y value?"
    return f"what is the {target}?" if task == "classification" else f"what should be the {target} value?"


def format_value(value: Any, precision: int | None, missing_word: str) -> str:
    """One feature value as text: missing values stay visible as a word, never as 'nan'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return missing_word
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and precision is None:
            return str(int(v))
        if precision is None:
            return _auto_decimals(v)
        return f"{v:.{precision}f}"
    return str(value).strip()


AUTO_DECIMALS = 4  # LIFT's code writes every real feature with "%.4f"
AUTO_SIGNIFICANT = 4  # ... but below 0.1 that drops digits (0.07871 -> 0.0787): keep at least this many


def _auto_decimals(v: float) -> str:
    """The shortest form of ``v`` rounded to 4 decimals, or to 4 significant digits if that keeps more.

    Values as a person writes them (5.1, 0.07871, 1065) stay as they are; values a program wrote at
    full float precision (-0.3936957105780956) become LIFT's -0.3937 instead of 17 digit tokens
    that lengthen every row and bury the digits that matter.
    """
    if not math.isfinite(v):  # zero never gets here: format_value writes whole numbers first
        return np.format_float_positional(v, trim="-")
    decimals = max(AUTO_DECIMALS, AUTO_SIGNIFICANT - 1 - math.floor(math.log10(abs(v))))
    return np.format_float_positional(v, precision=decimals, unique=True, trim="-")


def format_number_answer(y: float, digits: int = 4) -> str:
    """A regression target as answer text: ``digits`` significant digits, never scientific notation."""
    return np.format_float_positional(float(y), precision=digits, unique=True, fractional=False, trim="-")


def parse_number(text: str, end_marker: str | None = None) -> float | None:
    """Strictly read a generated regression answer; None when it is not exactly one number.

    The text is cut at the end marker FIRST (LIFT's code split on its markers in the wrong order
    and lost well-formed answers), then must be a single decimal number and nothing else.
    """
    if end_marker and end_marker in text:
        text = text.split(end_marker, 1)[0]
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


class Serializer:
    """Binds a PromptSpec to a table's features, target and classes."""

    def __init__(self, spec: PromptSpec, features: Sequence[str], target: str, task: str,
                 classes: Sequence[Any] | None = None) -> None:
        self.spec = spec
        self.features = list(features)
        self.target = target
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self.question = default_question(spec, target, task)
        nameless_class = spec.template == "lift" and task == "classification"  # the paper's "x1=5.10"
        self.precision = spec.precision if spec.precision is not None or not nameless_class else 2
        if not spec.is_named:
            self._check_custom_template()
        if task == "classification":
            if not self.classes:
                raise LiftError("classification needs the list of classes; none was given")
            self.answers = [self._verbalize(c) for c in self.classes]
            seen: dict[str, Any] = {}
            for cls_value, answer in zip(self.classes, self.answers):
                if not answer.strip():
                    raise LiftError(f"class {cls_value!r} has an empty answer text; give it a word in the label verbalizer")
                if answer in seen:
                    raise LiftError(
                        f"classes {seen[answer]!r} and {cls_value!r} both answer {answer!r}; "
                        "give each class its own answer text in the label verbalizer")
                seen[answer] = cls_value

    def _verbalize(self, value: Any) -> str:
        key = class_key(value)
        return str(self.spec.verbalizer.get(key, key)).strip()

    def _check_custom_template(self) -> None:
        text = self.spec.template
        if not text.strip():
            raise LiftError("the prompt template is empty; pick a named template or write one with {column} placeholders")
        unknown = [part for part, named in _template_parts(text) if named and part not in self.features]
        if unknown:
            braced = [f for f in self.features if "{" in f or "}" in f]
            hint = (f" (a column whose name holds a brace, such as {braced[0]!r}, cannot be a placeholder: "
                    "rename it in your file)" if braced else "")
            raise LiftError(
                f"the template names unknown column(s) {', '.join(repr(u) for u in unknown)}; "
                f"placeholders must be one of: {_short_list(self.features)}{hint}")

    def prompt(self, row: dict[str, Any] | pd.Series) -> str:
        values = {f: format_value(row[f], self.precision, self.spec.missing_word) for f in self.features}
        t = self.spec.template
        q = self.question
        if t == "lift_names":
            body = ", ".join(f"{f}={values[f]}" for f in self.features)
            return f"When we have {body}, {q}"
        if t == "lift":
            body = ", ".join(f"x{i + 1}={values[f]}" for i, f in enumerate(self.features))
            return f"When we have {body}, {q}"
        if t == "text":
            body = " ".join(f"The {f} is {values[f]}." for f in self.features)
            return f"{body} {_capitalize(q)}"
        if t == "list":
            body = "\n".join(f"- {f}: {values[f]}" for f in self.features)
            return f"{body}\n{_capitalize(q)}"
        return _render_custom(t, values)

    def prompts(self, frame: pd.DataFrame) -> list[str]:
        return [self.prompt(row) for row in frame[self.features].to_dict("records")]

    def answer(self, y: Any) -> str:
        """The answer text (without the end marker) for a target value."""
        if self.task == "classification":
            return self._verbalize(y)
        return format_number_answer(y, self.spec.answer_digits)

    def class_of_answer(self, answer: str) -> Any | None:
        """The class a generated answer names, or None when it names none (an invalid answer)."""
        text = answer.split(self.spec.end_marker, 1)[0] if self.spec.end_marker != EOS else answer
        text = text.strip()
        for cls_value, candidate in zip(self.classes or [], self.answers):
            if text == candidate:
                return cls_value
        return None


def class_key(value: Any) -> str:
    """The text form of a class value used as the verbalizer's key (1.0 and 1 read the same)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def _template_parts(template: str) -> list[tuple[str, bool]]:
    """The template read left to right as (text, is_placeholder) parts, ``{{``/``}}`` as literal
    braces: the check and the rendering must read it the same way, or a name the check never saw
    (``{a}}{b}``) fails at rendering."""
    parts: list[tuple[str, bool]] = []
    i = 0
    while i < len(template):
        if template.startswith(("{{", "}}"), i):
            parts.append((template[i], False))
            i += 2
        elif template[i] == "{":
            m = _PLACEHOLDER.match(template, i)
            if m is None:
                raise LiftError(f"unmatched '{{' at position {i} of the template; write '{{{{' for a literal brace")
            parts.append((m.group(1), True))
            i = m.end()
        else:
            parts.append((template[i], False))
            i += 1
    return parts


def _render_custom(template: str, values: dict[str, str]) -> str:
    return "".join(values[part] if named else part for part, named in _template_parts(template))


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _short_list(names: Iterable[str], n: int = 12) -> str:
    names = list(names)
    shown = ", ".join(repr(x) for x in names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")

