#!/usr/bin/env bash
# Build .gpu-bundle/ (git-ignored, about 60 MB) for an air-gapped GPU host: one that has
# Python 3.12 with torch, sentence-transformers, numpy, scikit-learn and prometheus-client but no
# package registry, no Redis and none of the web or queue packages. Copy the repository with
# this folder to the host. It holds:
#   wheels/   what the image lacks, for CPython 3.12 (faiss is left out: the index uses numpy)
#   redis/    redis-server unpacked from Debian's package
#   model/    the packaged all-MiniLM-L6-v2 with its weights in fp16
# Then, on the GPU host, from the repository root (see docs/deploying.md, "On a GPU host"):
#   scripts/gpu_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu-bundle
py=.venv/bin/python
rm -rf "$out"
mkdir -p "$out/wheels" "$out/redis" "$out/debs" "$out/model"

# The pinned version of a package (names compare with - and _ alike, as pip does).
pin() {
    grep -iE "^${1//[-_]/[-_]}==" requirements/constraints.txt || { echo "no pin for $1" >&2; exit 1; }
}
packages=(celery kombu billiard vine amqp click-didyoumean click-plugins click-repl prompt_toolkit
          wcwidth tzlocal flask blinker itsdangerous gunicorn gevent greenlet zope.event
          zope.interface redis hiredis orjson structlog pydantic pydantic_core annotated-types
          typing-inspection pydantic-settings python-dotenv prometheus-flask-exporter)
pins=()
for name in "${packages[@]}"; do pins+=("$(pin "$name")"); done
"$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_5_x86_64 --platform any \
    -d "$out/wheels" "${pins[@]}"

(cd "$out/debs" && apt-get download redis-server redis-tools liblzf1 libjemalloc2 >/dev/null)
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out/redis"; done
rm -rf "$out/debs" "$out/redis/usr/share"

HF_HUB_OFFLINE=1 "$py" - "$out/model" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from core.screening.embedding import resolve_model
source, target = resolve_model("all-MiniLM-L6-v2")[1], Path(sys.argv[1])
shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "README.md"))
weights = {name: tensor.half() for name, tensor in load_file(source / "model.safetensors").items()}
save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
PY
du -sh "$out" "$out"/*
