"""Is a pair method learning at all? Per-epoch training loss, validation accuracy, test accuracy.

One run of one method on one built-in data set (split seed 0), with a learning rate and epochs of
your choice. ``--leak`` adds the target itself as a feature column ("hint"): a method that cannot
learn even that is broken, one that learns it but not the real table finds the table hard.

    .venv/bin/python bench/pair_sanity.py ltuning-prompt --epochs 3 --lr 1e-3 --leak
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its CPU-kernel notice, before peft imports it

from lift_core.config import AUTO, METHODS, LiftConfig, TrainSettings  # noqa: E402
from lift_core.experiment import RunRequest, _parts, load_table, make_estimator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", choices=list(METHODS))
    ap.add_argument("--data", default="iris")
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, help="learning rate (default: automatic)")
    ap.add_argument("--leak", action="store_true", help="add the target as a feature column named 'hint'")
    args = ap.parse_args()
    table = load_table(RunRequest(data=args.data))
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = _parts(table)
    if args.leak:
        X_tr, X_val, X_te = X_tr.assign(hint=y_tr), X_val.assign(hint=y_val), X_te.assign(hint=y_te)
    cfg = LiftConfig(method=args.method, model=args.model,
                     train=TrainSettings(epochs=args.epochs, learning_rate=args.lr or AUTO))
    p = table.prepared
    est = make_estimator(p.task, cfg, p.target, list(p.classes))
    events: list[dict] = []
    started = time.time()
    est.fit(X_tr, y_tr, eval_set=(X_val, y_val), on_event=events.append)
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    per_epoch = len(losses) // args.epochs
    print(f"{args.method} on {args.data}{' (target leaked as a feature)' if args.leak else ''}, "
          f"lr {est.train_result_.learning_rate:.2g}, {args.epochs} epochs, {est.n_trainable_:,} trained parameters, "
          f"{time.time() - started:.0f} s")
    print("mean training loss per epoch:",
          [round(float(np.mean(losses[i * per_epoch:(i + 1) * per_epoch])), 3) for i in range(args.epochs)])
    print("validation accuracy per epoch:", [round(e["val_accuracy"], 3) for e in events if e["kind"] == "eval"])
    print(f"test accuracy (best validation epoch): {est.score(X_te, y_te):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
