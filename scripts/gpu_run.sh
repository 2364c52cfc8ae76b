#!/usr/bin/env bash
# Run the GPU benchmarks from a .gpu-bundle/ made by scripts/gpu_bundle.sh, on an air-gapped GPU
# host: installs the bundled wheels to /tmp/site, puts the bundled redis-server on PATH, and
# writes the reports to $OUT (or var/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=.gpu-bundle
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$bundle"/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" PATH="$PWD/$bundle/redis/usr/bin:$PATH"
export LD_LIBRARY_PATH="$PWD/$bundle/redis/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export EMBED_MODEL="$PWD/$bundle/model" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
out="${OUT:-var/bench}"
mkdir -p "$out"
python3 -m bench.gpu_screen --texts "${TEXTS:-50000}" --out "$out"
python3 -m bench.e2e --gpu 0 --batch-size "${BATCH:-1000}" --seconds "${SECONDS_PER_PHASE:-20}"
cp var/bench/e2e.json "$out/" 2>/dev/null || true
