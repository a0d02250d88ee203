"""Bulk embedding: files of any size streamed through an embedder in chunks, to parts plus a journal, resumable.

rows.py     one input row, and the Unicode check every source applies
sources.py  streaming readers: .txt, .jsonl, .csv/.tsv and .parquet (pyarrow), image paths, CLI arguments
parts.py    one chunk's output file per format (.parquet, .jsonl, .npy) and the final assembly
journal.py  the work dir beside the output: lock, fingerprint, finished chunks committed atomically
job.py      the loop: chunk -> embed (the runtime's batcher) -> part -> journal; then assemble
progress.py a bar on a terminal, a log line now and then elsewhere
"""
