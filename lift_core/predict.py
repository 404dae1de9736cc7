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

    Sequences are left-padded with explicit position ids, so every candidate ends at the last
    position and only the last few positions' logits are computed (never rows × length × vocab).
    """
    was_training = model.training
    model.eval()
    k = len(candidates)
    width = max(len(c) for c in candidates)
    rows_per_batch = max(1, batch_size // k)
    out = np.zeros((len(prompt_ids), k), dtype=np.float64)
    try:
        for start in range(0, len(prompt_ids), rows_per_batch):
            chunk = prompt_ids[start:start + rows_per_batch]
            seqs = [list(p) + list(c) for p in chunk for c in candidates]
            batch = pad_batch(seqs, pad_id, left=True)
            mask = batch["attention_mask"]
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            with _autocast(device, bf16):
                logits = model(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device),
                               position_ids=position_ids.to(device), logits_to_keep=width + 1).logits
            # A model may ignore logits_to_keep (remote code often does): slice the tail either way.
            logp = torch.log_softmax(logits[:, -(width + 1):-1].float(), dim=-1).cpu()
            for j, seq in enumerate(seqs):
                cand = candidates[j % k]
                n = len(cand)
                target = torch.tensor(cand, dtype=torch.long)
                picked = logp[j, width - n:, :].gather(-1, target.unsqueeze(-1)).squeeze(-1)
                out[start + j // k, j % k] = picked.mean().item()
            if progress:
                progress(min(start + rows_per_batch, len(prompt_ids)), len(prompt_ids))
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
