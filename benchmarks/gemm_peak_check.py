"""Which GEMM peak is the machine's: the roofline's figures measured the old way and the new way, side by side.

A measurement, not a test. Each figure is an n x n x n GEMM on all usable cores, G(FL)OP/s:
- numpy fp32 in a fresh process per OPENBLAS_CORETYPE (unset = OpenBLAS's own choice; Haswell = its AVX2 kernel);
- ONNX Runtime fp32 MatMul: B fed as an input (packed on every run, 1 warm-up: the roofline before issue 17)
  and B an initializer (prepacked once, as a model's weight; what embedrt.bench.roofline measures now);
- ONNX Runtime int8: MatMulInteger u8 x s8 with B an input (the old int8 peak), with B an initializer, u8 x u8
  (a kernel without AMX: if u8 x s8 is several times faster, ONNX Runtime runs AMX tiles), and the dynamic
  int8 path the int8 engines run (DynamicQuantizeLinear + MatMulInteger + scales, fused to DynamicQuantizeMatMul).
Each figure says how many cores other processes used while it ran; rounds are interleaved, best round kept.

    flock /tmp/embedrt-bench.lock python benchmarks/gemm_peak_check.py [--n 2048] [--repeats 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from embedrt.bench.roofline import blas_kernel, gemm_input, gemm_session, timed_runs
from embedrt.runtime.engines.cpu import cpuinfo

NUMPY_CHILD = """
import json, sys, numpy as np
from embedrt.bench.roofline import blas_kernel, timed_runs
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
print(json.dumps({**timed_runs(lambda: a @ b, 2 * n**3, repeats), "kernel": blas_kernel().get("architecture")}))
"""


def numpy_fp32(n: int, repeats: int, coretype: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run([sys.executable, "-c", NUMPY_CHILD, str(n), str(repeats)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def b_as_input(n: int, kind: str):
    """The roofline's model before issue 17: both operands inputs, so ONNX Runtime packs B on every run."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from embedrt.runtime.engines.session_options import session_options

    a_type, b_type, c_type = {"fp32": (TensorProto.FLOAT,) * 3, "u8s8": (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)}[kind]
    node = helper.make_node("MatMul" if kind == "fp32" else "MatMulInteger", ["a", "b"], ["c"])
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("a", a_type, [n, n]), helper.make_tensor_value_info("b", b_type, [n, n])],
                              [helper.make_tensor_value_info("c", c_type, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if kind == "fp32":
        feed = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    else:
        feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8), "b": rng.integers(-127, 128, (n, n), dtype=np.int8)}
    return lambda: session.run(None, feed)


def u8u8_initializer(n: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from embedrt.runtime.engines.session_options import session_options

    rng = np.random.default_rng(0)
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
                              [numpy_helper.from_array(rng.integers(0, 256, (n, n), dtype=np.uint8), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(), providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    return lambda: session.run(None, feed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--coretypes", default=",Haswell", help="OPENBLAS_CORETYPE values for numpy, comma-separated ('' = OpenBLAS's choice)")
    args = parser.parse_args(argv)
    n, flops = args.n, 2 * args.n**3
    model, flags = cpuinfo()
    print(f"CPU: {model}; flags: {' '.join(sorted(f for f in flags if f.startswith(('avx512f', 'avx512_vnni', 'avx2', 'amx', 'avx_vnni'))))}")
    print(f"numpy {np.__version__}, BLAS {blas_kernel()}; load average {os.getloadavg()}")
    sessions = {
        "onnxruntime fp32, B an input, 1 warm-up (old)": (b_as_input(n, "fp32"), 1),
        "onnxruntime fp32, B an initializer": (lambda s=gemm_session(n, "fp32"), f=gemm_input(n, "fp32"): s.run(None, f), 3),
        "onnxruntime int8 u8 x s8, B an input, 1 warm-up (old)": (b_as_input(n, "u8s8"), 1),
        "onnxruntime int8 u8 x s8, B an initializer": (lambda s=gemm_session(n, "int8_kernel"), f=gemm_input(n, "int8_kernel"): s.run(None, f), 3),
        "onnxruntime int8 u8 x u8, B an initializer": (u8u8_initializer(n), 3),
        "onnxruntime int8 dynamic (DynamicQuantizeMatMul)": (lambda s=gemm_session(n, "int8_dynamic"), f=gemm_input(n, "int8_dynamic"): s.run(None, f), 3),
    }
    best: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for coretype in args.coretypes.split(","):
            name = f"numpy fp32, OPENBLAS_CORETYPE={coretype or '(unset)'}"
            got = numpy_fp32(n, args.repeats, coretype or None)
            name += f" -> {got.pop('kernel')} kernel"
            best[name] = max(best.get(name, got), got, key=lambda r: r["best"])
        for name, (fn, warmups) in sessions.items():
            got = timed_runs(fn, flops, 5 if warmups == 1 else args.repeats, warmups)
            best[name] = max(best.get(name, got), got, key=lambda r: r["best"])
        print(f"round {round_ + 1} done; load average {os.getloadavg()}")
    print(f"\n{n}^3 GEMM, best of {args.rounds} interleaved rounds; G(FL)OP/s")
    print(f"{'measurement':62} {'best':>8} {'median':>8} {'worst':>8} {'others (cores)':>15}")
    for name, r in best.items():
        print(f"{name:62} {r['best']:8.1f} {r['median']:8.1f} {r['worst']:8.1f} {r.get('other_processes_cores', float('nan')):15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
