"""`embedrt bench`: embedrt against its PyTorch baselines, measured interleaved in one process.

workloads (what is measured, on which inputs) · timing (interleaved runs, percentiles) ·
machine (the conditions of a run) · roofline (the machine's GEMM peak) · engines (the
contenders) · models (the export dirs they run) · runner (a suite end to end) ·
report (JSON, Markdown, PNG) · compare (the regression gate on ratios).
"""
