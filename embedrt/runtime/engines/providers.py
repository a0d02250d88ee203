"""Where a device name becomes ONNX Runtime execution providers, their options, and the check that they are active."""

from __future__ import annotations

import ctypes
import functools
import logging
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from embedrt.errors import ProviderError
from embedrt.manifest import Manifest

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

DEVICES = ("cpu", "cuda", "tensorrt")
_MAIN_PROVIDER = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}

# What onnxruntime-gpu 1.31 (the gpu extra) is built against; its cuda and cudnn extras bring CUDA and cuDNN as pip wheels.
GPU_LIBRARIES = "CUDA 13 and cuDNN 9"
GPU_INSTALL = "pip install 'embedrt[gpu]'"
# onnxruntime-gpu 1.31's TensorRT provider links TensorRT 10; `pip install tensorrt` now gives 11, which it cannot load.
TENSORRT_LIBRARY = "libnvinfer.so.10"
TENSORRT_INSTALL = "pip install 'tensorrt-cu13==10.*'"


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
    both = _cpu_build_over_gpu_build()
    if both is not None and plan.required in (CUDA, TENSORRT):
        hint = (f"both onnxruntime {both[0]} and onnxruntime-gpu {both[1]} are installed, and the CPU build, installed last, "
                f"holds the `onnxruntime` module; make the GPU build the one installed: "
                f"`pip install --force-reinstall --no-deps onnxruntime-gpu=={both[1]}`")
    elif plan.required == CUDA:
        hint = (f"install onnxruntime-gpu (`{GPU_INSTALL}`, then `pip install --force-reinstall --no-deps onnxruntime-gpu`: see docs/gpu.md) "
                f"on a machine with an NVIDIA GPU and its driver; onnxruntime-gpu 1.31 needs {GPU_LIBRARIES}, which the gpu extra installs")
    elif plan.required == TENSORRT:
        hint = f"install onnxruntime-gpu as for device='cuda' (docs/gpu.md) and TensorRT 10 (`{TENSORRT_INSTALL}`)"
    else:
        hint = ""
    raise ProviderError(
        f"device={plan.device!r} needs {plan.required}, but this onnxruntime offers only {list(available)}; {hint}."
    )


def _cpu_build_over_gpu_build() -> tuple[str, str] | None:
    """The versions of onnxruntime and onnxruntime-gpu when both distributions are installed (they share one module)."""
    try:
        return metadata.version("onnxruntime"), metadata.version("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def preload_gpu_libraries() -> None:
    """Load CUDA and cuDNN from the nvidia-* pip wheels before the first GPU session, so no LD_LIBRARY_PATH is needed.

    onnxruntime-gpu >= 1.21 has onnxruntime.preload_dlls(); an older one, or the CPU build, finds them on its own or not at all.
    """
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except OSError as exc:  # the session that follows says whether CUDA loaded after all (check_active)
            logging.getLogger("embedrt").warning("embedrt: onnxruntime.preload_dlls() failed (%s); relying on the system's library path", exc)


def tensorrt_library_loads() -> bool:
    """Whether TensorRT 10's runtime library, which onnxruntime-gpu 1.31's TensorRT provider links, can be loaded here."""
    try:
        ctypes.CDLL(TENSORRT_LIBRARY)
    except OSError:
        try:  # the tensorrt-cu13 wheels keep it in the tensorrt_libs package, which onnxruntime looks into as well
            import tensorrt_libs  # type: ignore[import-not-found]

            ctypes.CDLL(str(Path(tensorrt_libs.__file__).parent / TENSORRT_LIBRARY))
        except (ImportError, OSError):
            return False
    return True


def check_active(plan: ProviderPlan, active: Sequence[str]) -> None:
    """onnxruntime-gpu without a usable GPU lists CUDA, then silently runs on the CPU: refuse that."""
    if plan.required in active:
        return
    if plan.required == TENSORRT and not tensorrt_library_loads():
        raise ProviderError(
            f"device={plan.device!r}: ONNX Runtime did not activate {TENSORRT} (active: {list(active)}): its TensorRT provider "
            f"needs TensorRT 10's {TENSORRT_LIBRARY}, which cannot be loaded here (`pip install tensorrt` now gives TensorRT 11). "
            f"Install it with `{TENSORRT_INSTALL}`, or use device='cuda'."
        )
    raise ProviderError(
        f"device={plan.device!r}: ONNX Runtime did not activate {plan.required} (active: {list(active)}). "
        f"The GPU or its driver is missing, or {GPU_LIBRARIES} (what onnxruntime-gpu 1.31 needs) failed to load; see ONNX Runtime's log "
        f"above (`{GPU_INSTALL}` installs them). Use device='cpu' to run on the CPU on purpose."
    )
