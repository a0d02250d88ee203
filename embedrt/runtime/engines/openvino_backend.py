"""OpenVinoBackend: a bf16 engine, the export's plain ONNX graph run in-process by OpenVINO's CPU plugin in bf16.

On a CPU with bf16 units (AMX on Intel Xeons, AVX-512 BF16 on Zen 4/5), OpenVINO computes the matmuls in
bf16 and keeps the rest of the graph where its accuracy needs it. all-MiniLM-L6-v2 on the Xeon with AMX
(2 cores, 2,000 mixed sentences, embedrt's batching): 493 texts/s on one two-thread model and 543 with
two lanes, against 178-183 for ONNX Runtime fp32 and 338 for the int8 engine, at min cosine 0.99994
against fp32. On a CPU without bf16 units, OpenVINO would quietly compute in f32: that is refused here
(the fp32 and int8 engines are the ones for it).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embedrt.errors import EmbedrtError, ManifestError, ProviderError
from embedrt.manifest import MANIFEST_NAME, Manifest, check_model_file
from embedrt.runtime.engines.lanes import lane_threads
from embedrt.runtime.engines.providers import check_built_for
from embedrt.runtime.engines.session_options import physical_cores

OPENVINO = "openvino"  # manifest.provider of an engine OpenVINO runs
INSTALL_HINT = "install it with `pip install embedrt[openvino]`"


class OpenVinoBackend:
    """One compiled model; each calling thread runs on its own infer request, so `run` is thread-safe.

    `streams` > 1 splits the `threads` between as many batches at once (embedrt.runtime.engines.lanes).
    """

    is_padded = True

    def __init__(self, model_path: str | Path, *, max_batch_size: int = 256, threads: int | None = None, streams: int = 1) -> None:
        self.model_path = Path(model_path)
        try:
            self.compiled = compile_bf16(str(self.model_path), threads=threads, streams=streams)
        except RuntimeError as exc:  # OpenVINO raises RuntimeError for unreadable files and unsupported ops
            raise ManifestError(f"{self.model_path}: OpenVINO cannot compile it ({str(exc).splitlines()[0]}). "
                                "Re-export the model with `--precision bf16`.") from exc
        self._max_batch_size = max_batch_size
        self.input_names = tuple(i.any_name for i in self.compiled.inputs)
        self.output_names = tuple(o.any_name for o in self.compiled.outputs)
        self.output_shapes = {o.any_name: tuple(d.get_length() if d.is_static else None for d in o.get_partial_shape())
                              for o in self.compiled.outputs}
        self._outputs = {o.any_name: o for o in self.compiled.outputs}
        self._local = threading.local()

    @classmethod
    def for_export(cls, export_dir: Path, manifest: Manifest, *, device: str = "cpu", max_batch_size: int | None = None,
                   session: dict[str, Any] | None = None, streams: int = 1, **options: Any) -> "OpenVinoBackend":
        """The engine of a bf16 export: its model file (size-checked), on `session`'s intra_op_threads (default: every core).

        ONNX Runtime's other session settings (optimisation level, spinning) do not apply to OpenVINO.
        """
        check_built_for(manifest.provider, device, str(Path(export_dir) / MANIFEST_NAME))
        if options:
            raise EmbedrtError(f"{', '.join(sorted(options))}: ONNX Runtime options; a bf16 (OpenVINO) engine takes none.")
        threads = (session or {}).get("intra_op_threads")
        try:
            return cls(check_model_file(export_dir, manifest), max_batch_size=max_batch_size or manifest.max_batch_size,
                       threads=threads, streams=streams)
        except ProviderError as exc:  # no bf16 units, or no OpenVINO: say which export could not load
            raise ProviderError(f"{export_dir}: {exc}") from None

    @classmethod
    def for_lanes(cls, export_dir: Path, manifest: Manifest, *, max_batch_size: int | None = None,
                  session: dict[str, Any] | None = None, **options: Any) -> "OpenVinoBackend":
        """The engine an embedder's lanes share: one compiled model with a stream per core (embedrt.runtime.engines.lanes)."""
        return cls.for_export(export_dir, manifest, max_batch_size=max_batch_size, session=session, streams=lane_threads(session), **options)

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def providers(self) -> list[str]:
        return ["OpenVINO CPU (bf16)"]

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        feed, length = _padded_to_multiple({name: inputs[name] for name in self.input_names})
        result = request.infer(feed)  # outputs are copies (share_outputs=False)
        return {name: _cropped(result[self._outputs[name]], length) for name in (output_names or self.output_names)}


# OpenVINO prepares its kernels for each new input shape it sees. Sequences padded to a multiple of 16 (masked
# positions, AMX's tile height) make a few shapes out of hundreds: on 2,000 mixed sentences in calls of 250,
# the first pass ran at 493 texts/s instead of 447, later passes at 515-525 instead of 507-513.
SEQUENCE_MULTIPLE = 16


def _padded_to_multiple(feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
    """(batch, sequence) inputs padded with 0 (attention mask 0) to a multiple of SEQUENCE_MULTIPLE, and the length they had."""
    lengths = {v.shape[1] for v in feed.values() if v.ndim == 2}
    if len(lengths) != 1:
        return feed, None
    length = lengths.pop()
    padded = -(-length // SEQUENCE_MULTIPLE) * SEQUENCE_MULTIPLE
    if padded == length:
        return feed, None
    return {k: np.pad(v, ((0, 0), (0, padded - length))) if v.ndim == 2 else v for k, v in feed.items()}, length


def _cropped(output: np.ndarray, length: int | None) -> np.ndarray:
    """A (batch, sequence, ...) output cut back to the caller's sequence length."""
    return output[:, :length] if length is not None and output.ndim >= 3 else output


def compile_bf16(model: Any, *, threads: int | None = None, streams: int = 1) -> Any:
    """`model` (a file, or OpenVINO's Model) compiled for the CPU in bf16 on `threads` (default: every core), refused
    where OpenVINO would not compute in bf16 (check_bf16)."""
    ov = import_openvino()
    config = {
        "INFERENCE_PRECISION_HINT": "bf16",
        "INFERENCE_NUM_THREADS": threads or physical_cores(),
        "NUM_STREAMS": streams,
        "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
    }
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model) if isinstance(model, str) else model, "CPU", config)
    check_bf16(core, compiled)
    return compiled


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise ProviderError(f"a bf16 engine runs on OpenVINO, which is not installed; {INSTALL_HINT}.") from exc
    return openvino


def check_bf16(core: Any, compiled: Any) -> None:
    """Refuse a compiled model OpenVINO would not compute in bf16: a CPU without bf16 units gets f32.

    Both of OpenVINO's answers are asked: the CPU's capabilities (BF16 listed) and the compiled model's precision.
    """
    computes_in = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    refuse_bf16(computes_in if bf16_units(core) else "f32", core.get_property("CPU", "FULL_DEVICE_NAME"))


def bf16_units(core: Any = None) -> bool:
    """Whether OpenVINO lists BF16 among this CPU's capabilities (AMX or AVX-512 BF16): where not, it computes in f32."""
    return "BF16" in (core or import_openvino().Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def refuse_bf16(computes_in: str, cpu: str) -> None:
    """The refusal check_bf16 makes, from OpenVINO's answer: the precision it would compute in, on this CPU."""
    if computes_in != "bf16":
        raise ProviderError(
            f"this CPU ({cpu}) has no bf16 units (AMX or AVX-512 BF16): OpenVINO would compute the bf16 engine in {computes_in}, "
            "no faster than fp32. Load the fp32 or int8 export on this machine."
        )
