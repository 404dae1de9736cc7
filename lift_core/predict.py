"""Reading answers out of a fine-tuned model: candidate scoring and greedy generation.

Classification scores every candidate answer (mean log-likelihood of its tokens, end marker
included, so "1" is not mistaken for a prefix of "10"): every row gets a valid class and a
probability for each. Free generation — LIFT's own method, kept as an option — is always greedy:
LIFT sampled at evaluation, which made its predictions random.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from lift_core.examples import pad_batch

Progress = Callable[[int, int], None] | None


def _autocast(device: str, bf16: bool):
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)


@torch.no_grad()
def score_candidates(model, prompt_ids: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]],
                     pad_id: int, device: str, batch_size: int = 16, bf16: bool = False,
                     progress: Progress = None) -> np.ndarray:
    """Mean log-probability of each candidate answer after each prompt, shape (rows, candidates).

    Each prompt is read once: a forward over the left-padded prompts fills the key/value cache
    and gives the first answer token's distribution; the cache is then repeated for the K
    candidates and only their remaining tokens are read. That is one prompt-length pass per row
    instead of K, and vocabulary logits only where an answer token is predicted.
    """
    was_training = model.training
    model.eval()
    k = len(candidates)
    cand = [list(c) for c in candidates]
    width = max(len(c) for c in cand)
    out = np.zeros((len(prompt_ids), k), dtype=np.float64)
    # The candidates' tokens after the first: input c[:-1] predicts c[1:], right-padded to one width.
    rest = pad_batch([c[:-1] or [pad_id] for c in cand], pad_id)
    rest_mask = torch.tensor([[1] * (len(c) - 1) + [0] * (width - len(c)) for c in cand], dtype=torch.long)
    try:
        for start in range(0, len(prompt_ids), batch_size):
            chunk = prompt_ids[start:start + batch_size]
            b = len(chunk)
            batch = pad_batch(chunk, pad_id, left=True)
            mask = batch["attention_mask"]
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            with _autocast(device, bf16):
                first = model(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device),
                              position_ids=position_ids.to(device), use_cache=True, logits_to_keep=1)
            scores = torch.log_softmax(first.logits[:, -1].float(), dim=-1).cpu()[:, [c[0] for c in cand]]
            scores = scores.to(torch.float64)  # (b, k): log p(first token)
            if width > 1:
                cache = first.past_key_values
                cache.batch_repeat_interleave(k)
                ids = rest["input_ids"].repeat(b, 1)  # (b*k, width-1), row r*k + j = candidate j of row r
                extra = rest_mask.repeat(b, 1)
                full_mask = torch.cat([mask.repeat_interleave(k, dim=0), extra], dim=1)
                lengths = mask.sum(-1).repeat_interleave(k)
                positions = lengths[:, None] + torch.arange(width - 1)[None, :]
                with _autocast(device, bf16):
                    logits = model(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                                   position_ids=positions.to(device), past_key_values=cache, use_cache=True).logits
                logp = torch.log_softmax(logits.float(), dim=-1).cpu()
                for j, c in enumerate(cand):
                    if len(c) > 1:
                        target = torch.tensor(c[1:], dtype=torch.long)
                        picked = logp[j::k, : len(c) - 1].gather(-1, target.expand(b, -1).unsqueeze(-1)).squeeze(-1)
                        scores[:, j] += picked.to(torch.float64).sum(-1)
            out[start:start + b] = (scores / torch.tensor([len(c) for c in cand], dtype=torch.float64)).numpy()
            if progress:
                progress(min(start + b, len(prompt_ids)), len(prompt_ids))
    finally:
        model.train(was_training)
    return out


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@torch.no_grad()
def generate_answers(model, tokenizer, prompt_ids: Sequence[Sequence[int]], pad_id: int, device: str,
                     max_new_tokens: int, stop_ids: Sequence[int], batch_size: int = 16, bf16: bool = False,
                     progress: Progress = None) -> list[str]:
    """Greedy continuation of each prompt, decoded and cut at the end marker."""
    was_training = model.training
    model.eval()
    answers: list[str] = []
    stop = list(stop_ids)
    try:
        for start in range(0, len(prompt_ids), batch_size):
            chunk = prompt_ids[start:start + batch_size]
            batch = pad_batch(chunk, pad_id, left=True)
            with _autocast(device, bf16):
                out = model.generate(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad_id,
                    eos_token_id=stop[0] if len(stop) == 1 else None)
            new = out[:, batch["input_ids"].shape[1]:].tolist()
            for ids in new:
                answers.append(tokenizer.decode(_cut(ids, stop), skip_special_tokens=True))
            if progress:
                progress(min(start + batch_size, len(prompt_ids)), len(prompt_ids))
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
