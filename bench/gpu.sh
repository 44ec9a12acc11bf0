#!/usr/bin/env bash
# GPU rows of the benchmark + CPU/GPU agreement, in one run of a few minutes on a machine with an NVIDIA GPU.
#
#   bash bench/gpu.sh [OUT_DIR]          (default: $OUT if set, else out/gpu)
#
# Uses the machine's own python3 with a CUDA build of torch (the project's CPU venv is not used). Installs
# what it needs without the internet when it can: the project itself (editable, no dependencies), and
# torch-tensorrt from wheels in ./.whl (carried to an offline machine) or, where pip can reach an index,
# from PyPI. Without torch-tensorrt the TensorRT rows say why and the CUDA rows still run.
# Writes into OUT_DIR: env.txt, gpu_tests.txt (the GPU agreement tests), agreement.json, bench_gpu.json, gpu.md.
set -uo pipefail
OUT_DIR=${1:-${OUT:-out/gpu}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
cd "$(dirname "$0")/.."

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT_DIR/env.txt"

# The project: importable from the checkout (its runtime dependencies are on the GPU image already:
# numpy, opencv, onnxruntime, pyyaml, tqdm, matplotlib); editable install when pip allows it.
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# torch-tensorrt: optional. Local wheels first (offline machine), then the index (if reachable, 2 min cap).
if ! $PY -c "import torch_tensorrt" >/dev/null 2>&1; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/trt-site .whl/*.whl \
      && export PYTHONPATH="/tmp/trt-site:$PYTHONPATH"
  else
    timeout 120 $PY -m pip install -q "torch-tensorrt" 2>&1 | tail -2 || true
  fi
fi
$PY -c "import torch_tensorrt as t; print('torch_tensorrt', t.__version__)" 2>&1 | tee -a "$OUT_DIR/env.txt"

# 1. the agreement tests on a tiny model (CUDA and TensorRT against the CPU; skips say why)
timeout 300 $PY -m pytest -q -rs tests/test_gpu_agreement.py tests/test_backends.py 2>&1 | tee "$OUT_DIR/gpu_tests.txt"

# 2. agreement on the trained weights and real pairs, then the GPU speed rows through the pipeline
IRVIS_ENGINE_CACHE=/tmp/irvis-engines timeout 420 $PY -m bench.gpu --out "$OUT_DIR" --frames 30 --repeats 2 2>&1 \
  | tee "$OUT_DIR/bench_gpu.log"
echo "done: $(ls "$OUT_DIR")"
