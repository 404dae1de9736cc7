"""bf16 on CPU made to pay (lift_core/precision.py): the preparation changes no fp32 result, the
frozen weights go to bf16 while everything trained stays fp32, and training and a save/load
round trip still work with it."""

import numpy as np
import pytest
import torch

from lift_core.config import LoraSettings
from lift_core.estimator import LiftClassifier, PairClassifier, load_estimator
from lift_core.examples import pad_batch
from lift_core.models import load_model
from lift_core.precision import ATTENTION, prepare_cpu_model, store_frozen_in_bf16
from lift_core.training import attach_lora

from test_lm_tiny import iris, tiny_config  # noqa: F401 - fixture reused


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits.float()


@pytest.mark.parametrize("model", ["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
def test_preparation_leaves_fp32_results_alone_and_keeps_bf16_close(model):
    lm = load_model(model)
    seqs = [[464, 3290, 318, 257, 11, 12], [40, 1101]]  # padded on the left: the mask matters
    batch = pad_batch(seqs, lm.tokenizer.pad_token_id, left=True)
    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    batch["logits_to_keep"] = 2  # a sliced (non-contiguous) input to the output layer
    before = _logits(lm.model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before_bf16 = _logits(lm.model, batch)
    prepare_cpu_model(lm.model)
    assert lm.model.config._attn_implementation == ATTENTION
    torch.testing.assert_close(_logits(lm.model, batch), before, atol=1e-5, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        after_bf16 = _logits(lm.model, batch)
    # bf16 both ways; only the attention's precision differs, so the logits stay within bf16's error
    assert (after_bf16 - before_bf16).abs().max() < 0.05 * before.abs().max()


def test_frozen_weights_go_to_bf16_and_trained_ones_stay_fp32():
    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8), quantized=False)
    store_frozen_in_bf16(model)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.dtype == torch.float32 for p in trained)
    base = model.get_base_model()
    assert base.get_input_embeddings().weight.dtype == torch.float32  # the residual stream starts fp32
    head = base.get_output_embeddings().weight
    assert head.dtype == torch.bfloat16 and not head.requires_grad  # its own copy, no longer tied
    torch.testing.assert_close(head.float(), base.get_input_embeddings().weight.bfloat16().float())
    assert base.transformer.h[0].attn.c_attn.base_layer.weight.dtype == torch.bfloat16


def test_a_pair_scorer_keeps_its_unused_output_layer_tied_and_fp32():
    class Scorer(torch.nn.Module):  # the shape of ltuning.PairScorer: the frozen model as .base
        def __init__(self, base):
            super().__init__()
            self.base = base

    lm = load_model("tiny")
    lm.model.requires_grad_(False)  # frozen, as the pair scorer holds it
    store_frozen_in_bf16(Scorer(lm.model))
    head, embed = lm.model.get_output_embeddings().weight, lm.model.get_input_embeddings().weight
    assert head is embed and embed.dtype == torch.float32
    assert lm.model.transformer.h[0].attn.c_attn.weight.dtype == torch.bfloat16


def test_lora_on_a_tied_output_layer_leaves_the_input_embeddings_fp32():
    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8, target_modules=["c_attn", "lm_head"]), quantized=False)
    store_frozen_in_bf16(model)
    base = model.get_base_model()
    assert base.get_input_embeddings().weight.dtype == torch.float32
    assert base.transformer.h[0].attn.c_attn.base_layer.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("method", ["lift", "ltuning-prefix"])
def test_bf16_training_learns_and_round_trips(iris, tmp_path, method):  # noqa: F811
    X, y, Xv, yv = iris
    cfg = tiny_config(bf16_cpu=True, epochs=2)
    cfg.method = method
    events = []
    est = (LiftClassifier if method == "lift" else PairClassifier)(cfg, target="species")
    est.fit(X, y, eval_set=(Xv, yv), on_event=events.append)
    assert est.bf16_
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    proba = est.predict_proba(Xv)
    loaded = load_estimator(est.save(tmp_path / "adapter"))
    np.testing.assert_allclose(loaded.predict_proba(Xv), proba, atol=1e-6)


def test_a_fitted_lift_model_predicts_merged_and_merging_changes_nothing_in_fp32(iris):  # noqa: F811
    X, y, Xv, yv = iris
    est = LiftClassifier(tiny_config(epochs=1), target="species").fit(X, y)
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in est.lm_.model.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and all(m.merged for m in layers)  # LoRA folded into the weights for prediction
    merged = est.predict_proba(Xv)
    est.lm_.model.unmerge_adapter()
    est._last = None
    np.testing.assert_allclose(est.predict_proba(Xv), merged, atol=1e-5)


def test_a_bf16_lift_model_predicts_in_bf16_and_keeps_its_adapter_and_buffers(iris, tmp_path):  # noqa: F811
    """After a bf16 fit the merged model runs wholly in bf16 on CPU, but LoRA's weights (what
    ``save`` writes) stay fp32 and buffers are untouched; a reloaded adapter predicts the same."""
    X, y, Xv, yv = iris
    est = LiftClassifier(tiny_config(bf16_cpu=True, epochs=1), target="species").fit(X, y)
    base = est.lm_.model.get_base_model()
    params = dict(base.named_parameters())
    assert all(p.dtype == torch.float32 for n, p in params.items() if ".lora_" in n)
    assert all(p.dtype == torch.bfloat16 for n, p in params.items() if ".lora_" not in n)
    fresh = load_model("tiny").model
    assert {n: b.dtype for n, b in base.named_buffers()} == {n: b.dtype for n, b in fresh.named_buffers()}
    proba = est.predict_proba(Xv)
    loaded = load_estimator(est.save(tmp_path / "adapter"))
    np.testing.assert_allclose(loaded.predict_proba(Xv), proba, atol=1e-6)
