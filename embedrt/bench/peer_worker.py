"""One contender of the peers suite, in a process of its own: `python peer_worker.py JOB.json`.

Run by file path with the interpreter of the contender's virtual environment, so it imports
nothing of embedrt at the top (the peer venvs do not have it): only the standard library,
numpy, and the contender's own library inside the function that loads it.

A job is one of:
- prepare: make the contender's model files once (an ONNX or OpenVINO export, O3, int8) in a work dir;
- run: load the contender, embed the whole workload once (throughput, vectors to an .npy file),
  then time batch-1 calls on short queries (latency).
It writes its result as JSON to job["result"]; a failure leaves a traceback on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

# What each library would be judged by; recorded beside every figure.
PACKAGES = ("embedrt", "sentence-transformers", "transformers", "torch", "onnxruntime", "optimum", "optimum-onnx",
            "optimum-intel", "openvino", "nncf", "datasets", "fastembed", "tokenizers", "huggingface-hub", "numpy")
ST_BATCH = 32  # SentenceTransformer.encode's default batch (sorted by length)
FASTEMBED_BATCH = 256  # TextEmbedding.embed's default batch (in input order)
FASTEMBED_NAME = "embedrt-bench/all-MiniLM-L6-v2"  # the name the local model is registered under (never downloaded)
WARMUP_TEXTS = 32
WARMUP_QUERIES = 3


def versions() -> dict[str, str]:
    """embedrt.versions.package_versions, written again here because the peer venvs have no embedrt to import."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# -- prepare: model files made once -------------------------------------------------------------------
def _model_copy(source: Path, work: Path) -> Path:
    """A writable copy of the sentence-transformers dir: the backends write their exports beside it."""
    if not (work / "modules.json").is_file():
        tmp = work.with_name(work.name + f".tmp-{os.getpid()}")
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("*.h5", "*.msgpack", "onnx", "openvino"))
        tmp.rename(work)
    return work


def prepare(job: dict) -> dict:
    kind, work, threads = job["kind"], Path(job["work"]), job["threads"]
    work.parent.mkdir(parents=True, exist_ok=True)
    if kind == "st-onnx":
        return _prepare_st_onnx(job, _model_copy(Path(job["source"]), work), threads)
    if kind == "st-openvino":
        return _prepare_st_openvino(job, _model_copy(Path(job["source"]), work), threads)
    if kind == "fastembed":
        return _prepare_fastembed(job, work)
    raise ValueError(f"contender kind {kind!r} has nothing to prepare")


def _prepare_st_onnx(job: dict, model_dir: Path, threads: int) -> dict:
    variant = job["variant"]  # "fp32" | "O3" | "qint8"
    onnx_dir = model_dir / "onnx"
    if not (onnx_dir / "model.onnx").is_file():
        from sentence_transformers import SentenceTransformer

        # no onnx/model.onnx yet: sentence-transformers exports one with optimum, then saves it beside the checkpoint
        SentenceTransformer(str(model_dir), backend="onnx", device="cpu").save_pretrained(str(model_dir))
    if variant == "fp32":
        return {"model_file": "onnx/model.onnx"}
    if variant == "O3":
        target = "onnx/model_O3.onnx"
        if not (model_dir / target).is_file():
            from sentence_transformers.backend import export_optimized_onnx_model

            export_optimized_onnx_model(_st_onnx(model_dir, "onnx/model.onnx", threads), "O3", str(model_dir))
        return {"model_file": target}
    if variant == "qint8":
        config = job["quantization_config"]  # "avx512_vnni" | "avx2": the CPU's instruction set
        found = sorted(onnx_dir.glob(f"model_*_{config}.onnx"))
        if not found:
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model

            export_dynamic_quantized_onnx_model(_st_onnx(model_dir, "onnx/model.onnx", threads), config, str(model_dir))
            found = sorted(onnx_dir.glob(f"model_*_{config}.onnx"))
        return {"model_file": str(found[0].relative_to(model_dir)), "quantization_config": config}
    raise ValueError(f"st-onnx variant {variant!r}")


def _prepare_st_openvino(job: dict, model_dir: Path, threads: int) -> dict:
    variant = job["variant"]  # "fp32" | "fp32-f32-hint" | "int8-static"
    fp32 = "openvino/openvino_model.xml"
    if not (model_dir / fp32).is_file():
        from sentence_transformers import SentenceTransformer

        SentenceTransformer(str(model_dir), backend="openvino", device="cpu").save_pretrained(str(model_dir))
    if variant.startswith("fp32"):
        return {"model_file": fp32}
    target = "openvino/openvino_model_qint8_quantized.xml"
    calibration = _calibration_dir(Path(job["calibration"]), model_dir.parent / "calibration")
    if not (model_dir / target).is_file():
        from sentence_transformers.backend import export_static_quantized_openvino_model

        # the calibration set is local lines of the workload: a dataset dir `datasets` loads offline, not a hub dataset
        export_static_quantized_openvino_model(_st_openvino(model_dir, fp32, threads), None, str(model_dir),
                                               dataset_name=str(calibration), dataset_config_name="default",
                                               dataset_split="train", column_name="sentence")
    return {"model_file": target, "calibration": f"{job['calibration_lines']} workload lines ({calibration})"}


def _calibration_dir(texts_file: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = json.loads(texts_file.read_text(encoding="utf-8"))
    (out / "train.jsonl").write_text("".join(json.dumps({"sentence": t}) + "\n" for t in lines), encoding="utf-8")
    return out


def _prepare_fastembed(job: dict, work: Path) -> dict:
    """A fastembed model dir: the tokenizer files and the same model.onnx sentence-transformers' ONNX backend runs."""
    source, onnx_file = Path(job["source"]), Path(job["onnx_file"])
    work.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(source / name, work / name)
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    shipped = config.get("model_max_length")
    config["model_max_length"] = job["max_length"]  # fastembed truncates at tokenizer_config's limit: the model card's 256
    (work / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    target = work / "model.onnx"
    if not target.is_file():
        shutil.copyfile(onnx_file, target)
    return {"model_file": "model.onnx", "shipped_model_max_length": shipped}


# -- loading each contender -----------------------------------------------------------------------------
def _st_onnx(model_dir: Path, model_file: str, threads: int):
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return SentenceTransformer(str(model_dir), backend="onnx", device="cpu",
                               model_kwargs={"file_name": model_file, "provider": "CPUExecutionProvider", "session_options": options})


def _st_openvino(model_dir: Path, model_file: str, threads: int, precision_hint: str | None = None):
    from sentence_transformers import SentenceTransformer

    config = {"INFERENCE_NUM_THREADS": str(threads), **({"INFERENCE_PRECISION_HINT": precision_hint} if precision_hint else {})}
    return SentenceTransformer(str(model_dir), backend="openvino", device="cpu", model_kwargs={"file_name": model_file, "ov_config": config})


def _openvino_precision(model) -> str:
    """What OpenVINO computes in: its CPU plugin runs an fp32 model in bf16 where the CPU has bf16 units, unless told not to."""
    model.encode(["compile"])  # the compiled model exists after the first call
    try:
        request = model[0].auto_model.request
        compiled = request if hasattr(request, "get_property") else request.get_compiled_model()
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        return hint.to_string() if hasattr(hint, "to_string") else str(hint)  # an openvino Type: "bf16", "f32"
    except (AttributeError, RuntimeError) as exc:  # optimum-intel's internals moved: say so, do not stop the run
        return f"unknown ({exc})"


def _st_encoder(model):
    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=ST_BATCH, convert_to_numpy=True, show_progress_bar=False)

    return embed


def load(job: dict):
    """(embed(texts) -> float32 (n, dim), what the record says about it: batch, max_length, ...)."""
    kind, threads = job["kind"], job["threads"]
    if kind == "st-torch":
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(job["source"], device="cpu")
        if job["variant"] == "bf16":
            model = model.to(torch.bfloat16)
        model.eval()
        return _st_encoder(model), {"batch": f"{ST_BATCH}, sorted by length", "max_length": model.max_seq_length}
    if kind in ("st-onnx", "st-openvino"):
        model_dir = Path(job["work"])
        model_file = job["prepared"]["model_file"]
        if kind == "st-onnx":
            model = _st_onnx(model_dir, model_file, threads)
        else:  # "fp32-f32-hint": OpenVINO told to compute in f32, not in the bf16 it picks on a CPU with bf16 units
            model = _st_openvino(model_dir, model_file, threads, "f32" if job["variant"] == "fp32-f32-hint" else None)
        details = {"batch": f"{ST_BATCH}, sorted by length", "max_length": model.max_seq_length, "model_file": model_file}
        if kind == "st-openvino":
            details["inference_precision"] = _openvino_precision(model)
        return _st_encoder(model), details
    if kind == "fastembed":
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        if FASTEMBED_NAME not in {m["model"] for m in TextEmbedding.list_supported_models()}:
            TextEmbedding.add_custom_model(FASTEMBED_NAME, pooling=PoolingType.MEAN, normalization=True,
                                           sources=ModelSource(hf=FASTEMBED_NAME), dim=384, model_file="model.onnx")
        model = TextEmbedding(FASTEMBED_NAME, threads=threads, specific_model_path=job["work"], local_files_only=True)
        truncation = model.model.tokenizer.truncation or {}

        def embed(texts: list[str]) -> np.ndarray:
            return np.stack(list(model.embed(texts, batch_size=FASTEMBED_BATCH))).astype(np.float32)

        return embed, {"batch": f"{FASTEMBED_BATCH}, in input order", "max_length": truncation.get("max_length"),
                       "shipped_model_max_length": job["prepared"].get("shipped_model_max_length")}
    if kind == "embedrt":
        from embedrt.runtime.text.embedder import TextEmbedder

        embedder = TextEmbedder(job["export"], session={"intra_op_threads": threads})
        return embedder.embed, {"batch": f"token budget {embedder.max_batch_tokens}, sorted by length",
                                "max_length": embedder.max_length, "precision": embedder.manifest.precision}
    raise ValueError(f"unknown contender kind {kind!r}")


# -- run: the measurement ------------------------------------------------------------------------------
def run(job: dict) -> dict:
    texts = json.loads(Path(job["texts"]).read_text(encoding="utf-8"))
    queries = json.loads(Path(job["queries"]).read_text(encoding="utf-8"))
    start = time.perf_counter()
    embed, details = load(job)
    load_s = time.perf_counter() - start
    embed(texts[:WARMUP_TEXTS])  # sessions allocate their buffers before the timing
    for query in queries[:WARMUP_QUERIES]:
        embed([query])
    start = time.perf_counter()
    vectors = np.asarray(embed(texts), dtype=np.float32)
    throughput_s = time.perf_counter() - start
    latency_ms = []
    for query in queries:
        start = time.perf_counter()
        embed([query])
        latency_ms.append((time.perf_counter() - start) * 1e3)
    np.save(job["vectors"], vectors)
    return {"texts": len(texts), "throughput_s": throughput_s, "texts_per_s": len(texts) / throughput_s,
            "latency_ms": latency_ms, "p50_ms": float(np.percentile(latency_ms, 50)), "load_s": load_s,
            "dim": int(vectors.shape[1]), "details": details, "versions": versions(), "pid": os.getpid()}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = prepare(job) if job["action"] == "prepare" else run(job)
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
