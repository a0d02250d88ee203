"""Every engine proves itself again where it runs, on every load.

An engine's accuracy depends on the machine as well as on its files: int8 kernels differ between CPUs
with and without VNNI, a newer onnxruntime can change results, a file can be damaged or swapped. On load:
1. the files have the sha256 the export recorded (manifest.check_integrity);
2. the graph has the inputs, outputs and dim the manifest says;
3. the reference inputs kept in the export dir, embedded by this engine on this machine, meet the
   precision's parity gate against the PyTorch vectors stored beside them.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedrt.errors import EmbedrtError, ManifestError, SelfCheckError
from embedrt.gate import compare, parity_report
from embedrt.manifest import MANIFEST_NAME, Manifest, check_integrity
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.cpu import cpu_record, describe_cpu
from embedrt.runtime.engines.reference import REFERENCE_NAME, read_reference

log = logging.getLogger("embedrt")

VERIFY_MODES = ("error", "warn", "off")

EmbedReference = Callable[[dict[str, np.ndarray]], np.ndarray]  # the reference inputs -> this engine's vectors


def check_verify(verify: str) -> str:
    if verify not in VERIFY_MODES:
        raise EmbedrtError(f"verify={verify!r} is not one of {', '.join(VERIFY_MODES)}.")
    return verify


def open_engine(
    export_dir: Path, manifest: Manifest, *, device: str, max_batch_size: int | None, session: dict[str, Any] | None,
    backend: Backend | None, verify: str, options: dict[str, Any],
) -> Backend:
    """The engine an embedder runs, with steps 1 and 2: hashes before its files are read, the graph once it is open.

    `backend` given (Triton, a test's): it is checked as it is; otherwise the export's model file on the engine
    its manifest names (engine_class).
    """
    verify_files(export_dir, manifest, verify)
    if backend is None:
        backend = engine_class(manifest.provider).for_export(export_dir, manifest, device=device, max_batch_size=max_batch_size, session=session, **options)
    check_graph(export_dir, manifest, backend)
    return backend


def open_single_thread(export_dir: Path, manifest: Manifest, *, max_batch_size: int | None, session: dict[str, Any] | None,
                       options: dict[str, Any]) -> Backend:
    """A second CPU engine of an export an embedder has just opened (and checked), one core per batch: its lanes
    (each engine's `for_lanes`)."""
    backend = engine_class(manifest.provider).for_lanes(export_dir, manifest, max_batch_size=max_batch_size, session=session, **options)
    check_graph(export_dir, manifest, backend)
    return backend


def engine_class(provider: str) -> Any:
    """The in-process engine that runs an export built for `provider` (manifest.provider)."""
    if provider == "openvino":
        from embedrt.runtime.engines.openvino_backend import OpenVinoBackend

        return OpenVinoBackend
    from embedrt.runtime.engines.onnx_backend import OnnxBackend

    return OnnxBackend


def verify_files(export_dir: Path, manifest: Manifest, verify: str) -> None:
    """Step 1, before a session is made from the files."""
    if check_verify(verify) != "off":
        check_integrity(export_dir, manifest)


def check_graph(export_dir: Path, manifest: Manifest, backend: Backend) -> None:
    """Step 2: the manifest's inputs and outputs are the graph's, and its pooled output has `dim` values."""
    where = Path(export_dir) / MANIFEST_NAME
    if set(manifest.input_names) != set(backend.input_names):
        raise ManifestError(
            f"{where}: field 'inputs' names {list(manifest.input_names)} but the graph takes {list(backend.input_names)}; "
            "the manifest or the model file was edited. Re-export the model."
        )
    missing = [name for name in manifest.output_names if name not in backend.output_names]
    if missing:
        raise ManifestError(
            f"{where}: field 'outputs' names {missing}, which the graph does not have (it has {list(backend.output_names)}); "
            "the manifest or the model file was edited. Re-export the model."
        )
    shapes = getattr(backend, "output_shapes", {})
    for spec in manifest.outputs:
        width = shapes.get(spec.name, (None,))[-1]
        if isinstance(width, int) and isinstance(spec.shape[-1], int) and width != spec.shape[-1]:
            raise ManifestError(
                f"{where}: field 'outputs' gives {spec.name} {spec.shape[-1]} values a row but the graph gives {width}; "
                "the manifest or the model file was edited. Re-export the model."
            )
        if isinstance(width, int) and len(spec.shape) == 2 and width != manifest.dim:
            raise ManifestError(
                f"{where}: field 'dim' is {manifest.dim} but the graph's {spec.name} has {width} values a row; "
                "the manifest was edited. Re-export the model."
            )


def self_check(export_dir: Path, manifest: Manifest, embed_reference: EmbedReference, verify: str) -> dict[str, Any] | None:
    """Step 3: the reference inputs through this engine against the precision's gate; the report, or None when off.

    verify="error" raises SelfCheckError below the gate, "warn" warns and goes on, "off" skips the check.
    """
    if check_verify(verify) == "off":
        return None
    inputs, reference = read_reference(export_dir)
    start = time.perf_counter()
    # All at once, as real calls are batched: a saturating int8 kernel shows in a batch (min cosine 0.97 on MiniLM's
    # references) far more than one short input at a time (0.996, which would pass).
    got = embed_reference(inputs)
    seconds = time.perf_counter() - start
    if got.shape != reference.shape:
        raise ManifestError(
            f"{Path(export_dir) / REFERENCE_NAME}: holds {reference.shape} vectors but the engine gives {got.shape}; "
            "the reference does not belong to this model. Re-export the model."
        )
    report = parity_report(manifest.precision, compare(reference, got), reference=f"pytorch fp32 ({REFERENCE_NAME})")
    report.update(seconds=round(seconds, 4), cpu=cpu_record())
    log.info("embedrt: self-check of %s: min cosine %.6f in %.0f ms", export_dir, report["min_cosine"], 1000 * seconds)
    if not report["passed"]:
        message = _failure(export_dir, manifest, report)
        if verify == "error":
            raise SelfCheckError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return report


def _failure(export_dir: Path, manifest: Manifest, report: dict[str, Any]) -> str:
    here = report["cpu"]
    misses = ", ".join(f"{k} {report[k]:.4f} < {v}" for k, v in report["thresholds"].items() if report[k] < v)
    cause = ""
    if manifest.precision == "int8" and manifest.machine.get("u8s8_exact") and not here["u8s8_exact"]:
        cause = (
            " Its int8 weights were chosen for a CPU whose int8 kernel is exact (VNNI); this CPU's u8 x s8 kernel "
            "saturates, so re-exporting here picks 7-bit weights that keep the gate."
        )
    return (
        f"{export_dir}: this {manifest.precision} engine missed its parity gate on this machine ({misses}, on "
        f"{report['n']} reference inputs against the PyTorch vectors stored at export). It runs on {describe_cpu(here)}; "
        f"it was gated on {describe_cpu(manifest.machine)}.{cause} Re-export the model on this machine "
        "(`embedrt export ...` or `embedrt optimize ...`), or use its fp32 export; verify='warn' loads it anyway."
    )
