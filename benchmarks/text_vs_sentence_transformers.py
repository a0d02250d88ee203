"""Issues 2 and 4's measurement: embedrt fp32, fused fp32 and int8 vs sentence-transformers fp32 and bf16,
in one process, interleaved.

2,000 mixed-length sentences (embedrt's token budget vs encode()'s default batch of 32) for
throughput, and 200 single-sentence calls for batch-1 latency (in blocks of 10 per engine); prints
both and the targets (fp32: >= 2.5x throughput, <= 0.35x p50 latency; int8: >= 4x PyTorch fp32 and
>= 1.4x PyTorch bf16). The same as `embedrt bench --suite text-vs-st`; `--no-variants --baselines fp32`
gives issue 2's pair alone.

    python benchmarks/text_vs_sentence_transformers.py [--out DIR] [--text-model EXPORT_DIR]
"""

import sys

from embedrt.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(["bench", "--suite", "text-vs-st", *([] if "--out" in args else ["--out", "bench-out/text-vs-st"]), *args]))
