"""Issue 3's measurement: embedrt vs PyTorch eager on ResNet-50 (random weights), batch 1 and batch 16.

Both sides get the same preprocessed pixels (embedrt's preprocessing), so only the engine differs;
prints images/s, p50 latency and the targets (>= 2.5x at batch 16, <= 0.6x p50 at batch 1).
The same as `embedrt bench --suite image`.

    python benchmarks/image_vs_pytorch.py [--out DIR] [--image-model EXPORT_DIR]
"""

import sys

from embedrt.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(["bench", "--suite", "image", *([] if "--out" in args else ["--out", "bench-out/image"]), *args]))
