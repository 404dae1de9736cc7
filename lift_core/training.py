"""LoRA fine-tuning with the transformers Trainer, validated every epoch, best epoch kept.

The Trainer brings mixed precision, gradient accumulation, schedulers and `accelerate launch`;
what LIFT needs on top lives in callbacks: a validation metric each epoch (its direction minded:
LIFT's code kept the worst epoch), the best adapter weights held in memory and restored at the
end, early stopping, progress events for the run store, a cooperative cancel, and checkpoints a
killed run carries on from.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from lift_core.config import LoraSettings, TrainSettings
from lift_core.errors import LiftError

Event = Callable[[dict[str, Any]], None]
# model -> (score, metrics); scores are compared with ">" (tuples allowed: tie-breakers), higher is better
Validate = Callable[[Any], tuple[Any, dict[str, float]]]


class _Rows(Dataset):
    def __init__(self, features: list[dict]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


# Values of width ``hidden`` a layer keeps per token for the backward pass (attention and MLP
# intermediates): a rough figure, shared by the memory estimate and the checkpointing choice.
ACT_VALUES_PER_LAYER = 20


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def model_depth(config) -> int | None:
    """The number of transformer layers a (possibly multimodal) model's config gives, or None."""
    layers = getattr(_text_config(config), "num_hidden_layers", None)
    return int(layers) if layers else None


def model_width(model) -> int:
    """The width of the activations: the config's hidden size, which can exceed the embeddings'
    (OPT-350m: 1,024 against 512); the embeddings' where the config does not say."""
    hidden = getattr(_text_config(model.config), "hidden_size", None)
    return int(hidden) if hidden else int(model.get_input_embeddings().weight.shape[1])


def needs_checkpointing(hidden: int, layers: int | None, batch_tokens: int, free_bytes: float) -> bool:
    """Whether a 4-bit run recomputes its activations in the backward pass (gradient checkpointing,
    which QLoRA's preparation turns on by default). It costs a forward a step, and on small models
    with table rows a GPU step is bound by launches, not memory (H200, SmolLM2-135M in 4-bit, iris:
    0.56 s a step, docs/benchmarks/gpu-15473d6/), so it is kept only where one batch's bf16
    activations would take over half the memory left, and wherever the depth is unknown."""
    if layers is None:
        return True
    return batch_tokens * hidden * layers * ACT_VALUES_PER_LAYER * 2 > free_bytes / 2


def attach_lora(model, lora: LoraSettings, quantized: bool, checkpointing: bool = True):
    """Wrap a base model with fresh LoRA adapters (QLoRA preparation when its weights are k-bit,
    with gradient checkpointing as ``checkpointing`` says)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        # Non-reentrant checkpointing: torch warns that the reentrant default is going away, and it
        # needs no input-gradient hook.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def computes_tail_logits(model) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` and ``position_ids`` (transformers'
    own models do; some remote-code models do not), so training can skip the prompt's logits."""
    import inspect

    from lift_core.precision import inner_model

    base = inner_model(model)
    params = inspect.signature(base.forward).parameters
    return "logits_to_keep" in params and "position_ids" in params


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _adapter_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters() if v.requires_grad}


@dataclass
class TrainResult:
    best_epoch: int | None
    best_score: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole fit, validation included (over all resumed parts)
    eval_seconds: float = 0.0
    train_tokens: int = 0
    learning_rate: float | None = None  # the rate used: "auto" resolved for the training rows
    epochs: int | None = None  # the epochs planned (early stopping may end sooner): "auto" resolved likewise
    resumed_at_steps: list[int] = field(default_factory=list)  # where a checkpoint carried it on


# A checkpoint is the Trainer's own (adapter, optimizer, scheduler, RNG, step) plus what the
# callback holds: the best epoch's weights and the validation history. The state file is written
# last, so a checkpoint without it was cut off part-way and is never resumed from.
STATE_FILE = "lift_state.json"
BEST_FILE = "lift_best.safetensors"
CHECKPOINT_MINUTES = 10.0  # at most this much training is lost when the process dies


def _mid_epoch(state) -> bool:
    """Whether the step just taken left an epoch unfinished (the Trainer sets ``epoch`` to a whole
    number exactly at an epoch's last step)."""
    return abs(state.epoch - round(state.epoch)) > 1e-9


class TrainingCancelled(Exception):
    """``should_stop`` said stop: the fit ended early, and with a checkpoint folder it kept the
    step it stopped at (at an epoch's last step, after that epoch's validation)."""


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at (the Trainer names them ``checkpoint-<step>``)."""
    return int(checkpoint.name.rsplit("-", 1)[1])


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (None: nothing to resume, or no such folder)."""
    done = [p for p in folder.glob("checkpoint-*") if (p / STATE_FILE).is_file()]
    return max(done, key=checkpoint_step, default=None)


def _make_callback(validate: Validate | None, on_event: Event | None, should_stop: Callable[[], bool] | None,
                   patience: int, collator, result: TrainResult, checkpoint_seconds: float | None,
                   precision: dict[str, Any]):
    from transformers import TrainerCallback

    class LiftCallback(TrainerCallback):
        """Progress, per-epoch validation with best-epoch memory, early stopping, cancel, checkpoints."""

        def __init__(self) -> None:
            self.best_state: dict[str, torch.Tensor] | None = None
            self.bad_epochs = 0
            self.t0 = time.time()
            self.seconds_before = 0.0  # time and tokens of the parts before a resume
            self.tokens_before = 0
            self.last_save = self.t0
            self.eval_seconds = 0.0  # validation time, kept out of the training throughput
            self.last_loss: float | None = None
            self.stopped = False  # early stopping, kept in checkpoints: a stopped run is not trained on
            self.cancelled = False  # should_stop said stop: not kept, a carried-on run trains on

        def elapsed(self) -> float:
            return self.seconds_before + time.time() - self.t0

        def tokens(self) -> int:
            return self.tokens_before + collator.tokens_seen

        def _emit(self, event: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(event)

        def on_log(self, args, state, control, logs=None, **kwargs):
            # logging_steps=1: one log per optimizer step, carrying that step's loss and rate.
            if not logs or "loss" not in logs:
                return control
            self.last_loss = float(logs["loss"])
            elapsed = self.elapsed()
            training = elapsed - self.eval_seconds
            done, total = state.global_step, max(state.max_steps, 1)
            fresh = done - (result.resumed_at_steps[-1] if result.resumed_at_steps else 0)  # steps this process ran
            run_for = time.time() - self.t0
            self._emit({
                "kind": "train", "step": done, "total_steps": total, "epoch": float(state.epoch or 0.0),
                "epochs": result.epochs,
                "loss": self.last_loss, "learning_rate": logs.get("learning_rate"),
                "tokens_per_s": self.tokens() / training if training > 0 else None,
                "elapsed_s": elapsed, "eta_s": run_for / fresh * (total - done) if fresh else None,
            })
            return control

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop is not None and should_stop():
                self.cancelled = control.should_training_stop = True
                # Kept, so a stopped run carries on from here; an epoch's last step is kept by
                # on_epoch_end, after its validation.
                if checkpoint_seconds is not None and _mid_epoch(state):
                    control.should_save = True
            elif (checkpoint_seconds is not None and time.time() - self.last_save >= checkpoint_seconds
                  and _mid_epoch(state)):  # an epoch's last step is saved after its validation, not before
                control.should_save = True
            return control

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if self.cancelled and _mid_epoch(state):  # the Trainer ends a cut-short epoch here too
                return control
            if checkpoint_seconds is not None:
                control.should_save = True  # a new best epoch is worth keeping
            if validate is None:
                return control
            epoch = int(round(state.epoch or 0))
            started = time.time()
            score, metrics = validate(model)
            self.eval_seconds += time.time() - started
            train_loss = self.last_loss
            record = {"epoch": epoch, "score": score, "train_loss": train_loss, **metrics}
            result.history.append(record)
            improved = result.best_score is None or score > result.best_score
            if improved:
                result.best_score, result.best_epoch = score, epoch
                self.best_state = _adapter_state(model)
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            self._emit({"kind": "eval", "step": state.global_step, "epoch": epoch, "best_epoch": result.best_epoch,
                        "improved": improved, **{k: v for k, v in record.items() if k != "epoch"}})
            if patience and self.bad_epochs >= patience:
                control.should_training_stop = self.stopped = True
            return control

        def on_save(self, args, state, control, **kwargs):
            from safetensors.torch import save_file

            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if self.best_state is not None:
                save_file(self.best_state, str(folder / BEST_FILE))
            read_ahead = collator.last_tokens if _mid_epoch(state) else 0  # collated, not yet trained on
            doc = {"best_score": result.best_score, "best_epoch": result.best_epoch, "history": result.history,
                   "bad_epochs": self.bad_epochs, "stopped": self.stopped, "seconds": self.elapsed(),
                   "eval_seconds": self.eval_seconds, "tokens": self.tokens() - read_ahead,
                   "resumed_at_steps": result.resumed_at_steps, **precision}
            tmp = folder / (STATE_FILE + ".part")
            tmp.write_text(json.dumps(doc, default=float))  # numpy scalars in metrics
            tmp.replace(folder / STATE_FILE)
            for old in Path(args.output_dir).glob("checkpoint-*"):
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
            self.last_save = time.time()
            return control

        def restore(self, checkpoint: Path) -> None:
            """Carry on from ``checkpoint``: the callback's half (the Trainer restores its own)."""
            from safetensors.torch import load_file

            doc = json.loads((checkpoint / STATE_FILE).read_text())
            then = {k: doc[k] for k in precision}
            if then != precision:
                raise LiftError(f"the checkpoint in {checkpoint.parent} was trained with {then} and this run has "
                                f"{precision}: carry it on where it started (same device; bf16_cpu set to match), or "
                                "start afresh (Run again on the Runs page, or an empty checkpoint folder)")
            score = doc["best_score"]
            result.best_score = tuple(score) if isinstance(score, list) else score  # JSON turns tuples into lists
            result.best_epoch, result.history = doc["best_epoch"], doc["history"]
            self.bad_epochs, self.stopped, self.seconds_before = doc["bad_epochs"], doc["stopped"], doc["seconds"]
            self.eval_seconds, self.tokens_before = doc["eval_seconds"], doc["tokens"]
            result.resumed_at_steps = [*doc["resumed_at_steps"], checkpoint_step(checkpoint)]
            if (checkpoint / BEST_FILE).is_file():
                self.best_state = load_file(str(checkpoint / BEST_FILE))

    return LiftCallback()


def train_adapter(model, train_features: list[dict], collator, settings: TrainSettings, device: str,
                  validate: Validate | None = None, on_event: Event | None = None,
                  should_stop: Callable[[], bool] | None = None, bf16: bool = False,
                  checkpoint_dir: Path | None = None) -> TrainResult:
    """Train the trainable parameters of ``model`` in place (LoRA, or a prefix/prompt and head);
    on return it holds the best epoch's weights.

    ``collator`` turns a list of features into a batch whose forward returns a ``loss``, and counts
    ``tokens_seen`` for the throughput in progress events. With ``checkpoint_dir`` a checkpoint is
    kept there (each epoch, and every ``CHECKPOINT_MINUTES``), and a later call with the same
    folder and settings carries on from it instead of starting again: hours-long CPU runs survive
    a killed process. When ``should_stop`` turns true it raises ``TrainingCancelled`` after the
    step in progress (kept as a checkpoint), so nothing goes on to predict with a half-trained model.
    """
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    set_seed(settings.seed)
    result = TrainResult(best_epoch=None, best_score=None,
                         learning_rate=settings.resolved_learning_rate(len(train_features)),
                         epochs=settings.resolved_epochs(len(train_features)))
    callback = _make_callback(validate, on_event, should_stop, settings.early_stopping_patience, collator, result,
                              None if checkpoint_dir is None else CHECKPOINT_MINUTES * 60,
                              {"device": device, "bf16": bf16})
    resume = None if checkpoint_dir is None else latest_checkpoint(checkpoint_dir)
    if resume is not None:
        callback.restore(resume)
    cuda = device == "cuda"
    with tempfile.TemporaryDirectory(prefix="lift-trainer-") as scratch:
        args = TrainingArguments(
            output_dir=str(checkpoint_dir or scratch), per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.grad_accum, num_train_epochs=result.epochs,
            learning_rate=result.learning_rate, warmup_steps=settings.warmup_ratio,
            weight_decay=settings.weight_decay, lr_scheduler_type="linear", seed=settings.seed,
            data_seed=settings.seed, logging_steps=1, save_strategy="no", eval_strategy="no",
            report_to="none", disable_tqdm=True, use_cpu=not cuda, bf16=bf16,
            remove_unused_columns=False, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=_Rows(train_features), data_collator=collator,
                          callbacks=[callback])
        trainer.remove_callback(PrinterCallback)  # progress goes to our events, not to stdout
        if not callback.stopped:  # stopped early before the kill: only the best weights are wanted
            trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
        result.seconds = callback.elapsed()
    if callback.cancelled:
        raise TrainingCancelled()
    result.train_tokens = callback.tokens()
    result.eval_seconds = callback.eval_seconds
    if callback.best_state is not None:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in callback.best_state.items():
                params[name].copy_(value.to(params[name].device))
    model.eval()  # done training: dropout off, as from_pretrained hands models over
    return result
