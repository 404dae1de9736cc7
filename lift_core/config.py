"""Every setting of a LIFT run in one serializable place, with the defaults a no-code user keeps.

The defaults were chosen by measurement on iris with the bundled model on a 2-core CPU
(docs/iris-defaults.md); change them only with a new measurement.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lift_core.errors import LiftError
from lift_core.serialize import PromptSpec


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


AUTO = "auto"
AUTO_LR_BASE = 2e-3  # chosen on iris, 24 steps an epoch at batch 4 (docs/iris-defaults.md)
AUTO_LR_STEPS = 32  # steps an epoch up to which the base rate holds
AUTO_EPOCHS = 8  # chosen on iris (docs/iris-defaults.md); every table of the accuracy suite trains for it
MIN_STEPS = 100  # optimizer steps automatic epochs reach on small tables (auto_epochs)
# Settings older versions stored that no longer exist: their runs must still open and re-run.
REMOVED_SETTINGS = {"TrainSettings": ("max_length",)}  # unused, dropped in adadb08
# The ranges validate accepts, which are also the Train page's input limits: a run set up on the
# command line must open on the page (a value outside a number input's limits is an error there).
LEARNING_RATE_RANGE = (1e-6, 0.5)
LORA_DROPOUT_RANGE = (0.0, 0.9)
WARMUP_RANGE = (0.0, 0.95)
WEIGHT_DECAY_RANGE = (0.0, 1.0)
SEED_RANGE = (0, 2**32 - 1)  # numpy's and torch's seeds


def in_range(value: Any, bounds: tuple[float, float]) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]


def steps_per_epoch(train_rows: int, batch_size: int, grad_accum: int = 1) -> int:
    return max(1, math.ceil(train_rows / (batch_size * grad_accum)))


def auto_learning_rate(train_rows: int, batch_size: int, grad_accum: int = 1) -> float:
    """The base rate up to 32 steps an epoch, then falling as 1/sqrt(steps an epoch).

    2e-3 overshot on circles (320 steps an epoch: validation stuck at 0.50); the rate this gives
    circles, 6.3e-4, scored 80.00 (docs/benchmarks/circles-lr.md). Small tables keep 2e-3.
    """
    steps = steps_per_epoch(train_rows, batch_size, grad_accum)
    return AUTO_LR_BASE * min(1.0, math.sqrt(AUTO_LR_STEPS / steps))


def auto_epochs(train_rows: int, batch_size: int, grad_accum: int = 1) -> int:
    """8 epochs, or more on a small table: enough for about 100 optimizer steps.

    At 8 epochs and batch 4, 8 iris rows are 16 steps and scored 0.32 ± 0.02, near chance; in 100
    steps (50 epochs) they scored 0.744 ± 0.235 (docs/benchmarks/sample-size-50-epochs/). Tables of
    49 training rows or more at batch 4 (13 steps an epoch) keep 8 epochs, as every table of the
    accuracy suite does.
    """
    return max(AUTO_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch(train_rows, batch_size, grad_accum)))


@dataclass
class TrainSettings:
    epochs: int | str = AUTO  # "auto": auto_epochs of the training rows
    learning_rate: float | str = AUTO  # "auto": auto_learning_rate of the training rows
    batch_size: int = 4
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = never
    seed: int = 0
    bf16_cpu: bool | str = "auto"  # bf16 autocast on CPU: "auto" measures which is faster, once per model and CPU

    def resolved_learning_rate(self, train_rows: int) -> float:
        """The rate a fit on ``train_rows`` rows uses."""
        if self.learning_rate == AUTO:
            return auto_learning_rate(train_rows, self.batch_size, self.grad_accum)
        return float(self.learning_rate)

    def resolved_epochs(self, train_rows: int) -> int:
        """The epochs a fit on ``train_rows`` rows trains for."""
        if self.epochs == AUTO:
            return auto_epochs(train_rows, self.batch_size, self.grad_accum)
        return int(self.epochs)


def few_steps_advice(train_rows: int, train: TrainSettings) -> str | None:
    """Advice when epochs set by hand make fewer than ``MIN_STEPS`` optimizer steps in all, the
    steps automatic epochs would reach (``auto_epochs`` says why)."""
    per_epoch = steps_per_epoch(train_rows, train.batch_size, train.grad_accum)
    epochs = train.resolved_epochs(train_rows)
    steps = per_epoch * epochs
    if steps >= MIN_STEPS:
        return None
    return (f"{train_rows} training rows in batches of {train.batch_size * train.grad_accum} make only {steps} "
            f"optimizer steps in {epochs} epoch{'s' if epochs != 1 else ''}, too few for LIFT to learn from in "
            f"our benchmarks (iris with 8 rows: 0.32 test accuracy in 16 steps, 0.74 in 100). Automatic epochs "
            f"would train {auto_epochs(train_rows, train.batch_size, train.grad_accum)}, at least {MIN_STEPS} steps; "
            "the best epoch is kept.")


METHODS = ("lift", "ltuning-prefix", "ltuning-prompt", "prefix", "prompt")
PAIR_METHODS = METHODS[1:]  # classify by scoring (row, label) pairs with a frozen model
METHOD_LABELS = {
    "lift": "LIFT",
    "ltuning-prefix": "L-Tuning prefix",
    "ltuning-prompt": "L-Tuning prompt",
    "prefix": "Prefix tuning",
    "prompt": "Prompt tuning",
}


@dataclass
class PairSettings:
    """L-Tuning and plain prefix/prompt tuning: sizes of what is trained on the frozen model."""

    virtual_tokens: int = 8  # prefix length (both prefix methods) and plain prompt length
    prefix_hidden: int = 128  # hidden width of the MLP that maps to per-layer keys and values


@dataclass
class LiftConfig:
    method: str = "lift"
    model: str = "bundled"
    quantization: str = "auto"
    trust_remote_code: bool = False
    prompt: PromptSpec = field(default_factory=PromptSpec)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    pair: PairSettings = field(default_factory=PairSettings)
    predict_mode: str = "score"  # "score" candidate answers, or LIFT's "generate" and parse
    eval_batch_size: int = 64  # sequences a forward when scoring; on iris (CPU) 16 → 64 went from 68 to 82 rows/s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LiftConfig":
        def build(kind, values):
            values = {k: v for k, v in values.items() if k not in REMOVED_SETTINGS.get(kind.__name__, ())}
            known = {f.name for f in fields(kind)}
            unknown = set(values) - known
            if unknown:
                raise LiftError(f"unknown setting(s) {sorted(unknown)} for {kind.__name__}; known: {sorted(known)}")
            return kind(**values)

        d = dict(d)
        prompt = PromptSpec.from_dict(d.pop("prompt", {}) or {})
        lora = build(LoraSettings, d.pop("lora", {}) or {})
        train = build(TrainSettings, d.pop("train", {}) or {})
        pair = build(PairSettings, d.pop("pair", {}) or {})
        return build(cls, {**d, "prompt": prompt, "lora": lora, "train": train, "pair": pair})

    def validate(self) -> None:
        t = self.train
        checks = [
            (self.method in METHODS, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}"),
            (self.pair.virtual_tokens >= 1, "the number of virtual tokens must be at least 1"),
            (self.pair.prefix_hidden >= 1, "the prefix MLP's hidden width must be at least 1"),
            (t.epochs == AUTO or (isinstance(t.epochs, numbers.Integral) and not isinstance(t.epochs, bool)
                                  and t.epochs >= 1),
             f"epochs must be 'auto' or a whole number of at least 1 (not {t.epochs!r}); try 'auto'"),
            (t.learning_rate == AUTO or in_range(t.learning_rate, LEARNING_RATE_RANGE),
             f"learning rate must be 'auto' or a number from {LEARNING_RATE_RANGE[0]:g} to "
             f"{LEARNING_RATE_RANGE[1]:g} (not {t.learning_rate!r}); try 'auto'"),
            (t.batch_size >= 1, "batch size must be at least 1"),
            (t.grad_accum >= 1, "gradient accumulation must be at least 1"),
            (in_range(t.warmup_ratio, WARMUP_RANGE), f"warmup ratio must be from 0 to {WARMUP_RANGE[1]:g}"),
            (in_range(t.weight_decay, WEIGHT_DECAY_RANGE), f"weight decay must be from 0 to {WEIGHT_DECAY_RANGE[1]:g}"),
            (t.early_stopping_patience >= 0, "early-stopping patience must be 0 (off) or more"),
            (isinstance(t.seed, numbers.Integral) and in_range(t.seed, SEED_RANGE),
             f"the training seed must be a whole number from 0 to {SEED_RANGE[1]} (not {t.seed!r})"),
            (self.lora.r >= 1, "LoRA rank r must be at least 1"),
            (self.lora.alpha >= 1, "LoRA alpha must be at least 1"),
            (in_range(self.lora.dropout, LORA_DROPOUT_RANGE),
             f"LoRA dropout must be from 0 to {LORA_DROPOUT_RANGE[1]:g}"),
            (self.predict_mode in ("score", "generate"), "predict mode must be 'score' or 'generate'"),
            (self.prompt.precision is None or 0 <= self.prompt.precision <= 12,
             "precision must be between 0 and 12 decimals (or unset for automatic: at most 4, as in LIFT's code)"),
            (1 <= self.prompt.answer_digits <= 12, "answer digits must be between 1 and 12"),
            (self.eval_batch_size >= 1, "evaluation batch size must be at least 1"),
            (bool(self.prompt.end_marker.strip()), "the end marker is empty; use <eos> (the model's own end token) or a "
             "marker such as @@@"),
        ]
        for ok, message in checks:
            if not ok:
                raise LiftError(message)
