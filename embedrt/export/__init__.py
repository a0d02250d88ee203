"""Checkpoint -> ONNX export dirs. Needs the `export` extra (torch, transformers, onnx)."""

from embedrt.export.text import export_text

__all__ = ["export_text"]
