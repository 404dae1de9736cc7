"""Device facts and the memory estimate: model sizes read from configs match the real models."""

import dataclasses

import pytest
import torch

from lift_core import models, resources
from lift_core.config import PAIR_METHODS, LiftConfig, LoraSettings, PairSettings
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest, load_table, prompt_lengths
from lift_core.ltuning import PairScorer, encode_labels, padded_labels, trained_parameters
from lift_core.models import load_model
from lift_core.resources import (draft_sizes, format_bytes, lora_parameters, memory_estimate, model_shape,
                                 will_use_4bit)
from lift_core.training import attach_lora, trainable_parameters


@pytest.fixture
def gpu(monkeypatch):
    """Pretend to be a machine with a 16 GB bf16 CUDA GPU (the decisions only, no kernels run)."""
    monkeypatch.setattr(models, "cuda_available", lambda: True)
    monkeypatch.setattr(resources, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(resources, "device_summary", lambda: {
        "cuda": True, "gpu_name": "Test GPU", "gpu_memory_bytes": 16 * 2**30, "cpu_cores": 8,
        "ram_bytes": 64 * 2**30, "ram_available_bytes": 32 * 2**30})


def test_device_summary_describes_this_machine():
    d = resources.device_summary()
    assert d["cuda"] is torch.cuda.is_available()
    assert d["cpu_cores"] >= 1
    assert d["ram_bytes"] >= d["ram_available_bytes"] > 0
    if not d["cuda"]:
        assert d["gpu_name"] is None and d["gpu_memory_bytes"] is None


def test_4bit_only_where_cuda_is(gpu):
    assert will_use_4bit("auto") and will_use_4bit("4bit")
    assert not will_use_4bit("none") and not will_use_4bit("8bit")


def test_4bit_on_cpu_is_refused_with_the_core_message(monkeypatch):
    monkeypatch.setattr(models, "cuda_available", lambda: False)
    assert not will_use_4bit("auto")
    with pytest.raises(LiftError, match="needs a CUDA GPU"):
        will_use_4bit("4bit")


@pytest.mark.parametrize("lora", [LoraSettings(r=4), LoraSettings(r=8, target_modules=["c_attn"])])
def test_tiny_sizes_match_the_real_model_and_peft(lora):
    shape = model_shape("tiny")
    real = load_model("tiny").model
    assert shape.parameters == sum(p.numel() for p in real.parameters())
    assert (shape.hidden, shape.layers, shape.vocab) == (64, 2, 50257)
    assert lora_parameters(shape, lora) == trainable_parameters(attach_lora(real, lora, quantized=False))


@pytest.mark.parametrize("method", PAIR_METHODS)
def test_a_pair_methods_trained_parameters_are_counted_from_its_real_parts(method):
    lm = load_model("tiny")
    ids = encode_labels(lm.tokenizer, ["setosa", "versicolor", "virginica"])
    settings = PairSettings(virtual_tokens=4, prefix_hidden=16)
    scorer = PairScorer(lm.model, method, settings, *padded_labels(ids, lm.tokenizer.pad_token_id))
    shape = model_shape("tiny")
    assert trained_parameters(method, settings, shape.geometry, shape.vocab) == trainable_parameters(scorer) > 0
    # ...and both agree with the methods' parts written out by hand (P virtual tokens, H the prefix
    # MLP's width, W one layer's key or value width, L layers, h hidden), so a part that the shared
    # trained_modules builds at the wrong size fails here.
    g, P, H = shape.geometry, 4, 16
    h, L, W = g.hidden, g.layers, g.kv_width
    head = h * h + h + h + 1  # dense + tanh + linear to one logit
    by_hand = {
        "ltuning-prefix": (2 * h + P * h + h * h) + (h * H + H + H * L * 2 * W + L * 2 * W),  # F pooling, Z MLP
        "ltuning-prompt": h * h + h,  # G
        "prefix": P * W + (W * H + H + H * L * 2 * W + L * 2 * W),  # peft's prefix embedding + projection
        "prompt": P * h,  # peft's virtual token embeddings
    }
    assert trainable_parameters(scorer) == by_hand[method] + head


def test_a_pair_method_is_estimated_without_lora_logits_or_checkpointing(gpu):
    settings = PairSettings(virtual_tokens=4, prefix_hidden=16)
    pair = memory_estimate("tiny", "4bit", LoraSettings(), batch_size=4, seq_len=64, method="prefix", pair=settings)
    lift = memory_estimate("tiny", "4bit", LoraSettings(), batch_size=4, seq_len=64)
    shape = model_shape("tiny")
    assert 0 < pair["trainable_parameters"] != lift["trainable_parameters"]  # its own parts, not LoRA
    # The same 4-bit linear layers; LIFT's QLoRA preparation keeps the rest in fp32, the pair methods in bf16.
    other = shape.parameters - shape.linear_parameters
    assert lift["weights_bytes"] - pair["weights_bytes"] == 2 * other
    # No vocabulary logits, and no gradient checkpointing (only LIFT's QLoRA preparation turns it on):
    # 4 × 64 tokens × hidden × 20 values a layer (+ none) in bf16.
    assert pair["activation_bytes"] == 4 * 64 * shape.hidden * shape.layers * 20 * 2


def test_a_model_without_attention_shapes_is_a_clear_error_for_pair_methods_only(monkeypatch):
    headless = dataclasses.replace(model_shape("tiny"), geometry=None)
    monkeypatch.setattr(resources, "model_shape", lambda *a: headless)
    assert memory_estimate("tiny", "auto", LoraSettings(), 4, 64)["trainable_parameters"] > 0
    with pytest.raises(LiftError, match="does not give its attention heads.*pick LIFT"):
        memory_estimate("tiny", "auto", LoraSettings(), 4, 64, method="ltuning-prefix")


def test_lift_logits_are_counted_only_for_the_answer_positions(monkeypatch):
    monkeypatch.setattr(resources, "cuda_available", lambda: False)
    monkeypatch.setattr(models, "cuda_available", lambda: False)
    every = memory_estimate("tiny", "auto", LoraSettings(), batch_size=4, seq_len=64)
    tail = memory_estimate("tiny", "auto", LoraSettings(), batch_size=4, seq_len=64, answer_tokens=3)
    vocab = model_shape("tiny").vocab
    assert every["activation_bytes"] - tail["activation_bytes"] == 4 * (64 - 4) * vocab * 4 * 2


def test_a_local_folder_is_sized_from_its_config_alone(tmp_path):
    load_model("tiny").model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()  # no weights: the config is all it needs
    assert model_shape(str(tmp_path / "m")) == model_shape("tiny")


@pytest.mark.slow
def test_the_bundled_sizes_match_its_real_config_and_peft():
    from transformers import AutoModelForCausalLM

    folder = models.bundled_folder()
    real = AutoModelForCausalLM.from_pretrained(folder)
    shape = model_shape("bundled")
    assert shape.parameters == sum(p.numel() for p in real.parameters())
    assert lora_parameters(shape, LoraSettings()) == trainable_parameters(attach_lora(real, LoraSettings(), False))


def test_cpu_estimate_is_float32_weights_plus_lora_adam_plus_activations(monkeypatch):
    monkeypatch.setattr(resources, "cuda_available", lambda: False)
    monkeypatch.setattr(models, "cuda_available", lambda: False)
    shape = model_shape("bundled")
    est = memory_estimate("bundled", "auto", LoraSettings(r=8), batch_size=4, seq_len=64)
    assert (est["device"], est["quantization"]) == ("cpu", "none")
    assert 130e6 < est["parameters"] == shape.parameters < 140e6  # SmolLM2-135M
    assert est["weights_bytes"] == 4 * shape.parameters
    assert est["trained_bytes"] == 16 * est["trainable_parameters"] == 16 * lora_parameters(shape, LoraSettings(r=8))
    assert est["total_bytes"] == (est["weights_bytes"] + est["trained_bytes"] + est["activation_bytes"]
                                  + est["overhead_bytes"])
    twice = memory_estimate("bundled", "auto", LoraSettings(r=8), batch_size=8, seq_len=64)
    assert twice["activation_bytes"] == 2 * est["activation_bytes"]  # activations grow with the batch
    assert 0.8 * 2**30 < est["total_bytes"] < 3 * 2**30  # measured: 1.6 GB peak on this CPU


def test_gpu_estimate_uses_4bit_weights(gpu):
    shape = model_shape("bundled")
    est = memory_estimate("bundled", "auto", LoraSettings(), batch_size=4, seq_len=64)
    assert (est["device"], est["quantization"]) == ("cuda", "4bit")
    other = shape.parameters - shape.linear_parameters
    assert est["weights_bytes"] == int(shape.linear_parameters * 0.5 + other * 4)
    full = memory_estimate("bundled", "none", LoraSettings(), batch_size=4, seq_len=64)
    assert full["weights_bytes"] == 2 * shape.parameters  # bf16 on the GPU
    assert est["available_bytes"] == 16 * 2**30 and est["fits"] and est["warning"] is None


def test_4bit_checkpoints_only_where_the_activations_need_the_memory(gpu):
    """QLoRA's recompute costs a forward a step: the bundled model's short rows on a 16 GB GPU skip
    it; a batch whose activations would fill the card keeps it, and the estimate counts it so."""
    short = memory_estimate("bundled", "auto", LoraSettings(), batch_size=4, seq_len=64, answer_tokens=1)
    assert not short["gradient_checkpointing"]
    long = memory_estimate("bundled", "auto", LoraSettings(), batch_size=64, seq_len=8192, answer_tokens=1)
    assert long["gradient_checkpointing"]

    def per_token(e: dict) -> float:
        return e["activation_bytes"] / (e["batch_size"] * e["seq_len"])
    assert per_token(short) > 10 * per_token(long)  # 30 layers × 20 values a token kept, against 30 + 20
    assert not memory_estimate("bundled", "none", LoraSettings(), batch_size=64, seq_len=8192)["gradient_checkpointing"]


def test_checkpointing_choice_follows_activation_size():
    from lift_core.training import needs_checkpointing

    # SmolLM2-135M (576 wide, 30 layers), 4 rows of 60 tokens, an H200's 139 GB: no recompute.
    assert not needs_checkpointing(576, 30, 4 * 60, 139e9)
    # A 7B Llama (4096 wide, 32 layers), 4 rows of 1,024 tokens, 20 GB left on a 24 GB card: recompute.
    assert needs_checkpointing(4096, 32, 4 * 1024, 20e9)
    assert needs_checkpointing(576, None, 4 * 60, 139e9)  # a config that gives no depth: recompute, to be safe


def test_the_depth_is_read_from_the_text_part_of_a_config_and_none_when_absent():
    from types import SimpleNamespace

    from lift_core.training import model_depth

    assert model_depth(SimpleNamespace(num_hidden_layers=30)) == 30
    assert model_depth(SimpleNamespace(get_text_config=lambda: SimpleNamespace(num_hidden_layers=24))) == 24
    assert model_depth(SimpleNamespace()) is None


def test_the_width_is_the_config_hidden_size_even_where_the_embeddings_are_narrower():
    from transformers import AutoModelForCausalLM, OPTConfig

    from lift_core.training import model_width

    opt = OPTConfig(vocab_size=64, hidden_size=32, word_embed_proj_dim=16, num_hidden_layers=1, ffn_dim=64,
                    num_attention_heads=2, max_position_embeddings=32)  # as OPT-350m: 1,024 wide, 512 embeddings
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(opt)
    assert model.get_input_embeddings().weight.shape[1] == 16 and model_width(model) == 32
    assert resources.shape_of(model).hidden == 32


def test_qlora_preparation_keeps_unquantized_weights_in_fp32_as_the_estimate_counts_them():
    """The premise of the 4-bit estimate's ``other * 4``, on a bf16 model (on CPU nothing is
    quantized, so every frozen weight is one bitsandbytes would leave alone)."""
    model = attach_lora(load_model("tiny").model.to(torch.bfloat16), LoraSettings(r=4), quantized=True)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert frozen and all(p.dtype == torch.float32 for p in frozen)


def test_a_run_that_cannot_fit_says_so_and_how_to_fix_it(monkeypatch):
    monkeypatch.setattr(resources, "cuda_available", lambda: False)
    monkeypatch.setattr(models, "cuda_available", lambda: False)
    monkeypatch.setattr(resources, "device_summary", lambda: {"cuda": False, "gpu_memory_bytes": None,
                                                              "ram_available_bytes": 100 * 2**20})
    est = memory_estimate("bundled", "auto", LoraSettings(), batch_size=4, seq_len=64)
    assert not est["fits"]
    assert "100 MB of free RAM" in est["warning"] and "smaller batch size" in est["warning"]


def test_a_model_that_cannot_be_found_is_a_clear_error(tmp_path):
    with pytest.raises(LiftError, match="could not load model 'nobody/no-such-model'"):
        memory_estimate("nobody/no-such-model", "auto", LoraSettings(), 4, 64)
    with pytest.raises(LiftError, match="no model folder at"):
        memory_estimate(str(tmp_path / "missing" / "model"), "auto", LoraSettings(), 4, 64)
    with pytest.raises(LiftError, match="unknown quantization"):
        memory_estimate("tiny", "2bit", LoraSettings(), 4, 64)


def test_the_drafts_longest_example_in_tokens_and_its_training_rows():
    request = RunRequest(data="iris", lift=LiftConfig(model="tiny"))
    table = load_table(request)
    lengths, longest, _ = prompt_lengths(table, request.lift)
    assert draft_sizes(request) == (max(lengths) + longest, longest, len(table.split.train))
    assert max(lengths) + longest > 20 and len(table.split.train) == 96  # iris: 150 rows, LIFT's 64/16/20 split


def test_a_pair_method_on_a_regression_table_is_refused_before_sizing():
    request = RunRequest(data="linear_1d", lift=LiftConfig(method="ltuning-prefix", model="tiny"))
    with pytest.raises(LiftError, match="does classification only.*use the method lift"):
        draft_sizes(request)


def test_bytes_read_like_people_write_them():
    assert format_bytes(512) == "512 B"
    assert format_bytes(350 * 2**20) == "350 MB"
    assert format_bytes(1.25 * 2**30) == "1.2 GB"
