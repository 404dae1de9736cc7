"""Prompts and answers as token ids: tokenized once, checked against the model's context.

The answer is tokenized separately from its prompt so the training labels cover exactly the
answer tokens (plus the end marker) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from lift_core.errors import LiftError
from lift_core.serialize import EOS, PromptSpec


@dataclass
class Example:
    prompt_ids: list[int]
    answer_ids: list[int]


def end_ids(tokenizer, spec: PromptSpec) -> list[int]:
    if spec.end_marker == EOS:
        if tokenizer.eos_token_id is None:
            raise LiftError("this model's tokenizer has no end-of-sequence token; set an end marker such as '@@@'")
        return [int(tokenizer.eos_token_id)]
    return tokenizer(spec.end_marker, add_special_tokens=False)["input_ids"]


def encode_prompts(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(prompts), add_special_tokens=True)["input_ids"]


def encode_answer(tokenizer, answer: str, end: list[int]) -> list[int]:
    """The answer follows the prompt after one space, then the end marker."""
    return tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + list(end)


def check_fits(prompt_ids: Sequence[Sequence[int]], longest_answer: int, context: int,
               row_labels: Sequence[object] | None = None) -> None:
    """Refuse a table whose longest prompt plus answer would not fit in the model's context."""
    if not prompt_ids:
        return
    lengths = [len(p) for p in prompt_ids]
    worst = max(range(len(lengths)), key=lengths.__getitem__)
    need = lengths[worst] + longest_answer
    if need > context:
        label = row_labels[worst] if row_labels is not None else worst
        raise LiftError(
            f"row {label}'s prompt is {lengths[worst]} tokens and with its answer needs {need}, but the "
            f"model reads at most {context}; use fewer features, a lower number precision, a shorter "
            "template, or a model with a longer context")


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows: counted from each row's first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, left: bool = False,
              labels: Sequence[Sequence[int]] | None = None, width: int | None = None) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence of this batch (or to ``width``, if that is longer)."""
    width = max(width or 0, max(len(s) for s in sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    out_labels = torch.full((len(sequences), width), -100, dtype=torch.long) if labels is not None else None
    for i, seq in enumerate(sequences):
        n = len(seq)
        sl = slice(width - n, width) if left else slice(0, n)
        ids[i, sl] = torch.tensor(seq, dtype=torch.long)
        mask[i, sl] = 1
        if out_labels is not None:
            out_labels[i, sl] = torch.tensor(labels[i], dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if out_labels is not None:
        batch["labels"] = out_labels
    return batch


class TrainCollator:
    """Pads each batch to its own longest row; loss only on answer tokens (prompt labels = -100).

    With ``tail_logits`` the rows are left-padded (positions from the mask), so every answer sits
    at the end, and the model computes vocabulary logits only for the last few positions
    (``logits_to_keep``) instead of every prompt token: on SmolLM2-135M, with its 49k-word
    vocabulary, the output layer is about a fifth of a training step's work. The labels are cut
    to the same tail, so the model's own shifted loss lines up with the kept logits.
    """

    def __init__(self, pad_id: int, tail_logits: bool = False) -> None:
        self.pad_id = pad_id
        self.tail_logits = tail_logits
        self.tokens_seen = 0  # read by the progress callback for tokens/s
        self.last_tokens = 0  # the latest batch's: the data loader reads one batch ahead of training

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [f["input_ids"] for f in features]
        labels = [f["labels"] for f in features]
        self.last_tokens = sum(len(s) for s in seqs)
        self.tokens_seen += self.last_tokens
        if not self.tail_logits:
            return pad_batch(seqs, self.pad_id, labels=labels)
        batch = pad_batch(seqs, self.pad_id, left=True, labels=labels)
        # The logit that predicts a row's first answer token sits one position before it.
        keep = 1 + max(sum(1 for t in row if t != -100) for row in labels)
        batch["position_ids"] = positions(batch["attention_mask"])
        batch["labels"] = batch["labels"][:, -keep:]
        batch["logits_to_keep"] = keep
        return batch


def training_features(examples: Sequence[Example]) -> list[dict]:
    return [
        {"input_ids": e.prompt_ids + e.answer_ids, "labels": [-100] * len(e.prompt_ids) + e.answer_ids}
        for e in examples
    ]
