#!/usr/bin/env bash
# Everything a lent GPU machine measures, in one call (a session has 15 minutes of device time and
# each machine start costs one or two): install the carried wheels, then bench/gpu.py into $OUT,
# carrying on from docs/benchmarks/gpu/gpu.json where an earlier call left it; with E2E_S set, also
# the whole CUDA path a user's run takes (`lift_core run` on a random-weight SmolLM2-135M folder,
# then `lift_core predict` from its adapter zip), measured once on 2026-12-04 (docs/benchmarks/gpu-15473d6/).
# Here first, as bench/gpu.py's docstring says: .gpu/tokenizer and the wheels in .whl/. Then:
#     run  command="LIFT_COMMIT=<git rev-parse --short HEAD> bash bench/gpu_call.sh"  carry=[".whl", ".gpu"]
# and copy $OUT's gpu.json and gpu.md into docs/benchmarks/gpu/.
set -uo pipefail
export PYTHONUNBUFFERED=1 LIFT_HOME=/tmp/lift-home
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi -L
python3 -c "import torch, transformers, peft, bitsandbytes as b; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'peft', peft.__version__, 'bitsandbytes', b.__version__)"

resume=()
[ -f docs/benchmarks/gpu/gpu.json ] && resume=(--resume docs/benchmarks/gpu/gpu.json)
# Per-row generate on the 30 test rows only: over all 150 rows it took 148 of a call's 430 s (4-bit, H200).
timeout "${BENCH_S:-540}" python3 bench/gpu.py --tokenizer .gpu/tokenizer --archs smollm2-135m qwen2.5-0.5b \
    --generate-rows 30 "${resume[@]}" --out "$OUT" 2>&1 | tee "$OUT/bench.log" | grep -v "it/s\]" | tail -60

if [ "${E2E_S:-0}" -gt 0 ]; then
    echo "== end to end: lift_core run + predict, 4-bit on CUDA, random-weight SmolLM2-135M folder, iris, 5 epochs"
    python3 bench/gpu.py --tokenizer .gpu/tokenizer --archs smollm2-135m --save-model /tmp/smol >/dev/null 2>&1
    SECONDS=0
    timeout "$E2E_S" python3 -m lift_core run --data iris --model /tmp/smol --epochs 5 --out /tmp/e2e \
        > "$OUT/e2e.log" 2>&1
    echo "lift_core run: exit $?, ${SECONDS} s (whole seconds)"
    timeout 60 python3 -m lift_core predict --adapter /tmp/e2e/adapter.zip --data /tmp/e2e/test_predictions.csv \
        --out /tmp/e2e/pred.csv >> "$OUT/e2e.log" 2>&1
    echo "lift_core predict: exit $?"
    cp /tmp/e2e/metrics.json "$OUT/e2e-metrics.json" 2>/dev/null
    grep -v "it/s\]\|step/s" "$OUT/e2e.log" | tail -25
fi
