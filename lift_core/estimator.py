"""LIFT models with scikit-learn's estimator API, so one comparison loop serves LIFT and baselines.

``fit(X, y, eval_set=(X_val, y_val))`` serializes rows, fine-tunes LoRA adapters, keeps the best
validation epoch; ``predict``/``predict_proba``/``score`` behave like any classifier or regressor.
An answer that cannot be read is counted in ``n_invalid_`` and replaced by the training majority
class or mean: it is never dropped from a metric (LIFT's code dropped them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from transformers import set_seed

from lift_core.config import PAIR_METHODS, LiftConfig
from lift_core.errors import LiftError
from lift_core.examples import (Example, TrainCollator, check_fits, encode_answer, encode_prompts, end_ids,
                                training_features)
from lift_core.lora_dropout import share_lora_dropout
from lift_core.metrics import classification_metrics, regression_metrics
from lift_core.models import cuda_available, load_model, quantization_to_predict
from lift_core.predict import generate_answers, score_candidates, softmax_rows
from lift_core.serialize import Serializer, parse_number
from lift_core.precision import for_cpu_prediction, use_bf16
from lift_core.training import (TrainResult, attach_lora, computes_tail_logits, model_depth, model_width,
                                needs_checkpointing, train_adapter, trainable_parameters)

STATE_FILE = "lift.json"


def check_features(features: list[str], frame: pd.DataFrame, where: str = "the table") -> None:
    """Refuse rows that lack a column the model was trained on (extra columns are ignored)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise LiftError(f"{where} lacks the column(s) {', '.join(map(repr, missing))} that the model was "
                        "trained on; add them with the same names")


def input_kind(dtype: str) -> str:
    """How a one-row form asks for a feature of this stored dtype: "integer", "number" or "text"."""
    dtype = str(dtype).lower()
    if dtype.startswith(("int", "uint")):
        return "integer"
    return "number" if dtype.startswith("float") else "text"


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _LiftBase(BaseEstimator):
    task: str = ""
    shared_dropout = True  # cheap LoRA dropout on CPU (lora_dropout.py); bench/speed.py's plain recipe turns it off
    gradient_checkpointing: bool | None = None  # None: as memory needs (4-bit only); bench/speed.py's plain recipe: on

    def __init__(self, config: LiftConfig | None = None, target: str = "y") -> None:
        self.config = config
        self.target = target

    # -- fitting -----------------------------------------------------------------------------
    def _cfg(self) -> LiftConfig:
        cfg = self.config or LiftConfig()
        cfg.validate()
        return cfg

    def _bind(self, features: list[str], classes: list | None) -> None:
        cfg = self._cfg()
        self.features_ = features
        self.serializer_ = Serializer(cfg.prompt, features, self.target, self.task, classes)
        self.end_ = end_ids(self.lm_.tokenizer, cfg.prompt)
        if self.task == "classification":
            self.candidate_ids_ = [encode_answer(self.lm_.tokenizer, a, self.end_) for a in self.serializer_.answers]

    def _prompt_ids(self, X: pd.DataFrame) -> list[list[int]]:
        check_features(self.features_, X)
        ids = encode_prompts(self.lm_.tokenizer, self.serializer_.prompts(X))
        check_fits(ids, self._longest_answer(), self.lm_.context_length, list(X.index))
        return ids

    def _longest_answer(self) -> int:
        if self.task == "classification":
            return max(len(c) for c in self.candidate_ids_)
        return self._max_new_tokens()

    def _max_new_tokens(self) -> int:
        return 4 * self._cfg().prompt.answer_digits + 8

    def _start_fit(self, X: pd.DataFrame, y) -> tuple[LiftConfig, pd.Series]:
        """What every fit does first: check the target, load the model, bind the prompts to it."""
        cfg = self._cfg()
        y = pd.Series(np.asarray(y))
        self._set_target_stats(y)
        self.lm_ = load_model(cfg.model, cfg.quantization, cfg.trust_remote_code)
        self._bind(list(X.columns), getattr(self, "classes_", None))
        return cfg, y

    def fit(self, X: pd.DataFrame, y, eval_set: tuple[pd.DataFrame, Any] | None = None,
            on_event: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
            checkpoint_dir: Path | None = None):
        """Fine-tune; with ``checkpoint_dir``, carry on from the checkpoint a killed fit left there."""
        cfg, y = self._start_fit(X, y)
        tok = self.lm_.tokenizer
        prompts = self._prompt_ids(X)
        answers = [encode_answer(tok, self.serializer_.answer(v), self.end_) for v in y]
        examples = [Example(p, a) for p, a in zip(prompts, answers)]
        set_seed(cfg.train.seed)  # LoRA's random init is part of the run: same seed, same adapter
        quantized = self.lm_.quantization != "none"
        self.checkpointing_ = quantized and self._needs_checkpointing(examples, cfg.train.batch_size)
        self.lm_.model = attach_lora(self.lm_.model, cfg.lora, quantized=quantized, checkpointing=self.checkpointing_)
        if self.lm_.device == "cpu" and self.shared_dropout:
            share_lora_dropout(self.lm_.model)
        self.n_trainable_ = trainable_parameters(self.lm_.model)
        validate = self._validator(eval_set, on_event)
        features = training_features(examples)
        probe = self._collator(features)(features[:cfg.train.batch_size])  # a throwaway collator: no counts
        self.bf16_ = use_bf16(self.lm_.model, probe, cfg.train, self.lm_.device, cfg.model)
        collator = self._collator(features)
        self.train_result_: TrainResult = train_adapter(
            self.lm_.model, features, collator, cfg.train, self.lm_.device,
            validate=validate, on_event=on_event, should_stop=should_stop, bf16=self.bf16_,
            checkpoint_dir=checkpoint_dir)
        for_cpu_prediction(self.lm_.model, self.bf16_, self.lm_.device)
        self._last = None  # best weights restored: scores from training-time validation are stale
        return self

    def _needs_checkpointing(self, examples: list[Example], batch_size: int) -> bool:
        """Gradient checkpointing for a 4-bit run: only where the longest rows' batch needs the memory
        (``needs_checkpointing``), measured as the memory estimate measures it (``resources.shape_of``)."""
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        if not cuda_available():
            return True
        model = self.lm_.model
        longest = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
        return needs_checkpointing(model_width(model), model_depth(model.config), batch_size * longest,
                                   torch.cuda.mem_get_info()[0])

    def _validator(self, eval_set: tuple[pd.DataFrame, Any] | None,
                   on_event: Callable[[dict], None] | None = None) -> Callable[[Any], Any] | None:
        """Each epoch's validation, with the validation prompts tokenized once, reporting its rows
        as "stage" events (on long rows it takes minutes); None without rows."""
        if eval_set is None or not len(eval_set[0]):
            return None
        val_prompts, y_val = self._prompt_ids(eval_set[0]), np.asarray(eval_set[1])

        def progress(done: int, total: int) -> None:
            if on_event is not None:
                on_event({"kind": "stage", "stage": "validation", "done": done, "total": total})

        return lambda model: self._validate(val_prompts, y_val, progress)

    def _collator(self, features: list[dict]) -> TrainCollator:
        """How training rows become batches (bench/speed.py swaps in the plain recipe's to compare)."""
        return TrainCollator(self.lm_.tokenizer.pad_token_id, tail_logits=computes_tail_logits(self.lm_.model))

    def _bf16(self) -> bool:
        """Predict in the precision training and validation used (a loaded model: as saved)."""
        return bool(getattr(self, "bf16_", False))

    # -- prediction helpers ------------------------------------------------------------------
    def _generate(self, prompt_ids, progress=None) -> list[str]:
        cfg = self._cfg()
        return generate_answers(self.lm_.model, self.lm_.tokenizer, prompt_ids, self.lm_.tokenizer.pad_token_id,
                                self.lm_.device, self._max_new_tokens() if self.task == "regression"
                                else self._longest_answer() + 2, self.end_, cfg.eval_batch_size, self._bf16(),
                                progress)

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        cfg = self._cfg()
        return {
            "task": self.task, "target": self.target, "features": self.features_,
            "config": cfg.to_dict(), "base_model": cfg.model, "bf16": self._bf16(), "quantization": self.lm_.quantization,
            **self._target_state(),
        }

    def save(self, folder: str | Path) -> Path:
        """One folder: the peft adapter (safetensors) plus lift.json, all needed to predict again."""
        folder = Path(folder)
        self.lm_.model.save_pretrained(folder, safe_serialization=True)
        (folder / STATE_FILE).write_text(json.dumps(self.state(), indent=2, default=_native))
        return folder

    @staticmethod
    def load(folder: str | Path, trust_remote_code: bool = False) -> "_LiftBase":
        """Rebuild a fitted model from a folder written by ``save`` (an unpacked zip's ``adapter/``).

        ``trust_remote_code`` is the caller's decision, never the zip's: a downloaded adapter must
        not be able to switch on a hub model's own Python code.
        """
        folder = Path(folder)
        with _damaged_state(folder):
            state = json.loads((folder / STATE_FILE).read_text())
            if not (isinstance(state, dict) and isinstance(state.get("config"), dict)
                    and state.get("task") in ("classification", "regression")
                    and isinstance(state.get("features"), list) and all(isinstance(f, str) for f in state["features"])
                    and isinstance(state["config"].get("model"), str)):
                raise ValueError("not the shape LIFT Studio writes")
            config = LiftConfig.from_dict(state["config"])
            config.validate()
            config.trust_remote_code = trust_remote_code
            if config.method in PAIR_METHODS:
                cls = PairClassifier
            else:
                cls = LiftClassifier if state["task"] == "classification" else LiftRegressor
            est = cls(config, target=state["target"])
            est._load_target_state(state)
            est.bf16_ = bool(state.get("bf16", False))  # predict in the precision it was validated in
        cfg = est._cfg()
        est.lm_ = load_model(cfg.model, quantization_to_predict(state.get("quantization"), cfg.quantization),
                             cfg.trust_remote_code)
        with _damaged_state(folder):  # its prompt settings, read by the serializer
            est._bind(list(state["features"]), getattr(est, "classes_", None))
        try:
            est._load_weights(folder)
        except Exception as exc:  # noqa: BLE001 - peft/torch raise RuntimeError/ValueError/KeyError on a bad adapter
            raise LiftError(f"the adapter in {folder} does not fit its base model {cfg.model!r} ({str(exc)[:160]}); "
                            "export it again from the run that trained it") from exc
        for_cpu_prediction(est.lm_.model, est.bf16_, est.lm_.device)
        return est

    def _load_weights(self, folder: Path) -> None:
        from peft import PeftModel

        self.lm_.model = PeftModel.from_pretrained(self.lm_.model, folder, is_trainable=False)


@contextmanager
def _damaged_state(folder: Path) -> Iterator[None]:
    """A lift.json that is missing, not JSON or not the shape ``save`` writes (a zip edited or made
    elsewhere) is the user's to fix, not a traceback."""
    try:
        yield
    except LiftError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LiftError(f"{folder} holds no LIFT Studio adapter (its {STATE_FILE} is missing or damaged: "
                        f"{str(exc)[:120]}); load an adapter.zip exported by LIFT Studio") from exc


class LiftClassifier(ClassifierMixin, _LiftBase):
    """``classes`` names every class up front (the whole table's), so a class that the training
    split happens to lack is still a candidate answer and validation never meets an unknown label."""

    task = "classification"

    def __init__(self, config: LiftConfig | None = None, target: str = "y", classes: list | None = None) -> None:
        super().__init__(config, target)
        self.classes = classes

    def _set_target_stats(self, y: pd.Series) -> None:
        if y.isna().any():
            raise LiftError("the target has missing values; drop those rows first")
        seen = pd.unique(y)
        known = list(self.classes) if self.classes is not None else seen
        unknown = [v for v in seen if v not in set(known)]
        if unknown:
            raise LiftError(f"training labels {unknown[:5]} are not among the classes given; list every class")
        self.classes_ = np.array(sorted(known, key=lambda v: (str(type(v)), v)), dtype=object)
        counts = y.value_counts()
        self.majority_ = counts.index[0]

    def _target_state(self) -> dict[str, Any]:
        return {"classes": [_native(c) for c in self.classes_], "majority": _native(self.majority_),
                "answers": self.serializer_.answers}

    def _load_target_state(self, state: dict[str, Any]) -> None:
        self.classes_ = np.array(state["classes"], dtype=object)
        self.majority_ = state["majority"]

    def _validate(self, prompt_ids, y_val, progress=None) -> tuple[tuple[float, float], dict[str, float]]:
        self._last = None  # the weights changed since the last call: never reuse its scores
        proba = self._proba_from_ids(prompt_ids, progress)
        pred = self.classes_[proba.argmax(axis=1)].astype(object)
        pred[self.invalid_mask_] = None  # an unreadable answer is wrong, whatever the fallback
        m = classification_metrics(y_val, pred, proba, list(self.classes_), self.n_invalid_)
        # Accuracy on a small validation set ties often; the log-loss breaks ties toward confidence.
        return (m["accuracy"], -m["log_loss"]), {"val_accuracy": m["accuracy"], "val_log_loss": m["log_loss"]}

    def _proba_from_ids(self, prompt_ids, progress=None) -> np.ndarray:
        """Class probabilities; sets ``invalid_mask_`` (rows whose generated answer named no class).

        The last result is kept, so ``predict`` then ``predict_proba`` on the same rows (as the
        comparison loop does) reads the model once.
        """
        key = (self._cfg().method, self._cfg().predict_mode, hash(tuple(map(tuple, prompt_ids))))
        cached = getattr(self, "_last", None)
        if cached is None or cached[0] != key:
            cached = (key, *self._compute_proba(prompt_ids, progress))
            self._last = cached
        self.invalid_mask_, self.n_invalid_ = cached[2], int(cached[2].sum())
        return cached[1]

    def _compute_proba(self, prompt_ids, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, invalid mask) straight from the model."""
        cfg = self._cfg()
        k = len(self.classes_)
        if cfg.predict_mode == "generate":
            picked = [self.serializer_.class_of_answer(t) for t in self._generate(prompt_ids, progress)]
            invalid = np.array([p is None for p in picked], dtype=bool)
            index = {c: i for i, c in enumerate(self.classes_)}
            proba = np.full((len(picked), k), 1.0 / k)  # no answer: no preference
            for row, p in enumerate(picked):
                if p is not None:
                    proba[row] = 0.0
                    proba[row, index[p]] = 1.0
            return proba, invalid
        scores = score_candidates(self.lm_.model, prompt_ids, self.candidate_ids_,
                                  self.lm_.tokenizer.pad_token_id, self.lm_.device, cfg.eval_batch_size,
                                  self._bf16(), progress)
        return softmax_rows(scores), np.zeros(len(prompt_ids), dtype=bool)

    def predict_proba(self, X: pd.DataFrame, progress=None) -> np.ndarray:
        return self._proba_from_ids(self._prompt_ids(X), progress)

    def predict(self, X: pd.DataFrame, progress=None) -> np.ndarray:
        """The most likely class; a row whose generated answer named no class gets the training majority."""
        pred = self.classes_[self.predict_proba(X, progress).argmax(axis=1)].astype(object)
        pred[self.invalid_mask_] = self.majority_
        return pred


class LiftRegressor(RegressorMixin, _LiftBase):
    task = "regression"

    def _set_target_stats(self, y: pd.Series) -> None:
        try:
            values = pd.to_numeric(y).astype(float)
        except (TypeError, ValueError) as exc:
            raise LiftError("regression needs a numeric target; choose classification for this column") from exc
        self.y_mean_ = float(values.mean())

    def _target_state(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean_}

    def _load_target_state(self, state: dict[str, Any]) -> None:
        self.y_mean_ = float(state["y_mean"])

    def _validate(self, prompt_ids, y_val, progress=None) -> tuple[tuple[float], dict[str, float]]:
        pred = self._predict_ids(prompt_ids, progress)
        m = regression_metrics(np.asarray(y_val, dtype=float), pred, self.n_invalid_)
        return (-m["rmse"],), {"val_rmse": m["rmse"], "val_invalid_rate": m["invalid_rate"]}

    def _predict_ids(self, prompt_ids, progress=None) -> np.ndarray:
        texts = self._generate(prompt_ids, progress)
        values = [parse_number(t, self._cfg().prompt.end_marker) for t in texts]
        self.invalid_mask_ = np.array([v is None for v in values], dtype=bool)
        self.n_invalid_ = int(self.invalid_mask_.sum())
        self.parsed_ = values
        return np.array([self.y_mean_ if v is None else v for v in values], dtype=float)

    def predict(self, X: pd.DataFrame, progress=None) -> np.ndarray:
        return self._predict_ids(self._prompt_ids(X), progress)


class PairClassifier(LiftClassifier):
    """L-Tuning or plain prefix/prompt tuning (``config.method``) behind the same API as LIFT.

    The language model stays frozen; a (row, label) pair scorer is trained (lift_core.ltuning)
    and ``predict_proba`` is the softmax over every label's score.
    """

    def _bind(self, features: list[str], classes: list | None) -> None:
        from lift_core.ltuning import PairBatcher, encode_labels, label_texts

        super()._bind(features, classes)
        tok = self.lm_.tokenizer
        self.label_texts_ = label_texts(self.target, self.serializer_.answers)
        self.label_ids_ = encode_labels(tok, self.label_texts_)
        self.batcher_ = PairBatcher(tok.pad_token_id, self.label_ids_, self._cfg().method in ("prefix", "prompt"))

    def _longest_answer(self) -> int:
        from lift_core.ltuning import extra_tokens

        cfg = self._cfg()
        return extra_tokens(cfg.method, cfg.pair, [len(i) for i in self.label_ids_])

    def _collator(self, features: list[dict]):
        from lift_core.ltuning import PairCollator

        return PairCollator(self.batcher_, len(self.classes_), self._cfg().train.seed)

    def _build_scorer(self):
        from lift_core.ltuning import PairScorer, padded_labels

        cfg = self._cfg()
        ids, mask = padded_labels(self.label_ids_, self.lm_.tokenizer.pad_token_id)
        self.scorer_ = PairScorer(self.lm_.model, cfg.method, cfg.pair, ids, mask)
        return self.scorer_

    def fit(self, X: pd.DataFrame, y, eval_set: tuple[pd.DataFrame, Any] | None = None,
            on_event: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None):
        cfg, y = self._start_fit(X, y)
        index = {c: i for i, c in enumerate(self.classes_)}
        features = [{"prompt_ids": p, "label": index[v]} for p, v in zip(self._prompt_ids(X), y)]
        set_seed(cfg.train.seed)  # the trained parts' random init is part of the run
        scorer = self._build_scorer()
        self.n_trainable_ = trainable_parameters(scorer)
        validate = self._validator(eval_set, on_event)
        probe = self._collator(features)(features[:cfg.train.batch_size])  # a throwaway collator: no draws
        self.bf16_ = use_bf16(scorer, probe, cfg.train, self.lm_.device, f"{cfg.model}|{cfg.method}")
        collator = self._collator(features)
        self.train_result_ = train_adapter(scorer, features, collator, cfg.train, self.lm_.device, validate=validate,
                                           on_event=on_event, should_stop=should_stop, bf16=self.bf16_)
        self._last = None
        return self

    def _compute_proba(self, prompt_ids, progress=None) -> tuple[np.ndarray, np.ndarray]:
        from lift_core.ltuning import score_pairs

        cfg = self._cfg()
        scores = score_pairs(self.scorer_, self.batcher_, prompt_ids, len(self.classes_), self.lm_.device,
                             cfg.eval_batch_size, self._bf16(), progress)
        return softmax_rows(scores), np.zeros(len(prompt_ids), dtype=bool)  # every row gets a label

    def save(self, folder: str | Path) -> Path:
        """One folder: the trained prefix/prompt parts and head (safetensors) plus lift.json."""
        from safetensors.torch import save_file

        from lift_core.ltuning import WEIGHTS_FILE

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.scorer_.trainable_state(), str(folder / WEIGHTS_FILE))
        (folder / STATE_FILE).write_text(json.dumps(self.state(), indent=2, default=_native))
        return folder

    def _load_weights(self, folder: Path) -> None:
        from safetensors.torch import load_file

        from lift_core.ltuning import WEIGHTS_FILE

        scorer = self._build_scorer()
        weights = load_file(str(folder / WEIGHTS_FILE))
        expected = set(scorer.trainable_state())
        if set(weights) != expected:
            raise ValueError(f"{WEIGHTS_FILE} holds {sorted(set(weights) ^ expected)[:4]} that do not match "
                             f"the {self._cfg().method} method")
        scorer.load_state_dict(weights, strict=False)
        scorer.eval()


load_estimator = _LiftBase.load


def predictions_table(est: _LiftBase, frame: pd.DataFrame) -> pd.DataFrame:
    """The input rows with the prediction (and, for classification, a probability per class)."""
    out = frame.copy()
    if est.task == "classification":
        proba = est.predict_proba(frame)
        out[f"{est.target} (predicted)"] = est.classes_[proba.argmax(axis=1)]
        for i, c in enumerate(est.classes_):
            out[f"P({c})"] = proba[:, i]
    else:
        out[f"{est.target} (predicted)"] = est.predict(frame)
        out["answer valid"] = [a is not None for a in est.parsed_]
    return out
