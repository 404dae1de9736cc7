"""Cheap LoRA dropout (lift_core/lora_dropout.py): it drops at the asked rate, keeps the expected
value, routes gradients through the same mask, shares one mask between adapters reading one input,
and is off in eval mode; fitted on CPU, a LIFT model carries it."""

import pytest
import torch

from lift_core.config import LoraSettings
from lift_core.estimator import LiftClassifier
from lift_core.lora_dropout import SharedDropout, keep_mask, share_lora_dropout
from lift_core.models import load_model
from lift_core.training import attach_lora

from test_lm_tiny import iris, tiny_config  # noqa: F401 - fixture reused


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_keep_mask_is_zeros_and_ones_at_the_asked_rate(p):
    torch.manual_seed(0)
    drop = SharedDropout(p)
    keep = keep_mask(torch.Size([1000, 1000]), drop.threshold, torch.device("cpu")).float()
    assert set(keep.unique().tolist()) == {0.0, 1.0}
    assert abs(keep.mean().item() - (1 - p)) < 0.002  # 1M draws: std of the mean ≈ 0.0005
    assert abs(keep.mean(0).std().item() - ((1 - p) * p / 1000) ** 0.5) < 0.003  # lanes alike, not striped


def test_dropout_keeps_the_expectation_and_its_gradient_uses_the_same_mask():
    torch.manual_seed(1)
    drop = SharedDropout(0.2).train()
    x = torch.full((500, 400), 3.0, requires_grad=True)
    out = drop(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.01
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 3.0 * drop.scale))
    assert abs(out.mean().item() - 3.0) < 0.05
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() * drop.scale)


def test_one_mask_per_input_a_new_one_per_new_input_and_none_in_eval():
    torch.manual_seed(2)
    drop = SharedDropout(0.5).train()
    x = torch.randn(64, 32)
    first = drop(x)
    assert drop(x) is first  # the second adapter reading x gets the same dropped tensor
    assert not torch.equal(drop(x.clone()), first)  # another input: another mask
    x.add_(1.0)  # changed in place: not the same input any more
    assert not torch.equal(drop(x), first)
    drop.eval()
    assert drop(x) is x


def test_under_bf16_autocast_the_output_is_bf16_and_the_gradient_uses_its_mask():
    torch.manual_seed(3)
    drop = SharedDropout(0.1).train()
    x = torch.randn(64, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = drop(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), (x * (out != 0) * drop.scale).detach(), rtol=1e-2, atol=1e-2)
    out.float().sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * torch.tensor(drop.scale).bfloat16().float())


def test_a_rate_near_one_drops_almost_everything_without_dividing_by_zero():
    drop = SharedDropout(0.99999).train()
    out = drop(torch.ones(1000, 100))
    assert torch.isfinite(out).all() and (out != 0).float().mean() < 0.01


def test_peft_adapters_share_one_dropout_and_still_learn():
    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8, dropout=0.1), quantized=False)
    n_adapters = sum(1 for m in model.modules() if hasattr(m, "lora_dropout"))
    assert share_lora_dropout(model) == n_adapters > 0
    drops = {id(m.lora_dropout["default"]) for m in model.modules() if hasattr(m, "lora_dropout")}
    assert len(drops) == 1
    torch.manual_seed(0)
    ids = torch.tensor([[464, 3290, 318, 257, 11, 12]] * 4)
    labels = torch.full_like(ids, -100)
    labels[:, -1] = 12
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    model.train()
    losses = []
    for step in range(10):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        if step == 0:  # every adapter gets a gradient through the shared masks
            assert all(p.grad is not None and p.grad.abs().sum() > 0
                       for n, p in model.named_parameters() if "lora_B" in n)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_no_dropout_asked_means_nothing_swapped():
    lm = load_model("tiny")
    model = attach_lora(lm.model, LoraSettings(r=4, alpha=8, dropout=0.0), quantized=False)
    assert share_lora_dropout(model) == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="the shared dropout is for CPU training")
def test_a_lift_model_fitted_on_cpu_trains_with_the_shared_dropout(iris):  # noqa: F811
    X, y = iris[0], iris[1]
    est = LiftClassifier(tiny_config(epochs=1), target="species").fit(X.iloc[:8], y[:8])
    drops = [m.lora_dropout["default"] for m in est.lm_.model.modules() if hasattr(m, "lora_dropout")]
    assert drops and all(isinstance(d, SharedDropout) for d in drops)
