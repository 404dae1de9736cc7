"""Mechanics of the LM path on the tiny random GPT-2: it cannot learn iris, but its loss must
fall, its predictions must survive a save/load and a zip round trip exactly, and cancel works."""

import numpy as np
import pandas as pd
import pytest

from lift_core.builtin import load_builtin
from lift_core.config import LiftConfig, LoraSettings, TrainSettings
from lift_core.errors import LiftError
from lift_core.estimator import LiftClassifier, LiftRegressor, load_estimator
from lift_core.training import TrainingCancelled


def tiny_config(**train):
    settings = dict(epochs=3, learning_rate=2e-2, batch_size=4, bf16_cpu=False, seed=0)
    settings.update(train)
    return LiftConfig(model="tiny", lora=LoraSettings(r=8, alpha=16), train=TrainSettings(**settings),
                      eval_batch_size=32)


@pytest.fixture(scope="module")
def iris():
    b = load_builtin("iris")
    X, y = b.frame.drop(columns=b.target), b.frame[b.target].to_numpy()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    return X.iloc[idx[:24]], y[idx[:24]], X.iloc[idx[24:36]], y[idx[24:36]]


@pytest.fixture(scope="module")
def fitted(iris):
    X, y, Xv, yv = iris
    events = []
    est = LiftClassifier(tiny_config(), target="species").fit(X, y, eval_set=(Xv, yv), on_event=events.append)
    return est, events


def test_training_loss_falls(fitted):
    _, events = fitted
    losses = [e["loss"] for e in events if e["kind"] == "train" and e["loss"] is not None]
    assert len(losses) >= 10
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5  # nats; a random model starts near ln(50257)


def test_progress_and_eval_events(fitted):
    est, events = fitted
    train = [e for e in events if e["kind"] == "train"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert train[-1]["step"] == train[-1]["total_steps"] == 18  # 24 rows / batch 4 × 3 epochs
    assert all(e["tokens_per_s"] > 0 and e["eta_s"] is not None for e in train)
    assert [e["epoch"] for e in evals] == [1, 2, 3]
    assert est.train_result_.best_epoch in (1, 2, 3)


def test_best_epoch_is_the_highest_validation_score(fitted):
    est, _ = fitted
    history = est.train_result_.history
    best = max(history, key=lambda h: (h["val_accuracy"], -h["val_log_loss"]))
    assert est.train_result_.best_epoch == best["epoch"]


def test_restored_best_weights_reproduce_the_best_validation_score(fitted, iris):
    est, _ = fitted
    _, _, Xv, yv = iris
    best = next(h for h in est.train_result_.history if h["epoch"] == est.train_result_.best_epoch)
    proba = est.predict_proba(Xv)
    assert np.mean(est.classes_[proba.argmax(1)] == yv) == pytest.approx(best["val_accuracy"])
    # The log-loss moves every epoch, so it pins the restored weights to the best epoch's exactly.
    from sklearn.metrics import log_loss
    assert log_loss(yv, proba, labels=list(est.classes_)) == pytest.approx(best["val_log_loss"], rel=1e-6)
    assert len({round(h["val_log_loss"], 6) for h in est.train_result_.history}) > 1


def test_predict_proba_is_a_distribution_over_classes(fitted, iris):
    est, _ = fitted
    X = iris[2]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(est.predict(X)) <= set(est.classes_)
    assert 0.0 <= est.score(X, iris[3]) <= 1.0


def test_save_and_load_predict_exactly_as_before(fitted, iris, tmp_path):
    est, _ = fitted
    X = iris[2]
    before = est.predict_proba(X)
    est.save(tmp_path / "adapter")
    again = load_estimator(tmp_path / "adapter")
    after = again.predict_proba(X)
    np.testing.assert_array_equal(est.predict(X), again.predict(X))
    np.testing.assert_allclose(before, after, rtol=0, atol=1e-6)


def test_an_adapter_trained_in_full_precision_is_not_loaded_on_4bit_weights(fitted, tmp_path, monkeypatch):
    import json

    from lift_core import estimator, models

    folder = fitted[0].save(tmp_path / "adapter")
    assert json.loads((folder / estimator.STATE_FILE).read_text())["quantization"] == "none"
    asked = []

    class Loaded(Exception):
        pass

    def record(ref, quantization, trust_remote_code):
        asked.append(quantization)
        raise Loaded  # this CPU cannot go on as the GPU machine it pretends to be

    monkeypatch.setattr(models, "cuda_available", lambda: True)  # where "auto" means 4-bit
    monkeypatch.setattr(estimator, "load_model", record)
    with pytest.raises(Loaded):
        load_estimator(folder)
    assert asked == ["none"]


@pytest.mark.parametrize("state", [
    "[1]",
    '{"task": "classification", "config": 5, "features": ["a"]}',
    '{"task": "classification", "config": {"model": 5}, "features": ["a"], "target": "y"}',
    '{"task": "regression", "config": {"model": "tiny"}, "features": ["a"], "target": "y"}',  # no y_mean
    '{"task": "classification", "config": {"model": "tiny", "train": {"epochs": -1}}, "features": ["a"]}',
    "{not json",
])
def test_a_damaged_state_file_is_refused_before_any_model_loads(tmp_path, monkeypatch, state):
    from lift_core import estimator

    (tmp_path / estimator.STATE_FILE).write_text(state)
    monkeypatch.setattr(estimator, "load_model", lambda *a: pytest.fail("loaded a model for a damaged adapter"))
    with pytest.raises(LiftError, match="holds no LIFT Studio adapter|epochs must be"):
        load_estimator(tmp_path)


def test_generate_mode_counts_invalid_answers(fitted, iris):
    est, _ = fitted
    est.config.predict_mode = "generate"
    try:
        pred = est.predict(iris[2])
    finally:
        est.config.predict_mode = "score"
    assert set(pred) <= set(est.classes_)
    assert 0 <= est.n_invalid_ <= len(pred)


def test_cancel_stops_training_early(iris):
    X, y, _, _ = iris
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(TrainingCancelled):  # rather than go on to predict with a half-trained model
        LiftClassifier(tiny_config(epochs=5), target="species").fit(X, y, should_stop=stop)
    assert calls["n"] == 2


def test_regression_unparsable_answers_fall_back_to_the_training_mean():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.uniform(-10, 10, 16)})
    y = 0.9 * X["x1"].to_numpy()
    est = LiftRegressor(tiny_config(epochs=1), target="y").fit(X, y)
    pred = est.predict(X.iloc[:6])
    assert len(pred) == 6 and np.isfinite(pred).all()
    invalid = [v is None for v in est.parsed_]
    assert est.n_invalid_ == sum(invalid)
    np.testing.assert_allclose(pred[np.array(invalid)], y.mean())


def test_early_stopping_after_patience_epochs_without_improvement(iris):
    from lift_core.examples import Example, TrainCollator, training_features
    from lift_core.models import load_model
    from lift_core.training import attach_lora, train_adapter

    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8), quantized=False)
    feats = training_features([Example([10, 11, 12], [13, lm.tokenizer.eos_token_id])] * 8)
    scores = iter([0.5, 0.7, 0.6, 0.7, 0.9, 1.0])  # best at epoch 2, then two epochs without a gain
    result = train_adapter(model, feats, TrainCollator(lm.tokenizer.pad_token_id),
                           TrainSettings(epochs=6, batch_size=4, early_stopping_patience=2, bf16_cpu=False),
                           "cpu", validate=lambda m: (next(scores), {}))
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.best_score == 0.7


def test_a_cancel_requested_in_the_store_ends_the_run_as_cancelled(tmp_path):
    from lift_core.experiment import RunRequest, run_and_record
    from lift_core.store import RunStore

    store = RunStore(tmp_path / "ws")
    request = RunRequest(data="iris", lift=tiny_config(epochs=3), baselines=False)
    run_id = store.create_run({"request": request.to_dict()})

    def cancel_after_first_step(event):
        if event["kind"] == "train" and event["step"] == 1:
            store.request_cancel(run_id)

    assert run_and_record(request, store, run_id, say=lambda s: None, on_event=cancel_after_first_step) is None
    run = store.get(run_id)
    assert run["status"] == "cancelled"
    steps = [e["step"] for e in store.events(run_id, kind="train")]
    assert max(steps) < 30  # 96 rows / batch 4 × 3 epochs = 72 steps if it had not stopped


def test_a_cancel_requested_once_training_is_over_stops_the_test_predictions(tmp_path):
    """A Stop pressed after the last epoch's validation ends the run before its test predictions
    are done and before any baseline, as cancelled with no results, not as a run that succeeded."""
    from lift_core.experiment import RunRequest, run_and_record
    from lift_core.store import RunStore

    store = RunStore(tmp_path / "ws")
    request = RunRequest(data="iris", lift=tiny_config(epochs=1), baselines=True)
    run_id = store.create_run({"request": request.to_dict()})

    def cancel_after_the_last_validation(event):
        if event["kind"] == "eval":
            store.request_cancel(run_id)

    assert run_and_record(request, store, run_id, say=lambda s: None, on_event=cancel_after_the_last_validation) is None
    run = store.get(run_id)
    assert run["status"] == "cancelled" and not run.get("metrics")
    train = store.events(run_id, kind="train")
    assert train[-1]["step"] == train[-1]["total_steps"]  # training itself ran to its end
    assert not any("baselines" in line for line in store.log_tail(run_id, 100))
    assert [e["stage"] for e in store.events(run_id, kind="stage")] == ["validation", "test"]  # one batch of each


@pytest.mark.parametrize("bundled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["tiny", "bundled"])
def test_tail_logits_give_the_same_loss_and_gradients_as_full_logits(bundled):
    """Left padding with position ids and logits only for the answers' tail is the same training
    step as right padding with every position's logits."""
    import torch

    from lift_core.examples import Example, TrainCollator, training_features
    from lift_core.models import load_model
    from lift_core.training import attach_lora, computes_tail_logits

    lm = load_model("bundled" if bundled else "tiny", "none")
    torch.manual_seed(0)
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8, dropout=0.0), quantized=False)
    model.eval()  # no dropout: the two steps must see the same network
    assert computes_tail_logits(model)
    eos = lm.tokenizer.eos_token_id
    feats = training_features([Example([10, 11, 12, 13, 14, 15], [16, eos]), Example([20, 21], [22, 23, 24, eos]),
                               Example([30, 31, 32], [33, eos])])
    results = []
    for tail in (False, True):
        model.zero_grad()
        batch = TrainCollator(lm.tokenizer.pad_token_id, tail_logits=tail)(feats)
        if tail:
            assert batch["logits_to_keep"] == 5 and batch["labels"].shape == (3, 5)
        loss = model(**batch).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        results.append((loss.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    for full, tail in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(full, tail, rtol=1e-3, atol=1e-5)


def test_the_automatic_rate_is_the_one_the_optimizer_uses():
    b = load_builtin("iris")
    X, y = b.frame.drop(columns=b.target), b.frame[b.target].to_numpy()
    events = []
    # 150 rows at batch 2 are 75 steps an epoch: auto gives 2e-3·√(32/75) ≈ 1.3e-3, not 2e-3.
    cfg = tiny_config(epochs=1, learning_rate="auto", batch_size=2, warmup_ratio=0.0)
    est = LiftClassifier(cfg, target="species").fit(X, y, on_event=events.append)
    rate = est.train_result_.learning_rate
    assert rate == pytest.approx(2e-3 * (32 / 75) ** 0.5)
    used = [e["learning_rate"] for e in events if e["kind"] == "train"]
    assert len(used) == 75 and max(used) <= rate and max(used) > 0.95 * rate  # linear decay from the rate


def test_qlora_preparation_checkpoints_without_reentrancy_when_asked_and_keeps_the_gradients():
    """What a CUDA run's 4-bit preparation turns on (on CPU nothing is quantized): gradient
    checkpointing in the non-reentrant form torch keeps where memory needs it, none where it does
    not; the LoRA's gradients are the same either way."""
    import torch

    from lift_core.models import tiny_model
    from lift_core.training import attach_lora

    ids = torch.tensor([[10, 11, 12, 13, 14, 15]])
    grads = []
    for quantized, checkpointing in ((False, False), (True, True), (True, False)):
        torch.manual_seed(0)
        base = tiny_model()
        base.is_loaded_in_4bit = quantized  # as transformers marks a bitsandbytes-loaded model
        model = attach_lora(base, LoraSettings(r=4, alpha=8, dropout=0.0), quantized=quantized,
                            checkpointing=checkpointing)
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0  # the passes must see the same network
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
        funcs = [m._gradient_checkpointing_func for m in model.modules() if getattr(m, "gradient_checkpointing", False)]
        if checkpointing:
            assert funcs and all(f.keywords == {"use_reentrant": False} for f in funcs)
        else:
            assert not funcs
    assert len(grads[0]) == len(grads[1]) == len(grads[2]) > 0
    for plain, checkpointed, prepared in zip(*grads):
        torch.testing.assert_close(plain, checkpointed)
        torch.testing.assert_close(plain, prepared)
