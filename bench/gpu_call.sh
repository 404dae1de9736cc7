#!/usr/bin/env bash
# Everything a lent GPU machine measures, in one call (device time is short and each start costs
# minutes): install the carried wheels, the speed benchmark (bench/gpu.py), then the whole CUDA
# path a user's run takes, once: `lift_core run` (4-bit QLoRA, evaluation, baselines, adapter zip)
# on a random-weight SmolLM2-135M folder and `lift_core predict` from that zip. Results go to $OUT.
# From the repo root, after bench/gpu.py's docstring's preparation here (.gpu/tokenizer, .whl/):
#     run  command="bash bench/gpu_call.sh"  carry=[".whl", ".gpu"]
set -uo pipefail
export PYTHONUNBUFFERED=1 LIFT_HOME=/tmp/lift-home
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi -L
python3 -c "import torch, transformers, peft, bitsandbytes as b; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'peft', peft.__version__, 'bitsandbytes', b.__version__)"

timeout "${BENCH_S:-420}" python3 bench/gpu.py --tokenizer .gpu/tokenizer --archs smollm2-135m qwen2.5-0.5b \
    --out "$OUT" 2>&1 | tee "$OUT/bench.log" | grep -v "it/s\]" | tail -60

echo "== end to end: lift_core run + predict, 4-bit on CUDA, random-weight SmolLM2-135M folder, iris, 5 epochs"
python3 bench/gpu.py --tokenizer .gpu/tokenizer --archs smollm2-135m --save-model /tmp/smol >/dev/null 2>&1
SECONDS=0
timeout "${E2E_S:-150}" python3 -m lift_core run --data iris --model /tmp/smol --epochs 5 --out /tmp/e2e \
    > "$OUT/e2e.log" 2>&1
echo "lift_core run: exit $?, ${SECONDS} s (whole seconds)"
timeout 60 python3 -m lift_core predict --adapter /tmp/e2e/adapter.zip --data /tmp/e2e/test_predictions.csv \
    --out /tmp/e2e/pred.csv >> "$OUT/e2e.log" 2>&1
echo "lift_core predict: exit $?"
cp /tmp/e2e/metrics.json "$OUT/e2e-metrics.json" 2>/dev/null
grep -v "it/s\]\|step/s" "$OUT/e2e.log" | tail -25
