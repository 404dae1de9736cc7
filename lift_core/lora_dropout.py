"""LoRA dropout made cheap for CPU training: one mask per input, drawn from random bits.

peft gives every adapter its own ``nn.Dropout``. On the 2-core dev machine that measured about a
quarter of a bf16 LoRA step (SmolLM2-135M, iris, 4 rows): torch's CPU Bernoulli draws one mt19937
number per element, and its bool-masked ops (``where``, ``masked_fill``) are not vectorised. Here:

- the adapters that read the same hidden states (q/k/v; gate/up) share one mask, as one LoRA on a
  fused QKV layer (GPT-2's ``c_attn``) does: 4 masks a layer instead of 7;
- the mask comes from 16-bit lanes of 64-bit random words (four elements a draw) turned into 0/1
  with integer arithmetic; p is rounded to a multiple of 1/32768 (0.05 → 0.04999);
- under bf16 autocast the dropped input comes out in bf16, so no adapter casts it again.

Seeded by torch's global generator like ``nn.Dropout``; off in eval mode, so prediction and saved
adapters are untouched. CPU only: CUDA's fused dropout is already cheap.
"""

from __future__ import annotations

import torch

_LANES = 32768  # 15 random bits per element
_BF16_ONE = 0x3F80  # the bit pattern of 1.0 in bfloat16


def keep_mask(shape: torch.Size, threshold: int, device: torch.device) -> torch.Tensor:
    """bf16 ones where an element is kept (probability 1 - threshold/32768), zeros elsewhere."""
    n = shape.numel()
    lanes = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_().view(torch.int16)[:n]
    # random_ fills int64 with [0, 2^63): the low 15 bits of every 16-bit lane are uniform.
    dropped = ((lanes & (_LANES - 1)) - threshold) >> 15  # all bits set where dropped, 0 where kept
    return ((~dropped) & _BF16_ONE).view(torch.bfloat16).view(shape)


class _Drop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: int, scale: float, dtype: torch.dtype) -> torch.Tensor:
        keep = keep_mask(x.shape, threshold, x.device).to(dtype)
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.to(dtype) * keep * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return grad * keep * ctx.scale, None, None, None  # autograd casts it back to the input's dtype


class SharedDropout(torch.nn.Module):
    """Inverted dropout that hands the same dropped tensor to every adapter reading the same input."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = min(round(p * _LANES), _LANES - 1)
        self.scale = 1.0 / (1.0 - self.threshold / _LANES)
        self._last: tuple[torch.Tensor, int, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        last = self._last
        if last is not None and last[0] is x and last[1] == x._version:
            return last[2]
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        out = _Drop.apply(x, self.threshold, self.scale, torch.bfloat16 if bf16 else x.dtype)
        self._last = (x, x._version, out)
        return out

    def train(self, mode: bool = True) -> "SharedDropout":
        self._last = None  # the next input replaces it anyway; a switch to eval frees it at once
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"p={self.p}, shared"


def share_lora_dropout(model: torch.nn.Module) -> int:
    """Swap peft's per-adapter dropout for one ``SharedDropout`` per rate; returns how many swapped."""
    shared: dict[float, SharedDropout] = {}
    swapped = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, drop in drops.items():
            if isinstance(drop, torch.nn.Dropout) and drop.p > 0:
                drops[name] = shared.setdefault(drop.p, SharedDropout(drop.p))
                swapped += 1
    return swapped
