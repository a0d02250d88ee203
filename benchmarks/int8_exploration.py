"""int8 recipes for a text export, side by side: accuracy against PyTorch fp32 and throughput against PyTorch fp32/bf16.

A measurement, not a test. Each recipe is built from the same fused fp32 graph with embedrt.export's own
functions; accuracy is read on 318 varied texts (the parity texts plus 300 sentences of 1-200 words that
no recipe calibrates on); throughput on `--sentences` sentences from embedrt.sample_text, each engine timed
in turn with the PyTorch baselines in the same process, best of `--repeats`.

Issue 17 adds recipes that keep every dense matmul on the u8 x s8 GEMM (AMX tiles on CPUs that have them, which
MatMulNBits does not use): SmoothQuant over the FFN outputs too, then dynamic int8 everywhere; and larger
MatMulNBits blocks. `--recipes` picks recipes by a word of their names; `--work DIR` keeps the built graphs
so that building (slow, no lock needed) and measuring (under the lock) can be two runs; `--budgets` also
times embedrt's recipe at other token budgets.

    python benchmarks/int8_exploration.py [FP32_EXPORT_DIR] [--sentences 2000] [--repeats 3] [--work DIR]
        [--recipes WORD,...] [--budgets 768,2048] [--build-only]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import onnx

from embedrt.export.optimize import fuse_transformer, transformer_shape
from embedrt.export.parity import PARITY_TEXTS, cosine_rows
from embedrt.export.quantize import gelu_fed_matmuls, quantize_blockwise_int8, quantize_text_int8, smooth_activations
from embedrt.export.text.exporter import calibration_batches
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.runtime.text.embedder import TextEmbedder
from embedrt.sample_text import sample_sentences


def recipes(export_dir: Path, work: Path, wanted: list[str]) -> dict[str, Path]:
    """Every recipe whose name contains one of `wanted` (all when empty), built into `work` unless already there."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    manifest = read_manifest(export_dir)
    config = json.loads((Path(manifest.source["path"]) / "config.json").read_text())
    fused = work / "fused.onnx"
    if not fused.is_file():
        fuse_transformer(export_dir / "model.onnx", fused, transformer_shape(config))
    ffn_out = gelu_fed_matmuls(onnx.load(str(fused)))
    names = [t.name for t in manifest.inputs]
    calibration = lambda: calibration_batches(export_dir, manifest.text, names)  # noqa: E731

    def dynamic(src: Path, out: Path, exclude=()) -> None:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=list(exclude),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})

    def smoothed(alpha: float, skip=()) -> Path:
        out = work / f"smoothed-{alpha}-{len(skip)}.onnx"
        if not out.is_file():
            onnx.save(smooth_activations(onnx.load(str(fused)), calibration(), alpha, skip=skip), str(out))
        return out

    def recipe_blocks(block: int, out: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            dyn = Path(tmp) / "dyn.onnx"
            dynamic(smoothed(0.7, ffn_out), dyn, ffn_out)
            quantize_blockwise_int8(dyn, out, block_size=block)

    makers = {
        "fp32 fused": (fused, None),
        "dynamic per-channel, all matmuls": (work / "dyn.onnx", lambda out: dynamic(fused, out)),
        "dynamic per-channel, FFN outputs fp32": (work / "dyn_ffn_fp32.onnx", lambda out: dynamic(fused, out, ffn_out)),
        "smoothquant 0.7 + dynamic, FFN outputs fp32": (work / "sm_dyn_ffn_fp32.onnx", lambda out: dynamic(smoothed(0.7, ffn_out), out, ffn_out)),
        "blockwise int8 (MatMulNBits, block 32) all matmuls, attention fp32": (work / "nbits.onnx", lambda out: quantize_blockwise_int8(fused, out, block_size=32)),
        "embedrt int8: smoothquant + dynamic, first FFN output blockwise (256)": (work / "recipe17.onnx", lambda out: quantize_text_int8(fused, out, calibration())),
        # issue 17: every dense matmul on the u8 x s8 GEMM (DynamicQuantizeMatMul / QAttention)
        "smoothquant 0.7 on all matmuls + dynamic everywhere": (work / "sm07_all_dyn.onnx", lambda out: dynamic(smoothed(0.7), out)),
        "smoothquant 0.8 on all matmuls + dynamic everywhere": (work / "sm08_all_dyn.onnx", lambda out: dynamic(smoothed(0.8), out)),
        "smoothquant 0.9 on all matmuls + dynamic everywhere": (work / "sm09_all_dyn.onnx", lambda out: dynamic(smoothed(0.9), out)),
        "issue 4's recipe: all six FFN outputs blockwise, block 128": (work / "recipe_b128.onnx", lambda out: recipe_blocks(128, out)),
        "issue 4's recipe with blocks of 256": (work / "recipe_b256.onnx", lambda out: recipe_blocks(256, out)),
    }
    built = {}
    for name, (path, make) in makers.items():
        if wanted and not any(w in name for w in wanted):
            continue
        if make is not None and not path.is_file():
            print(f"building: {name}", flush=True)
            make(path)
        built[name] = path
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", nargs="?", help="an fp32 text export (default: export the bundled model to a temp dir)")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep built graphs here (default: a temporary dir)")
    parser.add_argument("--recipes", default="", help="comma-separated words: only recipes whose names contain one (default: all)")
    parser.add_argument("--budgets", default="", help="comma-separated max_batch_tokens at which embedrt's recipe is also timed")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the quantizers are chatty
    import torch
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.export_dir:
            export_dir = Path(args.export_dir)
        else:
            from embedrt.export import export_text

            export_dir = export_text("default", work / "fp32")
        source = read_manifest(export_dir).source["path"]
        built = recipes(export_dir, work, [w for w in args.recipes.split(",") if w])
        if args.build_only:
            return 0
        print(f"load average {os.getloadavg()}", flush=True)
        accuracy_texts = list(PARITY_TEXTS) + sample_sentences(300, min_words=1, max_words=200, seed=7)
        st32 = SentenceTransformer(source, device="cpu")
        st16 = SentenceTransformer(source, device="cpu").to(torch.bfloat16)
        reference = st32.encode(accuracy_texts, batch_size=32)
        # the recipes are measured against PyTorch below; the fp32 export's own self-check does not apply to them
        engines = {name: TextEmbedder(export_dir, backend=OnnxBackend(path), verify="off") for name, path in built.items()}
        recipe = built.get("embedrt int8: smoothquant + dynamic, first FFN output blockwise (256)")
        for budget in (int(b) for b in args.budgets.split(",") if b and recipe):
            engines[f"embedrt recipe at max_batch_tokens {budget}"] = TextEmbedder(export_dir, backend=OnnxBackend(recipe), max_batch_tokens=budget, verify="off")
        rows = {}
        for name, embedder in engines.items():
            cos = cosine_rows(reference, embedder.embed(accuracy_texts))
            rows[name] = {"min_cosine": round(float(cos.min()), 4), "mean_cosine": round(float(cos.mean()), 5)}
        bf = cosine_rows(reference, st16.encode(accuracy_texts, batch_size=32))
        rows["pytorch bf16"] = {"min_cosine": round(float(bf.min()), 4), "mean_cosine": round(float(bf.mean()), 5)}
        texts = sample_sentences(args.sentences)
        runs = {"pytorch fp32": lambda: st32.encode(texts, batch_size=32), "pytorch bf16": lambda: st16.encode(texts, batch_size=32)}
        runs.update({name: (lambda e=e: e.embed(texts)) for name, e in engines.items()})
        best = {name: 0.0 for name in runs}
        for _ in range(args.repeats):  # interleaved: every engine once per round, so load changes hit all alike
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = max(best[name], len(texts) / (time.perf_counter() - start))
        print(f"load average {os.getloadavg()}")
        print(f"{len(accuracy_texts)} accuracy texts; {len(texts)} sentences, best of {args.repeats} interleaved rounds")
        print(f"{'engine':62} {'min cos':>8} {'mean cos':>9} {'sent/s':>8} {'x fp32':>7} {'x bf16':>7}")
        for name in runs:
            acc = rows.get(name, {"min_cosine": 1.0, "mean_cosine": 1.0})
            print(f"{name:62} {acc['min_cosine']:8.4f} {acc['mean_cosine']:9.5f} {best[name]:8.1f} "
                  f"{best[name] / best['pytorch fp32']:7.2f} {best[name] / best['pytorch bf16']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
