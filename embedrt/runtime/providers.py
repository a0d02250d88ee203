"""Where a device name becomes ONNX Runtime execution providers, their options, and the check that they are active."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from embedrt.errors import ProviderError
from embedrt.manifest import Manifest

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
    batch = min(opt_batch, max_batch)
    if max_length is None:
        return profile_strings({n: ((1,), (batch,), (max_batch,)) for n in input_names})
    return profile_strings({n: ((1, 1), (batch, min(opt_length, max_length)), (max_batch, max_length)) for n in input_names})


def profile_dims(manifest: Manifest, *, max_batch: int | None = None, opt_batch: int = 8, opt_length: int = 128) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Per input, the (min, opt, max) shapes of one TensorRT optimisation profile, from the manifest's batch and length limits.

    One definition for the ONNX Runtime TensorRT EP (profile strings) and a standalone `.plan` build.
    """
    top = max_batch or manifest.max_batch_size
    batch = min(opt_batch, top)
    if manifest.image is not None:
        side = (3, manifest.image.crop, manifest.image.crop)
        return {n: ((1, *side), (batch, *side), (top, *side)) for n in manifest.input_names}
    assert manifest.text is not None
    longest = manifest.text.max_length
    return {n: ((1, 1), (batch, min(opt_length, longest)), (top, longest)) for n in manifest.input_names}


def profile_strings(dims: dict[str, tuple[tuple[int, ...], ...]]) -> tuple[str, str, str]:
    """profile_dims() as ONNX Runtime's "name:1x1,name:1x1" min, opt and max strings."""
    return tuple(",".join(f"{n}:{'x'.join(map(str, shapes[i]))}" for n, shapes in dims.items()) for i in range(3))  # type: ignore[return-value]


def tensorrt_options_for(manifest: Manifest, cache_dir: Path | None, *, fp16: bool = True, max_batch: int | None = None) -> TensorRTOptions:
    """TensorRT EP options for an export: FP16, an engine cache, and one profile covering every shape the runtime sends."""
    low, opt, high = profile_strings(profile_dims(manifest, max_batch=max_batch))
    return TensorRTOptions(fp16=fp16, cache_dir=cache_dir, min_shapes=low, opt_shapes=opt, max_shapes=high)


# Engines an export may be built for (manifest.provider) -> the devices that can run them.
_RUNS_ON = {"any": DEVICES, "cpu": ("cpu",), "cuda": ("cuda", "tensorrt"), "tensorrt": ("tensorrt",), "openvino": ("cpu",)}


def check_built_for(built_for: str, device: str, where: str) -> None:
    """Refuse an engine on a device it was not built for (fp16 on a CPU, CPU-only int8 ops on a GPU)."""
    if built_for not in _RUNS_ON:
        raise ProviderError(f"{where}: built for provider {built_for!r}, which this embedrt does not know ({', '.join(_RUNS_ON)}).")
    if device not in _RUNS_ON[built_for]:
        raise ProviderError(
            f"{where}: this engine was built for {built_for!r} and cannot run on device={device!r}; "
            f"load it with device={_RUNS_ON[built_for][0]!r}, or re-export it for {device!r} "
            f"(`embedrt optimize SOURCE_DIR --out DIR --precision ... --provider {device}`)."
        )


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
