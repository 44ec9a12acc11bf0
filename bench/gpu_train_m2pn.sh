#!/usr/bin/env bash
# One prepared, time-boxed M2PN training run at the paper's widths on a lent accelerator (issue 11, item 5).
#
# Here, once (the accelerator machine cannot see ../shared, so the data travels with the tree, < 64 MiB):
#   echo /.gpu_data/ >> .git/info/exclude
#   mkdir -p .gpu_data && cp -r ../shared/data/roadscene .gpu_data/ && cp -r ../shared/data/msrs/extra .gpu_data/msrs_extra
# Then through the device tool: run(command="bash bench/gpu_train_m2pn.sh 7", carry=[".gpu_data"], timeout_s=600)
# The checkpoint and weights come back under $OUT; evaluate them here with
#   python -m engine.evaluate --data ../shared/data/tno --methods m2pn@PATH,gff,max --reference ../shared/data/reference/tno_peers.csv --out OUT
set -euo pipefail
MINUTES="${1:-7}"
cd "$(dirname "$0")/.."
export IRVIS_DATA_DIR="$PWD/.gpu_data" PYTHONUNBUFFERED=1
test -d .gpu_data/roadscene || { echo "error: .gpu_data/roadscene missing (see the header of $0)"; exit 2; }
mkdir -p .gpu_data/msrs && ln -sfn ../msrs_extra .gpu_data/msrs/extra
OUT="${OUT:-runs/gpu_out}"
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
python3 -m engine.train --config configs/train_m2pn_gpu.yaml --max-minutes "$MINUTES" --export "$OUT/m2pn_paper_width.pt" 2>&1 | tr '\r' '\n' | grep -v "^train:.*it/s\]$" | tee "$OUT/train.log"
cp runs/m2pn_gpu/last.pt runs/m2pn_gpu/loss_curve.png runs/m2pn_gpu/history.json "$OUT/" 2>/dev/null || true
