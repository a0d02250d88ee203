"""OnnxBackend: the exported graph run in-process by ONNX Runtime (CPU, CUDA or TensorRT provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from embedrt.errors import ManifestError
from embedrt.manifest import MANIFEST_NAME, Manifest, check_model_file
from embedrt.runtime.engines.cuda_graphs import cuda_graphs_for
from embedrt.runtime.engines.providers import (
    TensorRTOptions,
    check_active,
    check_available,
    check_built_for,
    plan_providers,
    preload_gpu_libraries,
    tensorrt_options_for,
)
from embedrt.runtime.engines.session_options import session_options


TENSORRT_CACHE = "tensorrt-cache"  # engine and timing caches, inside the export dir unless told otherwise


class OnnxBackend:
    """One InferenceSession. `run` is thread-safe (ONNX Runtime allows concurrent Run calls on a session)."""

    is_padded = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        device_id: int = 0,
        max_batch_size: int = 256,
        session: dict[str, Any] | None = None,
        tensorrt: TensorRTOptions | None = None,
        cuda_graphs: bool | None = None,
        max_length: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        plan = plan_providers(device, device_id=device_id, tensorrt=tensorrt)
        check_available(plan, ort.get_available_providers())
        if device != "cpu":
            preload_gpu_libraries()
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=session_options(**(session or {})), providers=plan.providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"{self.model_path}: ONNX Runtime cannot load it ({exc}). The file is corrupt or incomplete; re-export the model.") from exc
        check_active(plan, self.session.get_providers())
        # Batch-1 calls replayed as CUDA graphs over length buckets (embedrt.runtime.engines.cuda_graphs); None elsewhere.
        self.cuda_graphs = cuda_graphs_for(cuda_graphs, device, str(self.model_path), self.session, plan.providers,
                                           lambda: session_options(**(session or {})), max_length, device_id)
        self.device = device
        self._max_batch_size = max_batch_size
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        # Symbolic axes come back as strings: only the integers say something to check against a manifest.
        self.output_shapes = {o.name: tuple(o.shape) for o in self.session.get_outputs()}

    @classmethod
    def for_export(
        cls, export_dir: Path, manifest: Manifest, *, device: str = "cpu", max_batch_size: int | None = None,
        session: dict[str, Any] | None = None, **options: Any,
    ) -> "OnnxBackend":
        """The session an embedder runs: the export's model file (size-checked against its manifest).

        An engine built for another provider (manifest.provider) is refused here. On TensorRT, the
        profile shapes come from the manifest's limits, engines are cached in `export_dir/tensorrt-cache`
        unless `tensorrt=TensorRTOptions(...)` says otherwise, and a warm-up builds the engine now.
        """
        check_built_for(manifest.provider, device, str(Path(export_dir) / MANIFEST_NAME))
        batch = max_batch_size or manifest.max_batch_size
        options.setdefault("max_length", manifest.text.max_length if manifest.text else None)
        if device == "tensorrt" and options.get("tensorrt") is None:
            options["tensorrt"] = tensorrt_options_for(manifest, Path(export_dir) / TENSORRT_CACHE, max_batch=batch)
        backend = cls(check_model_file(export_dir, manifest), device=device, max_batch_size=batch, session=session, **options)
        if device == "tensorrt":
            from embedrt.runtime.engines.warm_up import warm_up

            warm_up(backend, manifest)
        return backend

    @classmethod
    def for_lanes(cls, export_dir: Path, manifest: Manifest, *, max_batch_size: int | None = None,
                  session: dict[str, Any] | None = None, **options: Any) -> "OnnxBackend":
        """The session an embedder's lanes share: one intra-op thread, concurrent calls each on their calling thread."""
        single = {**(session or {}), "intra_op_threads": 1}
        return cls.for_export(export_dir, manifest, device="cpu", max_batch_size=max_batch_size, session=single, **options)

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = list(output_names or self.output_names)
        if self.cuda_graphs is not None and self.cuda_graphs.takes(inputs):
            return self.cuda_graphs.run(inputs, names)
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(names, self.session.run(names, feed)))
