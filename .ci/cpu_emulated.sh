#!/usr/bin/env bash
# The CPU-dependent tests (pytest -m cpu_dependent) again on an emulated AVX2-only CPU, qemu-user's Haswell (no AVX-512,
# no VNNI, no bf16 units), so that a regression on such CPUs (Zen 3) fails CI on an AVX-512 machine too.
# `make test` runs the same tests natively, on whichever branch this machine's probes choose; this run takes the AVX2 one.
# Python under qemu is 10-50x slower, so only the tests marked cpu_dependent run here: no PyTorch export, small GEMMs.
# The engines themselves are checked on the emulated CPU by `make test`'s test_precision_text.py::
# test_on_a_cpu_without_vnni_an_8bit_engine_is_refused_and_the_7bit_one_loads (exports made natively, loaded under qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}  # `make setup`'s venv; PYTHON=... for another
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

say() { echo "cpu_emulated: $*"; }

if [ "$(uname -m)" != x86_64 ]; then
    say "skipped: qemu-x86_64 emulates an x86_64 CPU for x86_64 binaries, and this machine is $(uname -m)"
    exit 0
fi
if [ ! -x "$PYTHON" ]; then
    echo "cpu_emulated: $PYTHON not found: run 'make setup' first, or set PYTHON to a Python with embedrt[dev] installed" >&2
    exit 2
fi
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    say "installing qemu-user (apt-get) for qemu-x86_64"
    apt-get update -qq && apt-get install -y -qq qemu-user >/dev/null
fi

cpu=$("$PYTHON" -c 'from tests.emulated_cpu import EMULATED_CPU; print(EMULATED_CPU)')
qemu=(qemu-x86_64 -cpu "$cpu")
probe='
from embedrt.runtime.engines.cpu import cpu_record, u8s8_exact
from embedrt.runtime.engines.openvino_backend import bf16_units, import_openvino
name, flags = import_openvino().Core().get_property("CPU", "FULL_DEVICE_NAME"), " ".join(cpu_record()["flags"])
print(f"u8s8_exact={u8s8_exact()} bf16_units={bf16_units()} cpu={name!r} (/proc/cpuinfo: {flags})")
'
native=$("$PYTHON" -c "$probe")
say "native CPU:   $native"
emulated=$("${qemu[@]}" "$PYTHON" -c "$probe")
say "emulated CPU: $emulated (qemu-x86_64 -cpu $cpu)"
# (qemu-user shows the host's /proc/cpuinfo; ONNX Runtime and OpenVINO ask CPUID, which qemu emulates.)
# The emulation only tests the AVX2 branch if the product's own probes see that CPU: otherwise this run proves nothing.
case "$emulated" in
    "u8s8_exact=False bf16_units=False "*) ;;
    *) echo "cpu_emulated: the emulated CPU's probes do not report a saturating u8 x s8 kernel and no bf16 units: $emulated" >&2; exit 1 ;;
esac

# Only the files that hold such tests: collecting the whole suite would import torch & co. for each of them, emulated.
mapfile -t files < <(grep -l -E '^@pytest\.mark\.cpu_dependent' tests/test_*.py)
say "running: ${qemu[*]} $PYTHON -m pytest -m cpu_dependent ${files[*]}"
say "  (the int8 weight width export picks, the int8 GEMM and its product, the bf16 compile or its refusal: each test"
say "  takes its expected values from the probes above, so here it must take the AVX2 branch: 7-bit weights, no bf16)"
start=$SECONDS
"${qemu[@]}" "$PYTHON" -m pytest -m cpu_dependent -q -p no:cacheprovider -rA "${files[@]}"
say "passed on the emulated AVX2 CPU in $((SECONDS - start)) s"
