"""L-Tuning (Kowsher et al. 2024) and plain prefix/prompt tuning: classify by scoring (row, label) pairs.

The language model stays frozen. Each (row, candidate label) pair gets one logit from a small
head on the last real token: "is this the right label?". L-Tuning derives the prefix (per-layer
keys and values) or the prepended prompt from the frozen model's own reading of the label text;
plain prefix/prompt tuning (peft's ``PrefixEncoder``/``PromptEmbedding``) learns one label-free
prefix or prompt and reads the label text as part of the input instead. Training batches hold
half true pairs and half (row, wrong label) pairs under binary cross-entropy; prediction scores
all K labels, and a softmax over the K logits gives class probabilities, so LIFT's metrics and
charts apply unchanged.

Mended from L-Tuning's public code: the pooling has its softmax, attention masks are always
passed, the prefix enters as a transformers ``Cache`` (tuple ``past_key_values`` are gone), and
accuracy is the argmax over all labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lift_core.config import PairSettings
from lift_core.examples import pad_batch, positions

LTUNING = ("ltuning-prefix", "ltuning-prompt")
PREFIX_METHODS = ("ltuning-prefix", "prefix")
WEIGHTS_FILE = "pair_adapter.safetensors"


@dataclass(frozen=True)
class Geometry:
    """The shapes a prefix must have to sit in every attention layer's key/value cache."""

    layers: int
    kv_heads: int
    head_dim: int
    hidden: int

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim


def geometry(config) -> Geometry:
    c = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return Geometry(c.num_hidden_layers, kv_heads, head_dim, c.hidden_size)


def prefix_cache(kv: torch.Tensor, geo: Geometry, config):
    """(batch, P, layers·2·kv_width) → a ``DynamicCache`` holding P prefix positions in every layer."""
    from transformers import DynamicCache

    b, p, _ = kv.shape
    kv = kv.reshape(b, p, geo.layers * 2, geo.kv_heads, geo.head_dim).permute(2, 0, 3, 1, 4)
    cache = DynamicCache(config=config)
    for layer in range(geo.layers):
        cache.update(kv[2 * layer], kv[2 * layer + 1], layer)
    return cache


def label_texts(target: str, answers: Sequence[str]) -> list[str]:
    """The verbalized classes: "The species is setosa"."""
    return [f"The {target} is {a}" for a in answers]


def encode_labels(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    ids = tokenizer([" " + t for t in texts], add_special_tokens=False)["input_ids"]
    if any(not i for i in ids):
        raise ValueError("a label text encodes to no tokens")
    return ids


def padded_labels(label_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All label texts padded (right) to the same token length, with their mask."""
    batch = pad_batch(label_ids, pad_id)
    return batch["input_ids"], batch["attention_mask"]


def extra_tokens(method: str, settings: PairSettings, label_lengths: Sequence[int]) -> int:
    """Positions a pair takes beyond the row's prompt: the prefix or prompt, and the label text
    when it is part of the input."""
    longest = max(label_lengths)
    return {"ltuning-prefix": settings.virtual_tokens, "ltuning-prompt": longest,
            "prefix": settings.virtual_tokens + longest, "prompt": settings.virtual_tokens + longest}[method]


class LabelPooling(nn.Module):
    """F: self-attention pooling of a label's token states into P vectors, over real tokens only."""

    def __init__(self, hidden: int, tokens: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.queries = nn.Parameter(torch.randn(tokens, hidden) / math.sqrt(hidden))
        self.keys = nn.Linear(hidden, hidden, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(states)  # (K, L, d)
        scores = torch.einsum("pd,kld->kpl", self.queries, self.keys(h)) / math.sqrt(h.shape[-1])
        scores = scores.masked_fill(mask[:, None, :] == 0, torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1) @ h  # (K, P, d): the softmax L-Tuning's code had commented out


def _peft_prefix(geo: Geometry, settings: PairSettings) -> nn.Module:
    from peft import PrefixEncoder, PrefixTuningConfig

    config = PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=settings.virtual_tokens, token_dim=geo.kv_width,
        num_layers=geo.layers, num_attention_heads=geo.kv_heads, encoder_hidden_size=settings.prefix_hidden,
        prefix_projection=True, num_transformer_submodules=1)
    return PrefixEncoder(config)


def _peft_prompt(geo: Geometry, settings: PairSettings, embeddings: nn.Module) -> nn.Module:
    from peft import PromptEmbedding, PromptTuningConfig

    config = PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=settings.virtual_tokens, token_dim=geo.hidden,
        num_transformer_submodules=1, prompt_tuning_init="SAMPLE_VOCAB")  # starts as real token embeddings
    return PromptEmbedding(config, embeddings)


def trained_modules(method: str, settings: PairSettings, geo: Geometry, embeddings: nn.Module) -> dict[str, nn.Module]:
    """What a pair method trains on the frozen model, by attribute name (the adapter file's keys)."""
    if method == "ltuning-prefix":
        modules = {
            "pool": LabelPooling(geo.hidden, settings.virtual_tokens),  # F
            "to_kv": nn.Sequential(  # Z: pooled label vectors -> every layer's keys and values
                nn.Linear(geo.hidden, settings.prefix_hidden), nn.Tanh(),
                nn.Linear(settings.prefix_hidden, geo.layers * 2 * geo.kv_width))}
    elif method == "ltuning-prompt":
        modules = {"to_embeds": nn.Linear(geo.hidden, geo.hidden)}  # G, d×d
    elif method == "prefix":
        modules = {"prefix": _peft_prefix(geo, settings)}
    elif method == "prompt":
        modules = {"prompt": _peft_prompt(geo, settings, embeddings)}
    else:
        raise ValueError(f"not a pair method: {method!r}")
    # C: a dense + tanh + linear head, as BERT/RoBERTa classifiers have. A linear head can only
    # add up what the frozen model wrote about the row and the label; the hidden layer can
    # weigh one against the other (on iris a linear head stayed at chance).
    modules["head"] = nn.Sequential(nn.Linear(geo.hidden, geo.hidden), nn.Tanh(), nn.Linear(geo.hidden, 1))
    return modules


def trained_parameters(method: str, settings: PairSettings, geo: Geometry, vocab: int) -> int:
    """How many parameters a pair method trains, counted on shapes alone (no memory, no model)."""
    with torch.device("meta"):
        modules = trained_modules(method, settings, geo, nn.Embedding(vocab, geo.hidden))
    return sum(p.numel() for m in modules.values() for p in m.parameters())


class PairScorer(nn.Module):
    """A frozen causal LM plus what one method trains; ``forward`` gives one logit per (row, label).

    Rows come right-padded with their attention mask; ``label_index`` says which label each row
    is paired with (plain methods have the label's text in ``input_ids`` already). With
    ``targets`` (1 = true pair) the output also holds the binary cross-entropy ``loss``.
    """

    def __init__(self, base, method: str, settings: PairSettings, label_ids: torch.Tensor,
                 label_mask: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        for param in base.parameters():
            param.requires_grad_(False)
        self.method = method
        self.virtual_tokens = settings.virtual_tokens
        self.geo = geo = geometry(base.config)
        device = base.get_input_embeddings().weight.device
        self.register_buffer("label_mask", label_mask.to(device), persistent=False)
        if method in LTUNING:
            self.register_buffer("label_states", self._read_labels(label_ids.to(device)), persistent=False)
        for name, module in trained_modules(method, settings, geo, base.get_input_embeddings()).items():
            setattr(self, name, module)
        if method == "ltuning-prompt":
            self._start_as_scaled_identity()
        for name, module in self.named_children():
            if name != "base":
                module.to(device=device, dtype=torch.float32)

    @torch.no_grad()
    def _read_labels(self, label_ids: torch.Tensor) -> torch.Tensor:
        """M(y): the frozen model's last hidden states over each label's tokens, read once."""
        out = self.base.base_model(input_ids=label_ids, attention_mask=self.label_mask, use_cache=False)
        return out.last_hidden_state.float()

    @torch.no_grad()
    def _start_as_scaled_identity(self) -> None:
        """G starts as identity rescaled to the embeddings' size, so e(y) enters at the scale the
        model's first layer expects rather than at its last layer's."""
        emb = self.base.get_input_embeddings().weight.float()
        real = self.label_states[self.label_mask.bool()]
        scale = emb.pow(2).mean().sqrt() / real.pow(2).mean().sqrt().clamp(min=1e-6)
        # .item(): the scale is read on the model's device, the new layer is still on the CPU.
        self.to_embeds.weight.copy_(torch.eye(self.geo.hidden) * scale.item())
        self.to_embeds.bias.zero_()

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()  # frozen: its dropout stays off while the small parts train
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.named_parameters() if v.requires_grad}

    def _dtype(self, device: torch.device) -> torch.dtype:
        if torch.is_autocast_enabled(device.type):
            return torch.get_autocast_dtype(device.type)
        return self.base.get_input_embeddings().weight.dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, label_index: torch.Tensor,
                targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b, device = input_ids.shape[0], input_ids.device
        decoder = self.base.base_model
        virtual = torch.arange(self.virtual_tokens, device=device).expand(b, -1)
        if self.method in PREFIX_METHODS:
            if self.method == "prefix":
                kv = self.prefix(virtual)
            else:
                kv = self.to_kv(self.pool(self.label_states, self.label_mask))[label_index]
            p = kv.shape[1]
            cache = prefix_cache(kv.to(self._dtype(device)), self.geo, self.base.config)
            mask = torch.cat([attention_mask.new_ones(b, p), attention_mask], dim=1)
            prefix_positions = (p + attention_mask.cumsum(-1) - 1).clamp(min=p)
            out = decoder(input_ids=input_ids, attention_mask=mask, position_ids=prefix_positions,
                          past_key_values=cache, use_cache=True)
            offset = 0
        else:
            embeds = self.base.get_input_embeddings()(input_ids)
            if self.method == "prompt":
                prompt, prompt_mask = self.prompt(virtual), attention_mask.new_ones(b, self.virtual_tokens)
            else:
                prompt = self.to_embeds(self.label_states)[label_index]  # e(y) = G(M(y))
                prompt_mask = self.label_mask[label_index].to(attention_mask.dtype)
            embeds = torch.cat([prompt.to(embeds.dtype), embeds], dim=1)
            mask = torch.cat([prompt_mask, attention_mask], dim=1)
            out = decoder(inputs_embeds=embeds, attention_mask=mask, position_ids=positions(mask), use_cache=False)
            offset = prompt.shape[1]
        last = offset + attention_mask.sum(-1) - 1  # the last real token of each row
        hidden = out.last_hidden_state[torch.arange(b, device=device), last]
        logits = self.head(hidden.float()).squeeze(-1)
        result = {"logits": logits}
        if targets is not None:
            result["loss"] = nn.functional.binary_cross_entropy_with_logits(logits, targets.float())
        return result


class PairBatcher:
    """Turns (prompt, label index) pairs into a padded batch for ``PairScorer``."""

    def __init__(self, pad_id: int, label_ids: Sequence[Sequence[int]], label_in_input: bool) -> None:
        self.pad_id = pad_id
        self.label_ids = [list(ids) for ids in label_ids]
        self.label_in_input = label_in_input

    def __call__(self, prompts: Sequence[Sequence[int]], labels: Sequence[int]) -> dict[str, torch.Tensor]:
        seqs = [list(p) + (self.label_ids[y] if self.label_in_input else []) for p, y in zip(prompts, labels)]
        batch = pad_batch(seqs, self.pad_id)
        batch["label_index"] = torch.tensor(list(labels), dtype=torch.long)
        return batch


class PairCollator:
    """Training batches: half true (row, label) pairs, half (row, a random wrong label), drawn
    afresh every batch so each epoch shows a row with different wrong labels."""

    def __init__(self, batcher: PairBatcher, n_labels: int, seed: int) -> None:
        if n_labels < 2:
            raise ValueError("pair training needs at least two labels")
        self.batcher = batcher
        self.n_labels = n_labels
        self.rng = np.random.default_rng(seed)
        self.tokens_seen = 0
        self.last_tokens = 0  # the latest batch's: the data loader reads one batch ahead of training

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        n = len(features)
        truth = np.zeros(n, dtype=bool)
        truth[self.rng.permutation(n)[: n - n // 2]] = True
        labels = []
        for f, true_pair in zip(features, truth):
            y = int(f["label"])
            labels.append(y if true_pair else int((y + self.rng.integers(1, self.n_labels)) % self.n_labels))
        batch = self.batcher([f["prompt_ids"] for f in features], labels)
        batch["targets"] = torch.tensor(truth, dtype=torch.float32)
        self.last_tokens = int(batch["attention_mask"].sum())
        self.tokens_seen += self.last_tokens
        return batch


@torch.no_grad()
def score_pairs(model: PairScorer, batcher: PairBatcher, prompts: Sequence[Sequence[int]], n_labels: int,
                device: str, batch_size: int = 16, bf16: bool = False,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The logit of every (row, label) pair, shape (rows, labels)."""
    was_training = model.training
    model.eval()
    rows_per_batch = max(1, batch_size // n_labels)
    out = np.zeros((len(prompts), n_labels), dtype=np.float64)
    try:
        for start in range(0, len(prompts), rows_per_batch):
            chunk = prompts[start:start + rows_per_batch]
            batch = batcher([p for p in chunk for _ in range(n_labels)], [j for _ in chunk for j in range(n_labels)])
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                logits = model(**{k: v.to(device) for k, v in batch.items()})["logits"]
            out[start:start + len(chunk)] = logits.float().view(len(chunk), n_labels).cpu().numpy()
            if progress:
                progress(min(start + rows_per_batch, len(prompts)), len(prompts))
    finally:
        model.train(was_training)
    return out
