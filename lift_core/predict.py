"""Reading answers out of a fine-tuned model: candidate scoring and greedy generation.

Classification scores every candidate answer (the log-probability of the token where the
answers part ways, or the mean log-likelihood of all its tokens, end marker included, so "1" is
not mistaken for a prefix of "10"): every row gets a valid class and a probability for each. Free generation — LIFT's own method, kept as an option — is always greedy:
LIFT sampled at evaluation, which made its predictions random.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from lift_core.examples import pad_batch, positions

Progress = Callable[[int, int], None] | None
MIN_SHARED = 2  # shared leading tokens worth reading once (LIFT's "When we have <first column>=")
# Prompt tokens a scoring forward reads at most. On long rows big batches read slower, most with
# the LoRA unmerged (each epoch's validation): digits' 540-token rows, 48 a forward, 1,227 ms a row
# against 645-848 for 4 to 24, breast cancer's 330-token rows 487 against 327-385, while iris's
# 39-token rows read fastest in big batches (docs/benchmarks/scoring-batch.md).
TOKENS_PER_BATCH = 4096


def _autocast(device: str, bf16: bool):
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)


def split_point(candidates: Sequence[Sequence[int]]) -> int | None:
    """The token position where the candidate answers part ways, if they all part there at once
    (a different token each); None when some share a token there that others do not."""
    for i in range(min(len(c) for c in candidates)):
        tokens = {c[i] for c in candidates}
        if len(tokens) == len(candidates):
            return i
        if len(tokens) > 1:
            return None
    return None


@torch.no_grad()
def score_candidates(model, prompt_ids: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]],
                     pad_id: int, device: str, batch_size: int = 16, bf16: bool = False,
                     progress: Progress = None, shortcut: bool = True) -> np.ndarray:
    """A log-score for each candidate answer after each prompt, shape (rows, candidates).

    When the candidates part ways at one token, a different token each (" setosa", " versicolor",
    " virginica" at their first; "class_0", "class_1" after the shared "class_"), one forward per
    row over the prompt and the shared start decides: the score is that token's log-probability,
    which is also all that greedy generation would choose by. Otherwise (``shortcut`` off, or
    answers such as "1" and "10" that share a first token only in part) the score is the mean
    log-probability of all a candidate's tokens, end marker included; each prompt is read once and
    its cache repeated for the K continuations. Rows are batched by prompt length to pad little,
    in batches of near one size (``even_step``) of at most ``batch_rows`` rows, and the tokens
    every prompt starts with (the template's opening) are read once for all rows.
    """
    cand = [list(c) for c in candidates]
    split = split_point(cand) if shortcut else None
    n = len(prompt_ids)
    out = np.zeros((n, len(cand)), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        with _autocast(device, bf16):
            prefix = _Prefix.read(model, prompt_ids, device)
        done = 0
        for rows in length_batches(prompt_ids, batch_size, 1 if split is not None else len(cand)):
            chunk = [list(prompt_ids[i]) for i in rows]
            with _autocast(device, bf16):
                if split is not None:
                    out[rows] = _score_at_split(model, chunk, cand, split, pad_id, device, prefix)
                else:
                    out[rows] = _score_whole(model, chunk, cand, pad_id, device, prefix)
            done += len(rows)
            if progress:
                progress(done, n)
    finally:
        model.train(was_training)
    return out


def batch_rows(batch_size: int, longest: int, continuations: int = 1) -> int:
    """Rows a scoring or generation batch: ``batch_size`` counts sequences (the whole-answer path
    continues each row K times), and the rows' prompt tokens stay within TOKENS_PER_BATCH."""
    return max(1, min(batch_size // continuations, TOKENS_PER_BATCH // max(longest, 1)))


def length_batches(prompt_ids: Sequence[Sequence[int]], batch_size: int, continuations: int = 1) -> list[np.ndarray]:
    """Row indices by prompt length, cut into batches of near one size (``even_step``) of at most
    ``batch_rows`` rows: scoring and generation both read whole prompts, so both pad little and
    keep long rows' batches small this way."""
    n = len(prompt_ids)
    step = even_step(n, batch_rows(batch_size, max((len(p) for p in prompt_ids), default=1), continuations))
    order = np.argsort([len(p) for p in prompt_ids], kind="stable")
    return [order[start:start + step] for start in range(0, n, step)]


def even_step(n: int, most: int) -> int:
    """Rows per batch when ``n`` rows are cut into as few batches of at most ``most`` as possible,
    all near one size: no small last batch (150 rows by 64: 50, 50, 50, not 64, 64, 22), which on
    CPU reads its rows slower and makes the first pass build kernels for one more shape."""
    return -(-n // -(-n // most)) if n else most


def shared_start(prompt_ids: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all prompts share, leaving each at least one token of its own."""
    first, end = prompt_ids[0], min(len(p) for p in prompt_ids) - 1
    for i in range(max(end, 0)):
        if any(p[i] != first[i] for p in prompt_ids):
            return i
    return max(end, 0)


class _Prefix:
    """The cache of the tokens every prompt starts with, computed once and copied to each batch."""

    def __init__(self, length: int, cache: DynamicCache) -> None:
        self.length, self.cache = length, cache

    @classmethod
    def read(cls, model, prompt_ids: Sequence[Sequence[int]], device: str) -> "_Prefix | None":
        length = shared_start(prompt_ids)
        if length < MIN_SHARED or len(prompt_ids) < 2:
            return None
        ids = torch.tensor([list(prompt_ids[0][:length])], device=device)
        cache = model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
        # Only plain full-attention caches: a sliding window or a recurrent state would not simply
        # copy across rows that are padded in the middle.
        if not isinstance(cache, DynamicCache) or any(type(layer) is not DynamicLayer for layer in cache.layers):
            return None
        return cls(length, cache)

    def for_batch(self, rows: int) -> DynamicCache:
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(rows)
        return cache


def _left_padded(model, seqs: list[list[int]], pad_id: int, device: str, prefix: _Prefix | None, **kwargs):
    """Forward over left-padded rows with positions counted from each row's first real token.

    With a shared ``prefix`` the rows lose its tokens, which the cache holds: the padding then sits
    between the prefix and each row's own tokens, masked, and positions continue from the prefix.
    The mask returned covers the prefix too."""
    length = prefix.length if prefix else 0
    batch = pad_batch([s[length:] for s in seqs], pad_id, left=True)
    own = batch["attention_mask"]
    mask = torch.cat([torch.ones((len(seqs), length), dtype=own.dtype), own], dim=1)
    return mask, model(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device),
                       position_ids=(positions(own) + length).to(device),
                       past_key_values=prefix.for_batch(len(seqs)) if prefix else None, **kwargs)


def _score_at_split(model, chunk: list[list[int]], cand: list[list[int]], split: int, pad_id: int,
                    device: str, prefix: _Prefix | None) -> np.ndarray:
    _, result = _left_padded(model, [p + cand[0][:split] for p in chunk], pad_id, device, prefix,
                             logits_to_keep=1)
    logp = torch.log_softmax(result.logits[:, -1].float(), dim=-1).cpu()
    return logp[:, [c[split] for c in cand]].to(torch.float64).numpy()


def _score_whole(model, chunk: list[list[int]], cand: list[list[int]], pad_id: int, device: str,
                 prefix: _Prefix | None) -> np.ndarray:
    k, b = len(cand), len(chunk)
    width = max(len(c) for c in cand)
    mask, first = _left_padded(model, chunk, pad_id, device, prefix, use_cache=True, logits_to_keep=1)
    scores = torch.log_softmax(first.logits[:, -1].float(), dim=-1).cpu()[:, [c[0] for c in cand]]
    scores = scores.to(torch.float64)  # (b, k): log p(first token)
    if width > 1:
        # The candidates' tokens after the first: input c[:-1] predicts c[1:], right-padded to one width.
        rest = pad_batch([c[:-1] or [pad_id] for c in cand], pad_id)
        rest_mask = torch.tensor([[1] * (len(c) - 1) + [0] * (width - len(c)) for c in cand], dtype=torch.long)
        cache = first.past_key_values
        cache.batch_repeat_interleave(k)
        ids = rest["input_ids"].repeat(b, 1)  # (b*k, width-1), row r*k + j = candidate j of row r
        full_mask = torch.cat([mask.repeat_interleave(k, dim=0), rest_mask.repeat(b, 1)], dim=1)
        positions = mask.sum(-1).repeat_interleave(k)[:, None] + torch.arange(width - 1)[None, :]
        logits = model(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                       position_ids=positions.to(device), past_key_values=cache, use_cache=True).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        for j, c in enumerate(cand):
            if len(c) > 1:
                target = torch.tensor(c[1:], dtype=torch.long)
                picked = logp[j::k, : len(c) - 1].gather(-1, target.expand(b, -1).unsqueeze(-1)).squeeze(-1)
                scores[:, j] += picked.to(torch.float64).sum(-1)
    return (scores / torch.tensor([len(c) for c in cand], dtype=torch.float64)).numpy()


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@torch.no_grad()
def generate_answers(model, tokenizer, prompt_ids: Sequence[Sequence[int]], pad_id: int, device: str,
                     max_new_tokens: int, stop_ids: Sequence[int], batch_size: int = 16, bf16: bool = False,
                     progress: Progress = None) -> list[str]:
    """Greedy continuation of each prompt, decoded and cut at the end marker. Rows go by prompt
    length, in batches of near one size of at most ``batch_rows`` rows, as in ``score_candidates``:
    the prompt's first forward is the costly one, and on long rows a big batch reads it slower."""
    n = len(prompt_ids)
    was_training = model.training
    model.eval()
    answers = [""] * n
    stop = list(stop_ids)
    try:
        done = 0
        for rows in length_batches(prompt_ids, batch_size):
            batch = pad_batch([prompt_ids[i] for i in rows], pad_id, left=True)
            with _autocast(device, bf16):
                out = model.generate(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad_id,
                    eos_token_id=stop[0] if len(stop) == 1 else None)
            for i, ids in zip(rows, out[:, batch["input_ids"].shape[1]:].tolist()):
                answers[i] = tokenizer.decode(_cut(ids, stop), skip_special_tokens=True)
            done += len(rows)
            if progress:
                progress(done, n)
    finally:
        model.train(was_training)
    return answers


def _cut(ids: list[int], stop: list[int]) -> list[int]:
    """Tokens before the first occurrence of the end-marker sequence."""
    n = len(stop)
    for i in range(len(ids) - n + 1):
        if ids[i:i + n] == stop:
            return ids[:i]
    return ids
