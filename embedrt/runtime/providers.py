"""Where a device name becomes ONNX Runtime execution providers, their options, and the check that they are active."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from embedrt.errors import ProviderError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

DEVICES = ("cpu", "cuda", "tensorrt")
_MAIN_PROVIDER = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}


@dataclass(frozen=True)
class TensorRTOptions:
    """Options of the TensorRT execution provider. Profile shapes stop it rebuilding the engine per new shape."""

    fp16: bool = True
    cache_dir: Path | None = None
    # "name:BxL,name:BxL" strings as ONNX Runtime takes them; built from the manifest by profile_shapes().
    min_shapes: str | None = None
    opt_shapes: str | None = None
    max_shapes: str | None = None
    max_workspace_bytes: int = 4 << 30

    def provider_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "trt_fp16_enable": self.fp16,
            "trt_max_workspace_size": self.max_workspace_bytes,
        }
        if self.cache_dir is not None:
            opts["trt_engine_cache_enable"] = True
            opts["trt_engine_cache_path"] = str(self.cache_dir)
            opts["trt_timing_cache_enable"] = True
            opts["trt_timing_cache_path"] = str(self.cache_dir)
        if self.min_shapes:
            opts["trt_profile_min_shapes"] = self.min_shapes
            opts["trt_profile_opt_shapes"] = self.opt_shapes
            opts["trt_profile_max_shapes"] = self.max_shapes
        return opts


@dataclass(frozen=True)
class ProviderPlan:
    device: str
    providers: list[Any] = field(default_factory=list)  # as InferenceSession(providers=...) takes them
    required: str = CPU  # this one must be active in the session, or it is an error


def profile_shapes(input_names: Sequence[str], max_batch: int, max_length: int | None, opt_batch: int = 8, opt_length: int = 128) -> tuple[str, str, str]:
    """TensorRT min/opt/max profile strings for inputs of shape (batch, length) or (batch, C, H, W)."""

    def fmt(batch: int, length: int | None) -> str:
        if length is None:
            return ",".join(f"{n}:{batch}" for n in input_names)
        return ",".join(f"{n}:{batch}x{length}" for n in input_names)

    if max_length is None:
        return fmt(1, None), fmt(opt_batch, None), fmt(max_batch, None)
    return fmt(1, 1), fmt(min(opt_batch, max_batch), min(opt_length, max_length)), fmt(max_batch, max_length)


def plan_providers(device: str, *, device_id: int = 0, tensorrt: TensorRTOptions | None = None) -> ProviderPlan:
    """The provider list for `device`; CPU stays last so that ops a GPU provider lacks still run."""
    if device not in DEVICES:
        raise ProviderError(f"device={device!r} is not one of {', '.join(DEVICES)}.")
    if device == "cpu":
        return ProviderPlan(device, [CPU], CPU)
    cuda = (CUDA, {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested", "cudnn_conv_algo_search": "HEURISTIC"})
    if device == "cuda":
        return ProviderPlan(device, [cuda, CPU], CUDA)
    trt = (TENSORRT, {"device_id": device_id, **(tensorrt or TensorRTOptions()).provider_options()})
    return ProviderPlan(device, [trt, cuda, CPU], TENSORRT)


def check_available(plan: ProviderPlan, available: Sequence[str]) -> None:
    """Fail before building a session when the installed onnxruntime lacks the provider."""
    if plan.required in available:
        return
    hint = {
        CUDA: "install onnxruntime-gpu in a fresh environment (`pip install embedrt[gpu]`; it replaces onnxruntime) on a machine with an NVIDIA GPU, CUDA 12 and cuDNN 9",
        TENSORRT: "install onnxruntime-gpu and TensorRT (the `tensorrt` package) on a machine with an NVIDIA GPU",
    }.get(plan.required, "")
    raise ProviderError(
        f"device={plan.device!r} needs {plan.required}, but this onnxruntime offers only {list(available)}; {hint}."
    )


def check_active(plan: ProviderPlan, active: Sequence[str]) -> None:
    """onnxruntime-gpu without a usable GPU lists CUDA, then silently runs on the CPU: refuse that."""
    if plan.required not in active:
        raise ProviderError(
            f"device={plan.device!r}: ONNX Runtime did not activate {plan.required} (active: {list(active)}). "
            "The GPU, its driver, CUDA or cuDNN libraries are missing or failed to load; see ONNX Runtime's log "
            "above. Use device='cpu' to run on the CPU on purpose."
        )
