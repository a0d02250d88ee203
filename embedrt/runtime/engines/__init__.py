"""Engines: what runs an exported graph, and how it proves itself where it runs.

backend.py is the interface every embedder codes against; onnx_backend.py (ONNX Runtime) and
openvino_backend.py are the engines; providers.py (CUDA, TensorRT and their options), session_options.py,
lanes.py (CPU batches in parallel), cuda_graphs.py (batch-1 calls replayed on a GPU),
warm_up.py and cpu.py (the int8 kernel probe) configure them;
self_check.py with reference.py checks each engine on load. Nothing here knows a modality's inputs.
"""
