"""A standalone TensorRT engine (`model.plan`) from an export dir, for Triton's `tensorrt_plan` backend.

Needs an NVIDIA GPU and the `tensorrt` Python package (imported here and nowhere else). The optimisation
profile is the one the ONNX Runtime TensorRT provider uses (embedrt.runtime.engines.providers.profile_dims).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from embedrt.atomic_file import atomic_write
from embedrt.errors import ExportError
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.providers import profile_dims

PLAN_NAME = "model.plan"


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise ExportError(
            "building a TensorRT plan needs the `tensorrt` Python package and an NVIDIA GPU with its driver "
            f"({exc}); on a GPU machine: pip install 'tensorrt-cu13==10.*'. On a CPU, serve the ONNX export instead."
        ) from exc
    return tensorrt


def build_tensorrt_plan(
    export_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    fp16: bool = True,
    max_batch: int | None = None,
    workspace_bytes: int = 4 << 30,
) -> Path:
    """Parse the export's model.onnx, build one engine for the manifest's batch/length profile, write it atomically."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    if manifest.precision == "int8":
        raise ExportError(f"{export_dir}: an int8 export holds CPU int8 kernels TensorRT cannot build; build the plan from the fp32 export.")
    trt = import_tensorrt()
    out = Path(out) if out is not None else export_dir / PLAN_NAME
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(export_dir / manifest.model_file.get("name", "model.onnx"))):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{export_dir}: TensorRT cannot parse model.onnx ({errors}).")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profile_dims(manifest, max_batch=max_batch).items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ExportError(f"{export_dir}: TensorRT failed to build an engine (see its log above).")
    return atomic_write(out, lambda tmp: tmp.write_bytes(bytes(engine)))
