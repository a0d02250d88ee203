"""Randomly initialised encoders (fixed seed) saved as local Hugging Face dirs: no model hub here."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertConfig, DistilBertModel, RobertaConfig, RobertaModel

SMALL = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64, "intermediate_size": 128}


def _sentence_transformers_config(path: Path, pooling: str, normalize: bool, max_seq_length: int) -> None:
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 64,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
    }))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))


def random_bert(path: Path, wordpiece_source: Path, *, pooling: str = "cls", normalize: bool = False, seed: int = 0) -> Path:
    """A 2-layer BERT with the bundled WordPiece tokenizer, as a sentence-transformers dir."""
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=30522, max_position_embeddings=128, **SMALL)).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(wordpiece_source)).save_pretrained(path)
    _sentence_transformers_config(path, pooling, normalize, max_seq_length=128)
    return path


def random_distilbert(path: Path, wordpiece_source: Path, *, seed: int = 0) -> Path:
    """A 2-layer DistilBERT (no token_type_ids), a plain HF dir: the export's defaults apply (mean pooling)."""
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=30522, max_position_embeddings=128, n_layers=2, n_heads=4, dim=64, hidden_dim=128)
    DistilBertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(wordpiece_source)).save_pretrained(path)
    return path


def random_roberta(path: Path, *, seed: int = 0) -> Path:
    """A 2-layer RoBERTa with a byte-level BPE tokenizer trained on stdlib prose (positions offset by 2)."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast

    from embedrt.sample_text import sample_sentences

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sample_sentences(2000, seed=seed), vocab_size=1000, special_tokens=specials)
    bpe.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=bpe.get_vocab_size(), max_position_embeddings=130, pad_token_id=1, type_vocab_size=1, **SMALL)
    RobertaModel(config).save_pretrained(path)
    return path
