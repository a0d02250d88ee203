"""What a text checkpoint dir says about itself: pooling, normalisation, max length (sentence-transformers config first)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedrt.bundled_model import DEFAULT, default_source
from embedrt.errors import ExportError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# These models offset position ids by padding_idx + 1, so two positions are unusable.
_POSITION_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer"}


@dataclass(frozen=True)
class TextSource:
    path: Path
    config: dict[str, Any]
    pooling: str
    normalize: bool
    max_length: int
    from_sentence_transformers: bool

    @property
    def model_type(self) -> str:
        return self.config.get("model_type", "")

    def fingerprint_files(self) -> list[Path]:
        files = [self.path / "config.json"] + [self.path / f for f in WEIGHT_FILES if (self.path / f).is_file()]
        return files


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: unreadable ({exc}).") from exc


def _st_pooling(path: Path) -> tuple[str | None, bool]:
    """(pooling, normalize) from modules.json + the Pooling module's config, or (None, False)."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None, False
    modules = _read_json(modules_file)
    pooling, normalize = None, False
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Pooling"):
            cfg = _read_json(path / module.get("path", "") / "config.json")
            if cfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                pooling = "max"
            elif cfg.get("pooling_mode_mean_tokens"):
                pooling = "mean"
            else:
                raise ExportError(f"{modules_file}: pooling mode {cfg} is not supported (mean, cls, max are).")
        elif kind.endswith("Normalize"):
            normalize = True
    return pooling, normalize


def read_text_source(source: str | Path, *, pooling: str | None = None, normalize: bool | None = None, max_length: int | None = None) -> TextSource:
    path = default_source() if str(source) == DEFAULT else Path(source)
    if not path.is_dir():
        raise ExportError(f"SOURCE {source}: not a directory; give a local Hugging Face or sentence-transformers model dir, or 'default'.")
    if not (path / "config.json").is_file():
        raise ExportError(f"SOURCE {path}: no config.json; this is not a Hugging Face model dir.")
    config = _read_json(path / "config.json")
    st_pooling, st_normalize = _st_pooling(path)
    st_config = path / "sentence_bert_config.json"
    st_max = _read_json(st_config).get("max_seq_length") if st_config.is_file() else None
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in _POSITION_OFFSET_TYPES:
        limit -= 2
    chosen_max = max_length or st_max or limit
    if chosen_max > limit:
        raise ExportError(f"max_length {chosen_max} exceeds the model's {limit} positions ({path / 'config.json'}).")
    return TextSource(
        path=path,
        config=config,
        pooling=pooling or st_pooling or "mean",
        normalize=st_normalize if normalize is None else normalize,
        max_length=int(chosen_max),
        from_sentence_transformers=st_pooling is not None,
    )
