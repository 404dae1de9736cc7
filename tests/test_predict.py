"""Candidate scoring against a plain one-sequence-at-a-time computation, and invalid answers."""

import numpy as np
import pandas as pd
import pytest
import torch

from lift_core.baselines import evaluate
from lift_core.models import load_model
import lift_core.predict
from lift_core.predict import batch_rows, even_step, generate_answers, score_candidates, shared_start, split_point


def reference_scores(model, prompts, candidates):
    """Mean log-probability of each candidate, one unpadded sequence at a time."""
    out = np.zeros((len(prompts), len(candidates)))
    with torch.no_grad():
        for i, p in enumerate(prompts):
            for j, c in enumerate(candidates):
                ids = torch.tensor([p + c])
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
                out[i, j] = np.mean([logp[len(p) - 1 + t, tok].item() for t, tok in enumerate(c)])
    return out


@pytest.mark.parametrize("model", ["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
@pytest.mark.parametrize("batch_size", [2, 4])
def test_shared_prompt_scoring_equals_one_row_at_a_time(model, batch_size):
    """One cached pass per prompt, the candidates read after it, equals scoring every prompt +
    candidate sequence on its own (GPT-2 and a Llama-style model with grouped-query attention)."""
    lm = load_model(model)
    pad = lm.tokenizer.pad_token_id
    prompts = [[464, 3290, 318, 257], [40, 1101], [1212, 318, 257, 1332, 286, 262, 4226]]  # lengths 4, 2, 7
    candidates = [[900, 0], [1234, 5678, 0], [42, 0]]  # answers of different lengths
    got = score_candidates(lm.model, prompts, candidates, pad_id=pad, device="cpu", batch_size=batch_size,
                           shortcut=False)
    np.testing.assert_allclose(got, reference_scores(lm.model, prompts, candidates), atol=1e-4)


@pytest.mark.parametrize("model", ["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
def test_split_shortcut_scores_the_token_where_answers_part(model):
    """Answers sharing "7 8" and then each a different token: one pass over prompt + "7 8" gives
    each answer's log-probability at that token, for prompts of different lengths in any order."""
    lm = load_model(model)
    pad = lm.tokenizer.pad_token_id
    prompts = [[464, 3290, 318, 257], [40, 1101], [1212, 318, 257, 1332, 286, 262, 4226]]
    candidates = [[7, 8, 900, 0], [7, 8, 1234, 5678, 0], [7, 8, 42, 0]]
    got = score_candidates(lm.model, prompts, candidates, pad_id=pad, device="cpu", batch_size=2)
    with torch.no_grad():
        for i, p in enumerate(prompts):
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([p + [7, 8]])).logits[0, -1].float(), -1)
            np.testing.assert_allclose(got[i], [logp[900].item(), logp[1234].item(), logp[42].item()], atol=1e-4)


SHARED_START = [[464, 3290, 318, 257, 11], [464, 3290, 318, 40], [464, 3290, 318, 1212, 318, 257, 1332, 286],
                [464, 3290, 318]]  # "464 3290 318" opens every prompt; the last prompt is only that


@pytest.mark.parametrize("model", ["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
@pytest.mark.parametrize("shortcut", [True, False])
def test_a_shared_start_read_once_scores_as_each_row_alone(model, shortcut):
    """The prompts' common opening, read once and its cache copied to every row (padding then
    sits between it and each row's own tokens), gives each row the scores it gets on its own."""
    lm = load_model(model)
    pad = lm.tokenizer.pad_token_id
    candidates = [[900, 0], [1234, 5678, 0], [42, 0]]
    got = score_candidates(lm.model, SHARED_START, candidates, pad_id=pad, device="cpu", batch_size=3,
                           shortcut=shortcut)
    expected = reference_scores(lm.model, SHARED_START, candidates)
    if shortcut:  # distinct first tokens: the log-probability of each answer's first token
        expected = reference_scores(lm.model, SHARED_START, [c[:1] for c in candidates])
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("batch_size, longest, continuations, rows", [
    (64, 35, 1, 64),  # iris-length rows: the batch size decides
    (64, 540, 1, 7),  # digits-length rows: 4,096 prompt tokens a forward
    (64, 540, 10, 6), (64, 35, 10, 6),  # whole answers: each row continued K times
    (64, 9000, 1, 1), (4, 10, 10, 1),  # never none
])
def test_batch_rows_caps_the_prompt_tokens_a_forward_reads(batch_size, longest, continuations, rows):
    assert batch_rows(batch_size, longest, continuations) == rows


def test_long_prompts_are_scored_in_smaller_batches_with_the_same_scores(monkeypatch):
    lm = load_model("tiny")
    pad = lm.tokenizer.pad_token_id
    candidates = [[900, 0], [1234, 5678, 0], [42, 0]]
    uncapped = score_candidates(lm.model, SHARED_START, candidates, pad_id=pad, device="cpu", batch_size=4)
    seen = []
    lm.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape[0]),
                                       with_kwargs=True)
    monkeypatch.setattr(lift_core.predict, "TOKENS_PER_BATCH", 16)  # the longest prompt has 8 tokens: 2 rows
    capped = score_candidates(lm.model, SHARED_START, candidates, pad_id=pad, device="cpu", batch_size=4)
    assert seen[1:] == [2, 2]  # after the shared start, read once for all rows
    np.testing.assert_allclose(capped, uncapped, atol=1e-5)


def test_generation_goes_by_length_in_capped_batches_and_answers_each_row_as_alone(monkeypatch):
    """Rows are reordered and batched by the token cap, yet each answer lands on its own row and
    equals that row's greedy continuation read on its own (no padding). The end marker is met by
    no row, so every row runs its four new tokens."""
    lm = load_model("tiny")
    tok, pad = lm.tokenizer, lm.tokenizer.pad_token_id
    alone = [generate_answers(lm.model, tok, [p], pad, "cpu", max_new_tokens=4, stop_ids=[-1, -1]) for p in SHARED_START]
    seen = []
    lm.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(tuple(kwargs["input_ids"].shape)),
                                       with_kwargs=True)
    monkeypatch.setattr(lift_core.predict, "TOKENS_PER_BATCH", 16)  # the longest prompt has 8 tokens: 2 rows
    got = generate_answers(lm.model, tok, SHARED_START, pad, "cpu", max_new_tokens=4, stop_ids=[-1, -1], batch_size=4)
    assert got == [a[0] for a in alone] and len(set(got)) > 1  # the rows' answers differ: a mix-up would show
    prompt_reads = [shape for shape in seen if shape[1] > 1]
    assert prompt_reads == [(2, 4), (2, 8)]  # the two shortest (3 and 4 tokens), then 5 and 8


@pytest.mark.parametrize("n, most, sizes", [
    (150, 64, [50, 50, 50]), (128, 64, [64, 64]), (129, 64, [43, 43, 43]), (5, 64, [5]), (1, 1, [1]), (7, 2, [2, 2, 2, 1]),
])
def test_even_step_cuts_few_batches_of_near_one_size(n, most, sizes):
    step = even_step(n, most)
    got = [min(step, n - s) for s in range(0, n, step)]
    assert got == sizes and max(got) <= most


@pytest.mark.parametrize("prompts,shared", [
    (SHARED_START, 2),                            # the shortest prompt keeps one token of its own
    (SHARED_START[:3], 3),
    ([[5, 6, 7], [5, 6, 7]], 2),                  # identical prompts: all but the last token
    ([[5, 6], [8, 6]], 0),
])
def test_shared_start(prompts, shared):
    assert shared_start(prompts) == shared


@pytest.mark.parametrize("candidates,split", [
    ([[5, 0], [6, 0], [7, 0]], 0),               # distinct first tokens
    ([[9, 5, 0], [9, 6, 0]], 1),                 # a shared start, then apart
    ([[9, 0], [9, 3, 0]], 1),                    # "1" and "10": the end marker against "0"
    ([[9, 5, 0], [9, 6, 0], [8, 0]], None),      # two share a first token, the third does not
    ([[9, 5, 0], [9, 5, 0]], None),              # identical answers never part
])
def test_split_point(candidates, split):
    assert split_point(candidates) == split


class _Guesser:
    """A classifier whose third answer could not be read and fell back to the majority class."""

    classes_ = np.array(["a", "b"], dtype=object)

    def fit(self, X, y):
        return self

    def predict(self, X):
        self.invalid_mask_ = np.array([False, False, True])
        self.n_invalid_ = 1
        return np.array(["a", "b", "a"], dtype=object)


def test_an_unreadable_answer_counts_wrong_even_when_its_fallback_is_right():
    X = pd.DataFrame({"x": [1, 2, 3]})
    result = evaluate(_Guesser(), X, ["a", "b", "a"], X, ["a", "b", "a"], "classification", ["a", "b"])
    assert result["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert result["metrics"]["invalid_rate"] == pytest.approx(1 / 3)
    assert list(result["pred"]) == ["a", "b", "a"]  # the user still gets the fallback as the prediction


def test_check_features_names_what_is_missing_and_ignores_extras():
    from lift_core.errors import LiftError
    from lift_core.estimator import check_features

    frame = pd.DataFrame({"a": [1], "b": [2], "extra": [3]})
    check_features(["a", "b"], frame)
    with pytest.raises(LiftError, match=r"new.csv lacks the column\(s\) 'c' that the model was trained on"):
        check_features(["a", "c"], frame, "new.csv")


@pytest.mark.parametrize("dtype,kind", [("int64", "integer"), ("UInt8", "integer"), ("float32", "number"),
                                        ("object", "text"), ("bool", "text"), ("string", "text")])
def test_input_kind(dtype, kind):
    from lift_core.estimator import input_kind

    assert input_kind(dtype) == kind
