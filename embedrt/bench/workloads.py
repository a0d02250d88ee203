"""What is measured: workloads a user recognises, and their deterministic inputs (never downloaded).

Text comes from embedrt.sample_text (the stdlib's own prose); images are the photographs
scikit-image ships. The same suite on the same version always sees the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from embedrt.errors import EmbedrtError
from embedrt.sample_text import sample_document, sample_sentences

# The text models a workload can run on: the bundled all-MiniLM-L6-v2 (256 tokens at most), and a
# randomly initialised BERT of the same shape with 512 positions for 512-token documents.
DEFAULT_TEXT = "default"
LONG_TEXT = "minilm-shape-512"
IMAGE_MODEL = "resnet50"

# scikit-image's bundled colour photographs (no download needed), cycled to make larger sets.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel", "retina")


@dataclass(frozen=True)
class Workload:
    name: str  # "text/throughput/b32/mixed": modality / kind / batch / inputs
    modality: str  # "text" | "image"
    kind: str  # "latency": one input per call, percentiles over calls | "throughput": the whole set per call
    inputs: str  # "mixed" | "short" | "passage-128" | "doc-256" | "doc-512" | "photos"
    n: int  # inputs; for latency workloads also the number of timed calls
    batch: int | None  # fixed batch size; None: embedrt's token budget vs the baseline library's default batch
    repeats: int = 1  # timed passes over the inputs (throughput)
    model: str = DEFAULT_TEXT
    call_size: int | None = None  # throughput: inputs per timed call (None: all n); calls interleave across engines

    @property
    def items_per_call(self) -> int:
        return 1 if self.kind == "latency" else (self.call_size or self.n)

    @property
    def calls(self) -> int:
        return self.n if self.kind == "latency" else self.repeats * -(-self.n // self.items_per_call)


def _text(kind: str, batch: int | None, inputs: str, n: int, repeats: int = 1, model: str = DEFAULT_TEXT, call_size: int | None = None) -> Workload:
    label = "budget" if batch is None else f"b{batch}"
    return Workload(f"text/{kind}/{label}/{inputs}", "text", kind, inputs, n, batch, repeats, model, call_size)


def _image(kind: str, batch: int, n: int, repeats: int = 1, call_size: int | None = None) -> Workload:
    return Workload(f"image/{kind}/b{batch}/photos", "image", kind, "photos", n, batch, repeats, IMAGE_MODEL, call_size)


def text_suite(quick: bool) -> list[Workload]:
    if quick:
        return [
            _text("latency", 1, "mixed", 24),
            _text("throughput", 32, "mixed", 96, call_size=48),
            _text("throughput", None, "mixed", 96, call_size=48),
        ]
    return [
        _text("latency", 1, "mixed", 100),
        _text("throughput", 8, "mixed", 256, call_size=128),
        _text("throughput", 32, "mixed", 256, call_size=128),
        _text("throughput", 128, "mixed", 256, call_size=128),
        _text("throughput", None, "mixed", 1000, call_size=250),
        # the sequence-length sweep: queries, passages, documents (512 tokens on the 512-position model)
        _text("latency", 1, "short", 60),
        _text("latency", 1, "passage-128", 30),
        _text("latency", 1, "doc-256", 20),
        _text("latency", 1, "doc-512", 12, model=LONG_TEXT),
        _text("throughput", 32, "passage-128", 128, call_size=64),
        _text("throughput", 8, "doc-512", 32, call_size=16, model=LONG_TEXT),
    ]


def image_suite(quick: bool) -> list[Workload]:
    if quick:
        return [_image("latency", 1, 6), _image("throughput", 16, 32, call_size=16)]
    return [_image("latency", 1, 20), _image("throughput", 16, 64, call_size=32)]


def text_vs_sentence_transformers_suite(sentences: int = 2000, latency_calls: int = 200) -> list[Workload]:
    """Issue 2's measurement: mixed-length sentences by token budget (in interleaved calls of 250), and batch-1 latency."""
    return [_text("throughput", None, "mixed", sentences, call_size=min(250, sentences)), _text("latency", 1, "mixed", latency_calls)]


# -- inputs ------------------------------------------------------------------------------------------
def text_inputs(workload: Workload, tokenizer_file: Path) -> list[str]:
    if workload.inputs == "mixed":
        return sample_sentences(workload.n, min_words=4, max_words=64, seed=1)
    if workload.inputs == "short":
        return sample_sentences(workload.n, min_words=3, max_words=10, seed=2)
    if workload.inputs.startswith(("passage-", "doc-")):
        return texts_of_tokens(tokenizer_file, workload.n, int(workload.inputs.split("-")[1]))
    raise EmbedrtError(f"workload {workload.name}: unknown text inputs {workload.inputs!r}.")


def texts_of_tokens(tokenizer_file: Path, n: int, tokens: int, seed: int = 3) -> list[str]:
    """`n` documents of exactly `tokens` tokens (special tokens included) for this tokenizer, cut at a token boundary."""
    tokenizer = raw_tokenizer(str(tokenizer_file))
    texts = []
    for i in range(n):
        doc = sample_document(tokens * 2, seed=seed + i)
        enc = tokenizer.encode(doc)
        content = [k for k, special in enumerate(enc.special_tokens_mask) if not special]
        last = content[min(tokens - 2, len(content)) - 1]  # room for [CLS] and [SEP]
        texts.append(doc[: enc.offsets[last][1]])
    return texts


@lru_cache(maxsize=4)
def raw_tokenizer(path: str):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def image_inputs(workload: Workload) -> list[np.ndarray]:
    """HWC uint8 RGB photographs from scikit-image, cycled to `n`."""
    photos = _photos()
    return [photos[i % len(photos)] for i in range(workload.n)]


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    try:
        import skimage.data
    except ImportError as exc:
        raise EmbedrtError("image benchmarks take their photographs from scikit-image: pip install scikit-image (or 'embedrt[dev]').") from exc
    return tuple(np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]) for name in PHOTOS)


def suite_workloads(suite: str, quick: bool) -> list[Workload]:
    if suite == "text":
        return text_suite(quick)
    if suite == "image":
        return image_suite(quick)
    if suite == "all":
        return text_suite(quick) + image_suite(quick)
    if suite == "text-vs-st":
        return text_vs_sentence_transformers_suite(256, 30) if quick else text_vs_sentence_transformers_suite()
    raise EmbedrtError(f"--suite {suite!r} is not one of {', '.join(SUITES)}.")


SUITES = ("all", "text", "image", "text-vs-st")

# The project's targets on this machine kind: workload, the embedrt precision they bind (None: every
# embedrt engine), ratio field, bound. Issue 2 (text, fp32), issue 3 (images), issue 4 (text int8).
TARGETS = (
    ("text/throughput/budget/mixed", "fp32", "speedup_vs_pytorch_fp32", ">=", 2.5),
    ("text/latency/b1/mixed", "fp32", "p50_latency_ratio_vs_pytorch_fp32", "<=", 0.35),
    ("text/throughput/budget/mixed", "int8", "speedup_vs_pytorch_fp32", ">=", 4.0),
    ("text/throughput/budget/mixed", "int8", "speedup_vs_pytorch_bf16", ">=", 1.4),
    ("image/throughput/b16/photos", None, "speedup_vs_pytorch_fp32", ">=", 2.5),
    ("image/latency/b1/photos", None, "p50_latency_ratio_vs_pytorch_fp32", "<=", 0.6),
)
