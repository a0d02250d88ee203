"""BERT-family checkpoint -> export dir (model.onnx + tokenizer + embedrt.json), proven against PyTorch."""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from embedrt.errors import ExportError, ProviderError
from embedrt.export.graph_pooling import TextEncoderGraph, pool_tokens
from embedrt.export.optimize import transformer_shape
from embedrt.export.parity import PARITY_TEXTS, compare, gate, parity_report, parity_texts
from embedrt.export.precision import EnginePlan, build_model, plan_engine
from embedrt.export.staging import fingerprint, model_file_record, staged_dir, work_dir
from embedrt.export.text.source import TextSource, read_text_source
from embedrt.manifest import MODEL_NAME, Manifest, TensorSpec, TextPreprocessing, file_sha256, write_manifest
from embedrt.runtime.batching import iter_chunks
from embedrt.runtime.engines.cpu import cpu_record
from embedrt.runtime.engines.reference import REFERENCE_NAME, write_reference
from embedrt.runtime.engines.self_check import engine_class
from embedrt.runtime.text.pooling import POOLING_MODES
from embedrt.runtime.text.tokenization import TOKENIZER_NAME, encode, load_tokenizer, pad_batch
from embedrt.sample_text import sample_sentences
from embedrt.versions import package_versions

log = logging.getLogger("embedrt")

DEFAULT_OPSET = 17
PARITY_BATCH = 8
CALIBRATION_SENTENCES = 128
# The reference texts kept for the self-check on load: the built-in parity texts of 5 to 24 tokens, one batch
# (8 texts for all-MiniLM-L6-v2). Longer ones cost the load more; in int8, texts of 2-3 tokens padded beside
# longer ones drift to 0.992 on any CPU, too close to the gate to tell a saturating kernel (0.97) apart.
REFERENCE_TOKENS = range(5, 25)


def export_text(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    pool_in_graph: bool = True,
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
    optimize: str | None = None,
    provider: str | None = None,
    int8_weights: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Export a local Hugging Face / sentence-transformers encoder dir (or 'default') to `out`.

    Pooling, normalisation and max length come from the sentence-transformers config when it has
    them; the arguments override. `precision` is "fp32", "int8" (CPU) or "fp16" (GPU: needs
    provider="cuda" or "tensorrt"); `optimize` "none" or "fuse" (see embedrt.export.precision.plan_engine
    for the defaults); `int8_weights` "auto" (by this CPU's int8 kernel), "7" (also for CPUs without VNNI) or "8".
    The export fails (and writes nothing) if the precision's parity gate is missed.
    """
    if pooling is not None and pooling not in POOLING_MODES:
        raise ExportError(f"--pooling {pooling!r} is not one of {', '.join(POOLING_MODES)}.")
    plan = plan_engine(precision, optimize, provider, modality="text", int8_weights=int8_weights)
    src = read_text_source(source, pooling=pooling, normalize=normalize, max_length=max_length)
    graph = encoder_graph(src, src.pooling if pool_in_graph else None, src.normalize)
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if graph.takes_token_types else [])
    output_names = ["token_embeddings"] + (["sentence_embedding"] if pool_in_graph else [])
    out = Path(out)
    with staged_dir(out, kind="text", overwrite=overwrite, sources=[src.path]) as tmp, work_dir("fp32") as work:
        fp32_path = Path(work) / MODEL_NAME
        _export_onnx(graph, fp32_path, input_names, output_names, opset)
        try:
            report = write_text_export(tmp, graph, src, fp32_path, plan, input_names=input_names, pool_in_graph=pool_in_graph, opset=opset)
        except ProviderError as exc:  # the engine cannot run here (bf16 without bf16 units): name the export, not the staging dir
            raise ProviderError(f"--out {out}: {exc}") from None
    log.info("embedrt: exported %s to %s (%s, min cosine %.7f)", src.path, out, plan.precision, report["min_cosine"])
    return out


def write_text_export(
    tmp: Path, graph: TextEncoderGraph, src: TextSource, fp32_path: Path, plan: EnginePlan, *, input_names: list[str], pool_in_graph: bool, opset: int
) -> dict:
    """Fill the staged dir `tmp` from an fp32 graph: tokenizer, the planned engine, its parity gate, the manifest last."""
    _save_tokenizer(src, tmp)
    text = TextPreprocessing(
        max_length=src.max_length,
        pad_token_id=int(src.config.get("pad_token_id") or 0),
        vocab_size=int(src.config.get("vocab_size", 0)),
        max_positions=int(src.config.get("max_position_embeddings", 0)),
    )
    model_path = tmp / MODEL_NAME
    transformer = transformer_shape(src.config) if plan.optimize == "fuse" else None
    optimizations = build_model(
        fp32_path, model_path, plan, modality="text", transformer=transformer, token_output="token_embeddings",
        calibration=lambda: calibration_batches(tmp, text, input_names),
    )
    report, reference = _measure_parity(graph, tmp, text, src, plan.precision, plan.provider)
    gate(report, f"{src.path}")
    lengths = encode(load_tokenizer(tmp, text), list(PARITY_TEXTS)).lengths
    keep = [i for i, n in enumerate(lengths) if n in REFERENCE_TOKENS]  # parity_texts() starts with PARITY_TEXTS
    write_reference(tmp, {"texts": np.array([PARITY_TEXTS[i] for i in keep])}, reference[keep])
    hidden = int(src.config.get("hidden_size") or src.config.get("dim"))
    manifest = Manifest(
        modality="text",
        dim=hidden,
        inputs=tuple(TensorSpec(n, "int64", ("batch", "sequence")) for n in input_names),
        outputs=(TensorSpec("token_embeddings", "float32", ("batch", "sequence", hidden)),)
        + ((TensorSpec("sentence_embedding", "float32", ("batch", hidden)),) if pool_in_graph else ()),
        pooling=src.pooling,
        normalize=src.normalize,
        pooled_in_graph=pool_in_graph,
        precision=plan.precision,
        opset=opset,
        provider=plan.provider,
        text=text,
        source={
            "path": str(src.path),
            "model_type": src.model_type,
            "architectures": src.config.get("architectures", []),
            "sentence_transformers": src.from_sentence_transformers,
            "fingerprint": fingerprint(src.fingerprint_files()),
        },
        versions=package_versions(),
        parity=report,
        optimizations=optimizations,
        model_file=model_file_record(model_path),
        files={name: file_sha256(tmp / name) for name in (TOKENIZER_NAME, REFERENCE_NAME)},
        machine=cpu_record(),
    )
    write_manifest(tmp, manifest)  # last: a dir without it is never taken for an export
    return report


def calibration_batches(export_dir: Path, text: TextPreprocessing, input_names: list[str]) -> Iterator[dict[str, np.ndarray]]:
    """int8 calibration inputs: embedrt.sample_text prose of 1-120 words (not the parity texts), tokenised as the runtime does."""
    texts = sample_sentences(CALIBRATION_SENTENCES, min_words=1, max_words=120, seed=99)
    encoded = encode(load_tokenizer(export_dir, text), texts)
    for chunk in iter_chunks(np.arange(len(texts)), 16):
        yield pad_batch(encoded, chunk, input_names, text.pad_token_id)


def encoder_graph(src: TextSource, pooling: str | None, normalize: bool) -> TextEncoderGraph:
    """The PyTorch graph an export is made from and measured against: the encoder, `pooling` (None: tokens only), `normalize`."""
    model = _load_model(src)
    return TextEncoderGraph(model, pooling, normalize, _takes_token_types(model, src)).eval()


def _load_model(src: TextSource) -> torch.nn.Module:
    try:
        # eager attention: sdpa exports to a graph ONNX Runtime cannot fuse into its Attention op
        model = AutoModel.from_pretrained(str(src.path), attn_implementation="eager")
    except Exception as exc:
        raise ExportError(f"SOURCE {src.path}: transformers cannot load it as an encoder ({exc}).") from exc
    return model.eval()


def _takes_token_types(model: torch.nn.Module, src: TextSource) -> bool:
    """BERT takes token_type_ids; DistilBERT has none; RoBERTa's are all zeros but accepted."""
    params = inspect.signature(model.forward).parameters
    return "token_type_ids" in params and int(src.config.get("type_vocab_size", 0)) > 0


def _save_tokenizer(src: TextSource, out: Path) -> None:
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src.path), use_fast=True)
    except Exception as exc:
        raise ExportError(f"SOURCE {src.path}: no usable tokenizer ({exc}).") from exc
    if not tokenizer.is_fast:
        raise ExportError(f"SOURCE {src.path}: only a slow tokenizer is available; embedrt needs a fast one (tokenizer.json).")
    tokenizer.save_pretrained(str(out))


def _export_onnx(graph: torch.nn.Module, path: Path, input_names: list[str], output_names: list[str], opset: int) -> None:
    example = {name: torch.ones((2, 8), dtype=torch.int64) for name in input_names}
    if "token_type_ids" in example:
        example["token_type_ids"] = torch.zeros((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["token_embeddings"] = {0: "batch", 1: "sequence"}
    if "sentence_embedding" in output_names:
        axes["sentence_embedding"] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow in transformers
        torch.onnx.export(
            graph,
            (example["input_ids"], example["attention_mask"], example.get("token_type_ids")),
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter gives the graph ORT's transformer fusions recognise
        )


def _measure_parity(
    graph: TextEncoderGraph, export_dir: Path, text: TextPreprocessing, src: TextSource, precision: str = "fp32", provider: str = "any"
) -> tuple[dict, np.ndarray]:
    """The precision's parity texts through the runtime's own tokeniser, PyTorch vs the engine that will run it, on pooled vectors.

    Returns the parity report and the PyTorch vectors, one row per text of parity_texts(precision).
    """
    tokenizer = load_tokenizer(export_dir, text)
    texts = parity_texts(precision)
    encoded = encode(tokenizer, texts)
    backend = engine_class(provider)(export_dir / MODEL_NAME)
    ref_vectors, onnx_vectors, token_max_abs = [], [], 0.0
    for chunk in iter_chunks(np.arange(len(texts)), PARITY_BATCH):
        inputs = pad_batch(encoded, chunk, backend.input_names, text.pad_token_id)
        with torch.no_grad():
            ref = graph(*(torch.from_numpy(inputs[n]) for n in backend.input_names))
        got = backend.run(inputs)
        ref_tokens = ref[0]
        mask = torch.from_numpy(inputs["attention_mask"])
        ref_pooled = ref[1] if len(ref) > 1 else pool_tokens(ref_tokens, mask, src.pooling)
        onnx_pooled = got["sentence_embedding"] if "sentence_embedding" in got else pool_tokens(torch.from_numpy(got["token_embeddings"]), mask, src.pooling).numpy()
        ref_vectors.append(ref_pooled.numpy())
        onnx_vectors.append(onnx_pooled)
        live = inputs["attention_mask"].astype(bool)
        token_max_abs = max(token_max_abs, float(np.abs(ref_tokens.numpy()[live] - got["token_embeddings"][live]).max()))
    reference = np.concatenate(ref_vectors)
    measured = compare(reference, np.concatenate(onnx_vectors))
    measured["token_max_abs"] = token_max_abs
    measured["inputs"] = f"{len(texts)} texts: built-in parity texts" + (" + embedrt.sample_text sentences" if len(texts) > len(PARITY_TEXTS) else "")
    return parity_report(precision, measured), reference
