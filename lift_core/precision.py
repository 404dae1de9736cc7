"""bf16 on CPU: whether to use it, and how to make it pay; a fitted model readied to predict.

Measured on the 2-core dev machine (AMX), one SmolLM2-135M LoRA step of 4 iris rows: fp32 794 ms;
plain bf16 autocast 811 ms, because three things ate the faster bf16 matrix products:
- the CPU flash-attention kernel is ~8× slower in bf16 than in fp32 here;
- every frozen weight is cast to bf16 again on every call (autocast caches only trainable ones);
- the output layer's input, sliced to the answers' tail, is not contiguous, so its product with
  the 49k-word vocabulary goes through a broadcast batched product.
With attention kept in fp32, the frozen linear weights stored in bf16 and the slice made
contiguous: 564 ms. The matrix products still run in bf16 as under plain autocast; the LoRA
weights, the embeddings and the residual stream stay fp32. Under the Trainer, on all of iris,
that is 1.35× the plain fp32 recipe's tokens/s (docs/benchmarks/speed.md).
"""

from __future__ import annotations

import json
import platform
import time

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from lift_core.config import TrainSettings

ATTENTION = "sdpa_fp32_on_cpu"


def _sdpa_fp32(module, query, key, value, attention_mask, **kwargs):
    if query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    # Whatever dtype arrives (rotary embeddings can promote bf16 queries to fp32), autocast must
    # not send the product to the slow bf16 kernel.
    with torch.autocast("cpu", enabled=False):
        out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                              **kwargs)
    return out.to(query.dtype), weights


def _register_attention() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(ATTENTION, _sdpa_fp32)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])  # same masks as sdpa


def inner_model(model):
    """The transformers model inside a peft wrapper or a pair scorer."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model.base if isinstance(getattr(model, "base", None), torch.nn.Module) else model


def prepare_cpu_model(model) -> None:
    """Changes that cost fp32 nothing and let bf16 pay off (attention in fp32, a contiguous
    output-layer input); applied before the bf16 probe so it measures what training will run."""
    base = inner_model(model)
    if getattr(base, "_lift_cpu_prepared", False):
        return
    if base.config._attn_implementation == "sdpa":
        _register_attention()
        base.set_attn_implementation(ATTENTION)
    head = base.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
    base._lift_cpu_prepared = True


def store_frozen_in_bf16(model) -> None:
    """Keep the frozen linear weights in bf16, so autocast stops recasting them on every call.

    Only linear layers that nothing trains; LoRA's weights and every trained weight stay fp32. The
    output layer, often the input embeddings' own matrix (tied), gets a bf16 copy of its own
    (+56 MB for SmolLM2-135M): casting its 49k×576 weights took ~21 ms every forward here, while
    the embeddings that start the residual stream stay fp32.
    """
    from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers

    base = inner_model(model)
    embed, head = base.get_input_embeddings(), base.get_output_embeddings()
    for name, module in base.named_modules():
        adapter = ".lora_" in name  # LoRA's own weights (frozen once loaded) stay as trained, in fp32
        if (isinstance(module, (torch.nn.Linear, Conv1D)) and module is not head and not adapter
                and module.weight is not embed.weight and not module.weight.requires_grad):
            module.to(torch.bfloat16)
    reads_head = getattr(model, "base", None) is not base  # pair scorers read hidden states, not the head
    if (reads_head and isinstance(head, torch.nn.Linear) and not head.weight.requires_grad
            and head.weight.dtype != torch.bfloat16):
        head.weight = torch.nn.Parameter(head.weight.detach().to(torch.bfloat16), requires_grad=False)


def _step_seconds(model, batch: dict[str, torch.Tensor], bf16: bool, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats + 1):  # the first pass warms up kernels and is not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(**batch)["loss"].backward()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return min(times[1:])


def cpu_bf16_faster(model, batch: dict[str, torch.Tensor], probe_key: str) -> bool:
    """Whether bf16 autocast trains this model faster than float32 on this CPU, measured once.

    It depends on the CPU (AVX512-BF16/AMX) and on the model's shapes: the tiny test GPT-2 steps
    4× slower in bf16. The answer is cached per ``probe_key`` (model and method), CPU, torch
    version and thread count (and "v2": measured since ``prepare_cpu_model``), so only the first
    run pays for the probe; it steps on ``batch``, a real training batch.
    """
    from lift_core.models import cache_dir

    key = f"v2|{probe_key}|{platform.processor() or platform.machine()}|{torch.__version__}|{torch.get_num_threads()}"
    path = cache_dir() / "cpu_bf16_probe.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        was_training = model.training
        model.train()
        known[key] = _step_seconds(model, batch, True) < _step_seconds(model, batch, False)
        model.train(was_training)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=1))
    return bool(known[key])


def use_bf16(model, batch: dict[str, torch.Tensor], settings: TrainSettings, device: str, probe_key: str) -> bool:
    """bf16 on a GPU that supports it; on CPU as the setting says ("auto": measured on ``batch``).

    On CPU the model is prepared first, and when bf16 wins its frozen linear weights are stored
    in bf16 (see the module docstring).
    """
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    prepare_cpu_model(model)
    bf16 = cpu_bf16_faster(model, batch, probe_key) if settings.bf16_cpu == "auto" else bool(settings.bf16_cpu)
    if bf16:
        store_frozen_in_bf16(model)
    return bf16


def for_cpu_prediction(model, bf16: bool, device: str) -> None:
    """Ready a model that is done training to predict on CPU (elsewhere: nothing): the same
    preparation as in training, and its LoRA adapters merged into the weights, which skips two
    extra products per layer (on iris 42 → 71 rows/s). With bf16, the rest of the merged model
    (embeddings, norms) goes to bf16 as well, so the residual stream stops being cast back and
    forth around every product (iris, 64 rows a batch: 82 → 96 rows/s). The adapters' own weights,
    which ``save`` writes, and buffers such as the rotary frequencies stay as they are."""
    if device != "cpu":
        return
    prepare_cpu_model(model)
    if bf16:
        store_frozen_in_bf16(model)
    if hasattr(model, "merge_adapter"):  # a peft model (LIFT's LoRA); pair scorers have no adapter
        model.merge_adapter()
        if bf16:
            for name, param in inner_model(model).named_parameters():
                if ".lora_" not in name and param.dtype == torch.float32:
                    param.data = param.data.to(torch.bfloat16)
