#!/usr/bin/env bash
# The one GPU check of issue 25, from the repo root on a GPU machine (about 5-7 minutes on an H200):
#   source .gpu-carry/unpack.sh   # onnxruntime-gpu on PYTHONPATH, LD_LIBRARY_PATH set
#   bash benchmarks/gpu_check.sh  # writes $OUT (default ./gpu-check-out): gpu_check.json, gpu_check.log, bench-*.md
# Needs torch (CUDA), transformers, sentence-transformers, onnx, tokenizers, numpy; embedrt comes from this checkout.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export OUT
PS4='+ $(date -u +%H:%M:%S) '
set -x
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/nvidia-smi.csv" 2>&1 || true
python3 -c "import onnxruntime as o; print(o.__version__, o.__file__, o.get_available_providers())" || true
python3 benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
set +x
ls -la "$OUT"
exit "$rc"
