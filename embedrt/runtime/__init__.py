"""The torch-free runtime: an export dir -> vectors. Never imports torch or embedrt.export.

engines/ runs graphs (ONNX Runtime, OpenVINO, providers, lanes, the CPU probe, the self-check);
text/, image/ and features/ each hold one modality's input and output stages and its embedder;
queue/ merges many callers' requests into batches for any of them. What every modality shares sits
here: batching.py (the token-budget batcher), inputs.py, outputs.py, prefetch.py.
"""
