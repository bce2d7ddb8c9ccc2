#!/usr/bin/env bash
# The speed benchmarks on a GPU, in one call (each with its own time limit): bench_core.py (a training step and
# generation, rnn_hf against a raw nn.LSTM) and bench_generate.py (the demo's LSTM LM against a GPT-2 of similar
# size); then the tests marked gpu. Prints what they print; nothing is written.
# Usage: bash benchmarks/gpu_check.sh [python]
set -u
PY=${1:-python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name(0))" || exit 1
echo "== bench_core.py"
timeout 100 $PY benchmarks/bench_core.py --device cuda
echo "== bench_generate.py"
timeout 100 $PY benchmarks/bench_generate.py --device cuda
echo "== pytest -m gpu (the GPU machine's image lacks datasets and aeon: carry their wheels, see the device README)"
if $PY -c "import datasets, aeon" 2>/dev/null; then
    timeout 200 $PY -m pytest -m gpu -q -p no:cacheprovider tests/test_training_time_series.py
else
    echo "skipped: datasets or aeon is not installed"
fi
