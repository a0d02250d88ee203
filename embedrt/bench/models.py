"""The export dirs a benchmark runs, made once into the cache dir, and the PyTorch source behind each.

- text: the bundled all-MiniLM-L6-v2 (max 256 tokens), and for 512-token documents a randomly
  initialised BERT of the same shape (6 layers, hidden 384) with 512 positions: it costs the same
  FLOPs per token as MiniLM, so its speed is MiniLM's at 512 tokens. Its vectors mean nothing.
- image: ResNet-50 with random weights (seed 0): speed does not depend on the weights.
- precision variants (int8, fused fp32, fp16, ...) of an fp32 export, where embedrt.export offers them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from embedrt.default_model import cache_dir, default_source, resolve_model
from embedrt.errors import EmbedrtError
from embedrt.manifest import MANIFEST_NAME, Manifest, read_manifest

log = logging.getLogger("embedrt")

LONG_POSITIONS = 512


def bench_cache() -> Path:
    return cache_dir() / "bench"


def text_model(path: str | None) -> Path:
    """An fp32 text export dir: the one given, or the cached export of the bundled model."""
    return resolve_model(path or "default")


def text_source(export_dir: Path) -> Path:
    """The checkpoint dir an export came from: the baseline runs it."""
    manifest = read_manifest(export_dir)
    source = Path(manifest.source.get("path", ""))
    if not (source / "config.json").is_file():
        raise EmbedrtError(
            f"{export_dir / MANIFEST_NAME}: its source checkpoint {source} is gone; the PyTorch baseline needs it. "
            "Re-export from a checkpoint dir that exists, or pass --text-model with such an export."
        )
    return source


def long_text_model() -> Path:
    """A MiniLM-shaped BERT with 512 positions (random weights, seed 0), exported once into the cache."""
    out = bench_cache() / "minilm-shape-512-random"
    if (out / MANIFEST_NAME).is_file():
        return out
    from embedrt.export.text.exporter import export_text

    source = _long_text_source(bench_cache() / "minilm-shape-512-random-source")
    log.warning("embedrt bench: exporting a 512-position MiniLM-shaped BERT (random weights) to %s, once", out)
    return export_text(source, out, overwrite=True)


def _long_text_source(path: Path) -> Path:
    if (path / "modules.json").is_file():
        return path
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    bundled = default_source()
    config = json.loads((bundled / "config.json").read_text(encoding="utf-8"))
    config.update(max_position_embeddings=LONG_POSITIONS)
    for key in ("architectures", "_name_or_path", "transformers_version", "torch_dtype", "dtype"):
        config.pop(key, None)
    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    BertModel(BertConfig(**config)).save_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled))
    tokenizer.model_max_length = LONG_POSITIONS
    tokenizer.save_pretrained(path)
    # a sentence-transformers dir like the bundled one: mean pooling, normalised, 512 tokens
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": config["hidden_size"], "pooling_mode_mean_tokens": True}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": LONG_POSITIONS}))
    return path


def image_model(path: str | None) -> Path:
    """An fp32 image export dir: the one given, or ResNet-50 with random weights exported once into the cache."""
    if path:
        return Path(path)
    out = bench_cache() / "resnet50-random"
    if (out / MANIFEST_NAME).is_file():
        return out
    try:
        from embedrt.export.image.exporter import export_image
    except ImportError as exc:
        raise EmbedrtError(f"the image benchmark exports ResNet-50 once, which needs the export extra ({exc.name} is missing): pip install 'embedrt[export,image]'.") from exc
    log.warning("embedrt bench: exporting ResNet-50 (random weights, seed 0) to %s, once", out)
    return export_image("resnet50", out, random_init=True, seed=0, overwrite=True)


def image_source_model(manifest: Manifest) -> Any:
    """The PyTorch module an image export came from (same weights), for the eager baseline."""
    from embedrt.export.image.source import read_image_source

    src = manifest.source
    if src.get("kind") == "torchvision":
        if src.get("random_init"):
            return read_image_source(src["architecture"], random_init=True, seed=int(src.get("seed", 0))).model
        return read_image_source(src["architecture"], weights=src["weights"]).model
    return read_image_source(src["path"]).model


def image_gflop(manifest: Manifest) -> float | None:
    from embedrt.bench.roofline import RESNET_GFLOP

    arch = manifest.source.get("architecture")
    if arch is None and manifest.source.get("kind") == "transformers":  # HF configs give the blocks per stage
        try:
            depths = json.loads((Path(manifest.source["path"]) / "config.json").read_text(encoding="utf-8")).get("depths")
        except (OSError, KeyError, ValueError):
            depths = None
        arch = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet50" if manifest.dim == 2048 else "resnet34",
                (3, 4, 23, 3): "resnet101", (3, 8, 36, 3): "resnet152"}.get(tuple(depths or ()))
    return RESNET_GFLOP.get(arch or "")


# The variants measured beside fp32, per device: (precision, optimize); None takes the exporter's default.
CPU_VARIANTS = (("fp32", "fuse"), ("int8", None), ("bf16", None))
# fp16 on a CPU runs about 100x slower: never measured there. For CUDA both are the fused transformer graph for GPU.
GPU_VARIANTS = (("fp32", None), ("fp16", None))


def precision_variants(fp32_dir: Path, device: str = "cpu") -> tuple[list[Path], list[str]]:
    """Fused and lower-precision exports of the same source as `fp32_dir`, made once into the cache.

    Returns (export dirs, why each variant that could not be made was skipped): a variant that
    misses its parity gate is reported, not measured, and does not stop the benchmark.
    """
    from embedrt.errors import ExportError, ProviderError

    manifest = read_manifest(fp32_dir)
    export = _exporter(manifest)
    if export is None:
        return [], [f"{fp32_dir.name}: this embedrt's {manifest.modality} export has no precision option; only fp32 is measured"]
    provider = None if device == "cpu" else device
    stamp = f"{str(manifest.model_file.get('sha256', 'unknown'))[:8]}-{_export_code_stamp()}"
    made, skipped = [], []
    for precision, optimize in (CPU_VARIANTS if device == "cpu" else GPU_VARIANTS):
        out = bench_cache() / "variants" / f"{fp32_dir.name}-{stamp}-{precision}-{optimize or 'default'}-{device}"
        if not (out / MANIFEST_NAME).is_file():
            log.warning("embedrt bench: exporting the %s %s variant of %s to %s, once", precision, optimize or "", fp32_dir, out)
            try:
                export(out, precision=precision, optimize=optimize, provider=provider)
            except (ExportError, ProviderError) as exc:  # a missed parity gate, or no OpenVINO / bf16 units for bf16
                skipped.append(f"{fp32_dir.name} {precision} {optimize or ''}: {exc}")
                continue
        made.append(out)
    return made, skipped


def _export_code_stamp() -> str:
    """A digest of embedrt's export code: a changed recipe (say, another int8 block size) makes new variants, not stale ones."""
    import hashlib

    import embedrt.export

    digest = hashlib.sha256()
    for path in sorted(Path(embedrt.export.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _exporter(manifest: Manifest):
    """export(out, precision=, optimize=, provider=) re-exporting the manifest's source, or None when the exporter has no precision."""
    import inspect

    if manifest.modality == "text":
        from embedrt.export.text.exporter import export_text

        if "precision" not in inspect.signature(export_text).parameters:
            return None
        text = manifest.text
        assert text is not None
        return lambda out, **plan: export_text(manifest.source["path"], out, pooling=manifest.pooling, normalize=manifest.normalize,
                                               max_length=text.max_length, pool_in_graph=manifest.pooled_in_graph,
                                               overwrite=True, **plan)
    from embedrt.export.image.exporter import export_image

    if "precision" not in inspect.signature(export_image).parameters:
        return None
    src = manifest.source
    if src.get("kind") == "torchvision":
        args = {"random_init": True, "seed": int(src.get("seed", 0))} if src.get("random_init") else {"weights": src["weights"]}
        return lambda out, **plan: export_image(src["architecture"], out, normalize=manifest.normalize, overwrite=True, **args, **plan)
    return lambda out, **plan: export_image(src["path"], out, normalize=manifest.normalize, overwrite=True, **plan)
