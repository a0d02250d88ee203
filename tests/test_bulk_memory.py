"""Peak memory of a bulk job is bounded by a chunk: 100,000 rows peak no higher than 10,000 (VmHWM of a real process)."""

from __future__ import annotations

import subprocess
import sys

from bulk_fixtures import sentences, small_text_dir, write_parquet  # noqa: F401

PEAK_SCRIPT = """
import sys
from embedrt.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
print("exit", code, "peak_kb", peak_kb)
"""
# Measured here: RSS rises while ONNX Runtime's arena and pyarrow's pool warm up and is flat from ~50,000 rows on
# (+16 MB from 10,000 to 100,000 rows); holding the 90,000 extra rows would add ~60 MB (vectors 23 MB, ids, texts, Row objects).
GROWTH_LIMIT_MB = 30


def peak_rss_mb(*args) -> float:
    result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0 and "exit 0" in result.stdout, result.stderr
    return int(result.stdout.split("peak_kb")[1]) / 1024


def test_peak_rss_of_100000_rows_is_that_of_10000(small_text_dir, tmp_path):
    texts = sentences(100_000, seed=7)
    big = write_parquet(tmp_path / "big.parquet", texts, [f"doc-{i}" for i in range(len(texts))], row_group_size=20_000)
    small = write_parquet(tmp_path / "small.parquet", texts[:10_000], [f"doc-{i}" for i in range(10_000)], row_group_size=20_000)
    common = ["embed", small_text_dir, "--id-column", "doc", "--quiet", "--chunk-rows", 5000]
    at_10k = peak_rss_mb(*common, "--input", small, "--output", tmp_path / "small.parquet.out.parquet")
    at_100k = peak_rss_mb(*common, "--input", big, "--output", tmp_path / "big.out.parquet")
    print(f"peak RSS: 10,000 rows {at_10k:.1f} MB, 100,000 rows {at_100k:.1f} MB")
    assert at_100k - at_10k < GROWTH_LIMIT_MB, f"10,000 rows: {at_10k:.1f} MB, 100,000 rows: {at_100k:.1f} MB"
