"""Model references and the CUDA path's decisions, checked on a machine without a GPU."""

import pytest
import torch

from lift_core.config import LoraSettings
from lift_core.errors import LiftError
from lift_core.models import (load_model, load_tokenizer, quantization_config, quantization_to_predict,
                              resolve_quantization)
from lift_core.training import attach_lora, trainable_parameters


def test_auto_quantization_is_4bit_nf4_qlora_on_cuda_and_none_on_cpu():
    assert resolve_quantization("auto", cuda=False) == "none"
    assert resolve_quantization("auto", cuda=True) == "4bit"
    assert quantization_config("auto", cuda=False) is None
    qc = quantization_config("auto", cuda=True)
    assert qc.load_in_4bit and not qc.load_in_8bit
    assert qc.bnb_4bit_quant_type == "nf4"
    assert qc.bnb_4bit_use_double_quant is True
    assert qc.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config("8bit", cuda=True).load_in_8bit


def test_kbit_on_cpu_is_refused_with_a_way_out():
    with pytest.raises(LiftError, match="needs a CUDA GPU.*--quantization none"):
        resolve_quantization("4bit", cuda=False)
    with pytest.raises(LiftError, match="unknown quantization"):
        resolve_quantization("2bit", cuda=False)


def test_an_adapter_predicts_on_the_weights_it_was_trained_on_where_it_can():
    assert quantization_to_predict("none", "auto", cuda=True) == "none"  # not 4-bit weights it never saw
    assert quantization_to_predict("4bit", "auto", cuda=True) == "4bit"
    assert quantization_to_predict("4bit", "4bit", cuda=False) == "none"  # a GPU's adapter still loads on a CPU
    assert quantization_to_predict(None, "auto", cuda=True) == "auto"  # saved before it was recorded


def test_this_machine_loads_in_full_precision_on_cpu():
    lm = load_model("tiny")
    assert (lm.device, lm.quantization) == ("cpu", "none")
    assert next(lm.model.parameters()).dtype == torch.float32
    assert lm.context_length == 512


def test_tiny_uses_the_real_gpt2_tokenizer():
    tok = load_tokenizer("tiny")
    assert len(tok) == 50257
    assert tok("Hello world")["input_ids"] == [15496, 995]


def test_tiny_weights_are_the_same_every_time():
    a, b = load_model("tiny").model, load_model("tiny").model
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name


def test_a_local_folder_loads_like_a_hub_id(tmp_path):
    lm = load_model("tiny")
    lm.model.save_pretrained(tmp_path / "m")
    lm.tokenizer.save_pretrained(tmp_path / "m")
    again = load_model(str(tmp_path / "m"))
    ids = torch.tensor([[15496, 995]])
    assert torch.equal(lm.model(ids).logits, again.model(ids).logits)


def test_a_model_that_cannot_be_found_is_a_clear_error(tmp_path):
    with pytest.raises(LiftError, match="no model folder at .*nowhere; give a folder holding config.json"):
        load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LiftError, match="could not load model.*local folder"):
        load_model(str(tmp_path / "empty"))


def test_a_home_folder_that_does_not_exist_is_a_clear_error():
    with pytest.raises(LiftError, match="no home folder for '~nosuchuser'"):
        load_model("~nosuchuser/model")


def test_a_model_with_its_own_code_says_how_to_allow_it(tmp_path):
    folder = tmp_path / "custom"
    load_model("tiny").tokenizer.save_pretrained(folder)
    (folder / "config.json").write_text(
        '{"model_type": "mything", "auto_map": {"AutoConfig": "c.C", "AutoModelForCausalLM": "m.M"}}')
    with pytest.raises(LiftError, match="ships its own Python code.*tick 'Allow the model's own code"):
        load_model(str(folder))


def test_lora_on_all_linear_layers_by_default():
    model = attach_lora(load_model("tiny").model, LoraSettings(r=4, alpha=8), quantized=False)
    # GPT-2 (2 layers, width 64): c_attn 64→192, attn c_proj 64→64, c_fc 64→256, mlp c_proj 256→64.
    per_layer = 4 * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64))
    assert trainable_parameters(model) == 2 * per_layer
