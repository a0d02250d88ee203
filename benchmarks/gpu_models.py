"""Random-weight BERTs of real shapes, as sentence-transformers dirs, for a GPU machine that has no model package.

The tokenizer is the bundled model's (all-MiniLM-L6-v2's WordPiece files, committed in benchmarks/gpu_tokenizer);
the weights are seeded. Speed depends on the shape, not on the weights; parity is measured against the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_DIR = Path(__file__).resolve().parent / "gpu_tokenizer"

# name -> (layers, hidden, heads, intermediate, positions, max_seq_length)
SHAPES = {
    "minilm-shape": (6, 384, 12, 1536, 512, 256),  # all-MiniLM-L6-v2
    "bge-base-shape": (12, 768, 12, 3072, 512, 512),  # bge-base-en-v1.5
    "tiny": (2, 64, 4, 128, 128, 128),  # the GPU tests' model
}


def build_model(out: Path, shape: str, seed: int = 0) -> Path:
    """A seeded random BERT of `shape` with the bundled tokenizer, mean pooling and normalisation, at `out` (made once)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    if (out / "modules.json").is_file():
        return out
    layers, hidden, heads, intermediate, positions, max_seq_length = SHAPES[shape]
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, max_position_embeddings=positions)
    BertModel(config).eval().save_pretrained(out)
    AutoTokenizer.from_pretrained(str(TOKENIZER_DIR)).save_pretrained(out)
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules))
    return out
