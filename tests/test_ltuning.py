"""Mechanics of L-Tuning and plain prefix/prompt tuning on the tiny random GPT-2: pair batches,
masks, the argmax over all labels, loss falling for every method, and exact save/load round trips."""

import numpy as np
import pytest
import torch

from lift_core.builtin import load_builtin
from lift_core.config import PAIR_METHODS, LiftConfig, PairSettings, TrainSettings
from lift_core.estimator import PairClassifier, load_estimator
from lift_core.ltuning import (LabelPooling, PairBatcher, PairCollator, PairScorer, encode_labels, label_texts,
                               padded_labels, score_pairs)
from lift_core.models import load_model


@pytest.fixture(scope="module")
def iris():
    b = load_builtin("iris")
    X, y = b.frame.drop(columns=b.target), b.frame[b.target].to_numpy()
    idx = np.random.default_rng(0).permutation(len(X))
    return X.iloc[idx[:24]], y[idx[:24]], X.iloc[idx[24:36]], y[idx[24:36]]


@pytest.fixture(scope="module")
def lm():
    return load_model("tiny")


def pair_config(method: str, **train) -> LiftConfig:
    settings = dict(epochs=2, learning_rate=1e-2, batch_size=4, bf16_cpu=False, seed=0)
    settings.update(train)
    return LiftConfig(method=method, model="tiny", train=TrainSettings(**settings),
                      pair=PairSettings(virtual_tokens=4, prefix_hidden=16), eval_batch_size=12)


def scorer_for(lm, method: str, texts=("The species is setosa", "The species is versicolor long label",
                                        "The species is virginica")):
    torch.manual_seed(0)
    ids = encode_labels(lm.tokenizer, texts)
    label_ids, mask = padded_labels(ids, lm.tokenizer.pad_token_id)
    scorer = PairScorer(lm.model, method, PairSettings(virtual_tokens=4, prefix_hidden=16), label_ids, mask)
    return scorer, PairBatcher(lm.tokenizer.pad_token_id, ids, label_in_input=method in ("prefix", "prompt"))


# -- pair batches ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [8, 7])
def test_pair_batches_are_half_true_and_wrong_labels_never_equal_the_true_one(n):
    batcher = PairBatcher(0, [[5], [6, 7], [8]], label_in_input=True)
    collator = PairCollator(batcher, n_labels=3, seed=0)
    features = [{"prompt_ids": [1, 2, 3][: 1 + i % 3], "label": i % 3} for i in range(n)]
    wrong_seen = set()
    for _ in range(50):
        batch = collator(features)
        truth = batch["targets"].bool().numpy()
        assert truth.sum() == n - n // 2  # half true (one more when the batch is odd)
        for f, t, chosen in zip(features, truth, batch["label_index"].tolist()):
            if t:
                assert chosen == f["label"]
            else:
                assert chosen != f["label"]
                wrong_seen.add((f["label"], chosen))
    assert len(wrong_seen) == 6  # every wrong label of every class is drawn sometime


def test_plain_methods_read_the_label_text_and_l_tuning_does_not():
    prompts, labels = [[1, 2], [3]], [1, 0]
    with_text = PairBatcher(0, [[5], [6, 7]], label_in_input=True)(prompts, labels)
    assert with_text["input_ids"].tolist() == [[1, 2, 6, 7], [3, 5, 0, 0]]
    assert with_text["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    without = PairBatcher(0, [[5], [6, 7]], label_in_input=False)(prompts, labels)
    assert without["input_ids"].tolist() == [[1, 2], [3, 0]] and without["label_index"].tolist() == [1, 0]


def test_labels_are_padded_to_one_length_with_a_mask(lm):
    ids = encode_labels(lm.tokenizer, label_texts("species", ["setosa", "versicolor and more"]))
    padded, mask = padded_labels(ids, lm.tokenizer.pad_token_id)
    assert padded.shape[1] == max(len(i) for i in ids)
    assert mask.sum(1).tolist() == [len(i) for i in ids]


# -- masks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", PAIR_METHODS)
def test_padding_never_changes_a_score(lm, method):
    """A row scored alone and in a batch beside a longer row gets the same logit (masks and positions)."""
    scorer, batcher = scorer_for(lm, method)
    short, long = [11, 12, 13], [21, 22, 23, 24, 25, 26, 27, 28]
    together = score_pairs(scorer, batcher, [short, long], 3, "cpu")
    alone = score_pairs(scorer, batcher, [short], 3, "cpu")
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)


@pytest.mark.parametrize("method", PAIR_METHODS)
def test_the_label_changes_the_score(lm, method):
    scorer, batcher = scorer_for(lm, method)
    scores = score_pairs(scorer, batcher, [[11, 12, 13]], 3, "cpu")
    assert np.ptp(scores) > 1e-6


def test_label_pooling_ignores_padded_label_tokens():
    torch.manual_seed(0)
    pool = LabelPooling(hidden=8, tokens=2)
    states, mask = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    changed = states.clone()
    changed[:, 3:] = 100.0  # label 0: only padded positions changed; label 1: real ones
    torch.testing.assert_close(pool(states, mask)[0], pool(changed, mask)[0])
    assert not torch.allclose(pool(states, mask)[1], pool(changed, mask)[1])


@pytest.mark.parametrize("method", PAIR_METHODS)
def test_bf16_autocast_forward_runs(lm, method):
    scorer, batcher = scorer_for(lm, method)
    scores = score_pairs(scorer, batcher, [[11, 12, 13], [14]], 3, "cpu", bf16=True)
    assert np.isfinite(scores).all()


# -- training and prediction -----------------------------------------------------------------------

@pytest.mark.parametrize("method", PAIR_METHODS)
def test_loss_falls_and_only_the_small_parts_train(lm, method):
    scorer, batcher = scorer_for(lm, method)
    batch = batcher([[11, 12, 13], [14, 15], [16], [17, 18, 19, 20]] * 2, [0, 1, 2, 1, 2, 0, 1, 2])
    batch["targets"] = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0], dtype=torch.float32)
    trainable = [p for p in scorer.parameters() if p.requires_grad]
    assert trainable and all(not p.requires_grad for p in lm.model.parameters())
    opt = torch.optim.Adam(trainable, lr=1e-2)
    scorer.train()
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = scorer(**batch)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert all(p.grad is None for p in lm.model.parameters())


@pytest.fixture(scope="module", params=PAIR_METHODS)
def fitted(request, iris):
    X, y, Xv, yv = iris
    events = []
    est = PairClassifier(pair_config(request.param), target="species").fit(X, y, eval_set=(Xv, yv),
                                                                           on_event=events.append)
    return est, events


def test_fit_reports_progress_validation_and_trained_parameters(fitted):
    est, events = fitted
    assert any(e["kind"] == "train" and e["loss"] is not None for e in events)
    assert [e["epoch"] for e in events if e["kind"] == "eval"] == [1, 2]
    base = sum(p.numel() for p in est.lm_.model.parameters())
    assert 0 < est.n_trainable_ < base


def test_prediction_is_the_argmax_over_every_label(fitted, iris):
    est, _ = fitted
    Xv = iris[2]
    proba = est.predict_proba(Xv)
    assert proba.shape == (len(Xv), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(Xv), est.classes_[proba.argmax(axis=1)])
    assert est.n_invalid_ == 0


def test_save_and_load_predict_exactly_as_before(fitted, iris, tmp_path):
    est, _ = fitted
    Xv = iris[2]
    before = est.predict_proba(Xv)
    folder = est.save(tmp_path / "adapter")
    assert {p.name for p in folder.iterdir()} == {"lift.json", "pair_adapter.safetensors"}
    again = load_estimator(folder)
    assert type(again) is PairClassifier and again.config.method == est.config.method
    np.testing.assert_allclose(again.predict_proba(Xv), before, atol=1e-6)


def test_loading_weights_of_another_method_is_refused(iris, tmp_path):
    import json

    from lift_core.errors import LiftError

    X, y, Xv, yv = iris
    folder = PairClassifier(pair_config("prompt", epochs=1), target="species").fit(X, y).save(tmp_path / "a")
    state = json.loads((folder / "lift.json").read_text())
    state["config"]["method"] = "ltuning-prefix"
    (folder / "lift.json").write_text(json.dumps(state))
    with pytest.raises(LiftError, match="does not fit"):
        load_estimator(folder)


def test_a_pair_method_refuses_regression(tmp_path):
    from lift_core.errors import LiftError
    from lift_core.experiment import RunRequest, check_request

    with pytest.raises(LiftError, match="classification"):
        check_request(RunRequest(data="diabetes", lift=LiftConfig(method="ltuning-prefix", model="tiny")))
