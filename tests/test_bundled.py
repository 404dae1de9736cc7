"""The bundled model really is SmolLM2-135M and really learns: a few LoRA steps on iris rows
lower its training loss. Slow: it loads (and on a fresh machine first converts) the 135M model."""

import gc

import numpy as np
import pytest

from lift_core.builtin import load_builtin
from lift_core.config import LiftConfig, TrainSettings
from lift_core.estimator import LiftClassifier
from lift_core.models import load_model


@pytest.mark.slow
def test_bundled_model_is_smollm2_and_a_few_steps_lower_its_loss():
    lm = load_model("bundled", quantization="none")
    assert lm.model.config.model_type == "llama"
    n_params = sum(p.numel() for p in lm.model.parameters())
    assert 125e6 < n_params < 145e6, n_params  # SmolLM2-135M: ~134.5 M with tied embeddings
    assert lm.context_length == 8192
    assert lm.tokenizer.eos_token_id is not None
    del lm
    gc.collect()  # fit loads its own copy

    b = load_builtin("iris")
    rows = b.frame.groupby(b.target, group_keys=False).head(4)  # 12 rows, 4 per species
    X, y = rows.drop(columns=b.target), rows[b.target].to_numpy()
    # No warmup: with only 3 steps a warmup would spend the first one at learning rate 0.
    # bf16_cpu=False skips the one-off bf16-speed probe (more steps than the training itself).
    config = LiftConfig(model="bundled", quantization="none", eval_batch_size=12,
                        train=TrainSettings(epochs=1, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0,
                                            bf16_cpu=False, seed=0))
    events = []
    est = LiftClassifier(config, target=b.target).fit(X, y, on_event=events.append)

    losses = [e["loss"] for e in events if e["kind"] == "train" and e["loss"] is not None]
    assert len(losses) == 3, losses  # 12 rows / batch 4 x 1 epoch
    assert losses[-1] < losses[0], losses

    proba = est.predict_proba(X.iloc[[0, 4, 8]])
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
