import math

import numpy as np
import pandas as pd
import pytest

from lift_core.errors import LiftError
from lift_core.serialize import PromptSpec, Serializer, format_number_answer, format_value, parse_number

ROW = {"sepal length": 5.1, "petal width (cm)": 0.2, "colour/shade": "red"}
FEATURES = list(ROW)


def ser(template="lift_names", **kw):
    return Serializer(PromptSpec(template=template, **kw), FEATURES, "species", "classification",
                      ["setosa", "virginica"])


def test_lift_with_names():
    assert ser().prompt(ROW) == (
        "When we have sepal length=5.1, petal width (cm)=0.2, colour/shade=red, what is the species?")


def test_lift_without_names_uses_positions_and_two_decimals():
    assert ser("lift").prompt(ROW) == "When we have x1=5.10, x2=0.20, x3=red, what is this type?"


def test_tabllm_text_and_list():
    assert ser("text").prompt(ROW) == (
        "The sepal length is 5.1. The petal width (cm) is 0.2. The colour/shade is red. What is the species?")
    assert ser("list").prompt(ROW) == (
        "- sepal length: 5.1\n- petal width (cm): 0.2\n- colour/shade: red\nWhat is the species?")


def test_custom_template_with_odd_names_and_literal_braces():
    s = ser("A {{flower}} with {sepal length} and {petal width (cm)} cm, {colour/shade}: kind?")
    assert s.prompt(ROW) == "A {flower} with 5.1 and 0.2 cm, red: kind?"


def test_custom_template_never_executes_code():
    s = Serializer(PromptSpec(template="{a.__class__} {a!r}"), ["a.__class__", "a!r"], "y", "classification", [0, 1])
    assert s.prompt({"a.__class__": 1, "a!r": 2}) == "1 2"


def test_custom_template_unknown_column_is_a_clear_error():
    with pytest.raises(LiftError, match="unknown column.*'petal'"):
        ser("{petal} is it?")


def test_the_check_reads_braces_as_rendering_does():
    # "}}" right after a placeholder: left to right that is "{petal}" then a literal "}", so the
    # check must name 'petal' (scanning with every "}}" removed once hid it, and rendering failed)
    with pytest.raises(LiftError, match="unknown column.*'petal'"):
        ser("x {petal}}{sepal length}")
    assert ser("{sepal length}}}").prompt(ROW) == "5.1}"
    with pytest.raises(LiftError, match="unmatched '{' at position 2"):
        ser("x {sepal length")


def test_a_column_with_a_brace_in_its_name_says_it_cannot_be_a_placeholder():
    s = Serializer(PromptSpec(template="lift_names"), ["cost}", "b"], "y", "classification", [0, 1])
    assert s.prompt({"cost}": 1, "b": 2}).startswith("When we have cost}=1, b=2")
    with pytest.raises(LiftError, match=r"unknown column\(s\) 'cost'.*'cost}', cannot be a placeholder"):
        Serializer(PromptSpec(template="{cost}}"), ["cost}", "b"], "y", "classification", [0, 1])


def test_missing_values_are_written_as_a_word():
    row = dict(ROW, **{"sepal length": float("nan"), "colour/shade": None})
    assert ser().prompt(row) == (
        "When we have sepal length=missing, petal width (cm)=0.2, colour/shade=missing, what is the species?")
    assert ser(missing_word="unknown").prompt(row).startswith("When we have sepal length=unknown")


def test_precision():
    assert format_value(3.14159, 2, "m") == "3.14"
    assert format_value(3.14159, None, "m") == "3.1416"
    assert format_value(2.0, None, "m") == "2"
    assert format_value(np.int64(7), 3, "m") == "7"
    assert ser(precision=0).prompt(ROW).startswith("When we have sepal length=5, petal width (cm)=0,")


@pytest.mark.parametrize("value, text", [
    (5.1, "5.1"), (1065.0, "1065"), (-0.3936957105780956, "-0.3937"),  # LIFT's %.4f, zeros dropped
    (0.07871, "0.07871"), (0.0006185, "0.0006185"), (-1e-05, "-0.00001"),  # 4 significant digits kept
    (123.456789, "123.4568"), (0.30000000000000004, "0.3"), (9.99996, "10"), (0.0, "0"),
])
def test_automatic_precision_shortens_machine_floats_and_keeps_written_values(value, text):
    assert format_value(value, None, "m") == text


def test_verbalizer_and_duplicate_answers():
    s = Serializer(PromptSpec(verbalizer={"0": "no", "1": "yes"}), ["a"], "y", "classification", [0, 1])
    assert s.answers == ["no", "yes"]
    assert s.answer(1) == "yes"
    assert s.class_of_answer(" yes") == 1 and s.class_of_answer("maybe") is None
    with pytest.raises(LiftError, match="both answer"):
        Serializer(PromptSpec(verbalizer={"0": "same", "1": "same"}), ["a"], "y", "classification", [0, 1])


def test_regression_answer_and_question():
    s = Serializer(PromptSpec(template="lift"), ["x1"], "y", "regression")
    assert s.prompt({"x1": -3.14159}) == "When we have x1=-3.1416, what should be the y value?"  # LIFT's %.4f
    assert s.answer(0.123456) == "0.1235"
    assert format_number_answer(12345.6) == "12350"
    assert format_number_answer(-0.000012345) == "-0.00001234"


@pytest.mark.parametrize("text,value", [
    ("0.123", 0.123), (" -4.5", -4.5), ("7", 7.0), ("1e3", 1000.0), ("+.5", 0.5), ("3.25@@@", 3.25),
    ("3.25@@@ 9", 3.25), ("12.", 12.0),
])
def test_parse_number_accepts_well_formed(text, value):
    assert parse_number(text, "@@@") == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12 apples", "--1", "1,5", "nan", "inf", "@@@1", "1e999",
                                  "\u0661\u0662"])  # Arabic-Indic digits are not our numbers
def test_parse_number_rejects_malformed(text):
    assert parse_number(text, "@@@") is None


def test_prompts_for_a_frame_follow_feature_order():
    frame = pd.DataFrame({"b": [1, 2], "a": [3.5, math.nan]})
    s = Serializer(PromptSpec(), ["a", "b"], "y", "regression")
    assert s.prompts(frame) == ["When we have a=3.5, b=1, what should be the y value?",
                                "When we have a=missing, b=2, what should be the y value?"]
