"""Memory bounded by the input (issue 11, class 5): characters per text, pixels per image.

RSS is measured in a fresh subprocess whose peak is reset (/proc/self/clear_refs) just before the
call, so a figure is that call's, not the test session's. Bounds are generous: memory, not time.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

import embedrt
from embedrt.errors import EmbedrtError, InputError
from embedrt.runtime.text.tokenization import DEFAULT_MAX_CHARS, TOKENIZER_NAME, encode

WORDS = "the quick brown fox jumps over a lazy dog while the index grows by one more shard "


def prose(n: int) -> str:
    return (WORDS * (n // len(WORDS) + 1))[:n]


def bomb_png(path: Path, side: int = 12_000) -> Path:
    """A real grey PNG of side x side black pixels (144 million by default) that is ~140 KB on disk, streamed row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


RSS_PROBE = r"""
import json, sys
import numpy as np
import embedrt
from embedrt.errors import EmbedrtError

def megabytes(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

kind, export, arg, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
embedder = embedrt.load(export, **options)
if kind == "text":
    words = %r
    n = int(arg)
    item = (words * (n // len(words) + 1))[:n]
    embedder.embed(["warm up"])
else:
    item = arg
    embedder.embed([np.zeros((64, 64, 3), dtype=np.uint8)])
before = megabytes("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) restarts from the current RSS
try:
    out = embedder.embed([item])
    result = {"shape": list(out.shape), "finite": bool(np.isfinite(out).all())}
except EmbedrtError as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
result.update(before_mb=before, peak_mb=megabytes("VmHWM"), after_mb=megabytes("VmRSS"))
if kind == "text" and "shape" in result:
    result["max_diff_to_head"] = float(np.abs(out - embedder.embed([item[:20_000]])).max())
print(json.dumps(result))
""" % WORDS


def measure(kind: str, export: Path, arg: str, **options) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, kind, str(export), arg, json.dumps(options)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- characters per text ----------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["embed", "embed_tokens", "chunk"])
def test_a_text_over_max_chars_is_refused_naming_index_length_and_option(minilm, entry):
    texts = ["a short text", "x" * (DEFAULT_MAX_CHARS + 1)]
    call = {"embed": minilm.embed, "embed_tokens": minilm.embed_tokens, "chunk": lambda t: minilm.embed(t, long_text="chunk")}[entry]
    with pytest.raises(InputError, match=r"texts\[1\] has 1,000,001 characters, more than max_chars=1,000,000; split it .*TextEmbedder\(path, max_chars=N\)"):
        call(texts)


def test_max_chars_is_an_option_of_the_embedder(minilm_dir):
    embedder = embedrt.TextEmbedder(minilm_dir, max_chars=5000)
    assert embedder.embed([prose(5000)]).shape == (1, 384)
    with pytest.raises(InputError, match=r"texts\[0\] has 5,001 characters, more than max_chars=5,000"):
        embedder.embed([prose(5001)])
    for bad in (0, -1, True, "10", 2.5):
        with pytest.raises(EmbedrtError, match=r"max_chars=.*: give the most characters a text may have, an int >= 1"):
            embedrt.TextEmbedder(minilm_dir, max_chars=bad)


@pytest.mark.parametrize(
    "text",
    [
        prose(30_000),  # ordinary prose: the head overflows, cut at a space
        "日本語の長い文章です。" * 3000,  # no spaces at all; every CJK character is a word
        "x" * 20_000 + " and then some words",  # one 20,000-character word ([UNK]): the head does not fill the model
        " " * 9_000 + prose(2_000),  # a whitespace head: the whole text decides
        ("a,b;c" * 2000 + " ") * 4,  # punctuation splits words without whitespace
    ],
)
def test_a_long_text_tokenised_from_its_head_has_the_ids_and_truncation_of_the_whole_text(minilm_dir, text):
    tokenizer = Tokenizer.from_file(str(minilm_dir / TOKENIZER_NAME))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    whole = tokenizer.encode(text)
    encoded = encode(tokenizer, ["short", text])
    assert encoded.ids[1].tolist() == whole.ids
    assert encoded.truncated == ([1] if whole.overflowing else [])
    assert max(end for _, end in encoded.offsets[1]) == max(end for _, end in whole.offsets)


def test_an_accepted_20_mb_text_is_truncated_without_growing_memory(minilm_dir):
    # Before: peak +2.8 GB during the call, 1.5 GB kept after it (the tokenizer built every overflowing piece).
    result = measure("text", minilm_dir, str(20_000_000), max_chars=30_000_000)
    assert result["shape"] == [1, 384] and result["finite"]
    assert result["max_diff_to_head"] < 1e-6  # the model reads the same first 256 tokens
    assert result["peak_mb"] - result["before_mb"] < 300, result  # the string itself is 20 MB


# -- pixels per image -------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns on opening; embedrt's limit refuses it
def test_a_decompression_bomb_is_refused_from_its_header_naming_the_file(resnet18, tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 500_000  # 144 million pixels in a few hundred KB
    with pytest.raises(InputError, match=r"images\[1\] .*bomb\.png: 12000x12000 = 144,000,000 pixels, more than max_pixels=100,000,000 \(a decompression bomb"):
        resnet18.embed([np.zeros((32, 32, 3), dtype=np.uint8), bomb])
    result = resnet18.embed([bomb, np.zeros((32, 32, 3), dtype=np.uint8)], on_error="skip")
    assert result.indices.tolist() == [1]
    assert result.failures[0].input == str(bomb) and "more than max_pixels" in result.failures[0].reason


def test_a_decompression_bomb_is_refused_without_decoding_it(resnet18_dir, tmp_path):
    # Before: decoded with only a warning, peak +690 MB.
    result = measure("image", resnet18_dir, str(bomb_png(tmp_path / "bomb.png")))
    assert result.get("error") == "InputError" and "max_pixels" in result["message"], result
    assert result["peak_mb"] - result["before_mb"] < 50, result


def test_max_pixels_is_an_option_of_the_embedder(resnet18_dir):
    embedder = embedrt.ImageEmbedder(resnet18_dir, max_pixels=10_000, verify="off")  # its reference photos are larger
    assert embedder.embed([np.zeros((100, 100, 3), dtype=np.uint8)]).shape == (1, 512)
    with pytest.raises(InputError, match=r"images\[0\] <array \(100, 101, 3\) uint8>: 101x100 = 10,100 pixels, more than max_pixels=10,000"):
        embedder.embed([np.zeros((100, 101, 3), dtype=np.uint8)])
    for bad in (0, True, 1e9):
        with pytest.raises(EmbedrtError, match=r"max_pixels=.*: give the most pixels an image may have"):
            embedrt.ImageEmbedder(resnet18_dir, max_pixels=bad, verify="off")


def test_past_pillows_own_limit_the_error_says_to_raise_both_limits(resnet18_dir, tmp_path):
    embedder = embedrt.ImageEmbedder(resnet18_dir, max_pixels=300_000_000)
    huge = bomb_png(tmp_path / "huge.png", side=14_000)  # 196 million pixels: past twice Pillow's 89.5 million
    with pytest.raises(InputError, match=r"images\[0\] .*huge\.png: too many pixels for Pillow \(.*\); to take it, raise PIL\.Image\.MAX_IMAGE_PIXELS as well as max_pixels"):
        embedder.embed([huge])
