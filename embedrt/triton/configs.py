"""The config.pbtxt of every model a repository holds, as data (rendered by embedrt.triton.pbtxt).

Names in a repository built with --name NAME:
  NAME            what clients call with raw inputs (text: an ensemble taking strings)
  NAME_tokenizer  python: strings -> token ids, padded per executed batch (see embedrt.triton.padding)
  NAME_preprocess python: encoded image bytes -> pixel_values (image models)
  NAME_encoder    the exported graph on the chosen backend; clients may send it token ids themselves
  NAME_pooling    python: token vectors -> sentence vector, only when the graph has no pooling
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embedrt.errors import EmbedrtError
from embedrt.manifest import Manifest, TensorSpec
from embedrt.triton.pbtxt import Enum, parameters, string_map

BACKENDS = ("python", "onnxruntime", "tensorrt")
TEXT_INPUT = "text"
IMAGE_INPUT = "image"
IMAGE_OUTPUT = "image_embedding"
PIXELS = "pixel_values"
TRUNCATED_OUTPUT = "truncated"
SENTENCE_OUTPUT = "sentence_embedding"
TOKEN_OUTPUT = "token_embeddings"
MASK = "attention_mask"

_TYPES = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "bool": "TYPE_BOOL"}


@dataclass(frozen=True)
class ServingOptions:
    """How Triton schedules a model: the knobs of `embedrt triton build`."""

    backend: str = "python"
    instance_count: int = 1
    gpu: bool | None = None  # None: GPU for the native onnxruntime / tensorrt backends, CPU for python
    max_batch_size: int | None = None  # None: the manifest's
    max_queue_delay_us: int = 2000
    tensorrt_accelerator: bool = False  # onnxruntime backend: run through its TensorRT execution accelerator
    fp16: bool = True  # TensorRT accelerator precision
    trt_cache_dir: str = "/tmp/embedrt-trt-cache"
    pad_multiple: int = 16  # token ids are padded to a multiple of this, so requests of nearby lengths share a shape
    spinning: bool = False  # python encoder: ONNX Runtime threads spin between runs (faster alone, slower on a shared CPU)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise EmbedrtError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}.")
        if self.instance_count < 1 or self.max_queue_delay_us < 0 or self.pad_multiple < 1:
            raise EmbedrtError("instance count and pad multiple must be >= 1 and the queue delay >= 0.")
        if self.tensorrt_accelerator and self.backend != "onnxruntime":
            raise EmbedrtError("the TensorRT accelerator is an option of --backend onnxruntime only.")

    @property
    def on_gpu(self) -> bool:
        return self.gpu if self.gpu is not None else self.backend != "python"

    def batch_size(self, manifest: Manifest) -> int:
        return self.max_batch_size or manifest.max_batch_size


def data_type(dtype: str) -> Enum:
    try:
        return Enum(_TYPES[dtype])
    except KeyError:
        raise EmbedrtError(f"dtype {dtype!r} has no Triton type here (known: {', '.join(_TYPES)}).") from None


def tensor(spec: TensorSpec, *, batched: bool = True) -> dict[str, Any]:
    """A config input/output: the batch axis is Triton's (max_batch_size > 0) unless not `batched`; symbolic axes are -1."""
    dims = [d if isinstance(d, int) else -1 for d in (spec.shape[1:] if batched else spec.shape)]
    return {"name": spec.name, "data_type": data_type(spec.dtype), "dims": dims}


def _instance_group(options: ServingOptions, gpu: bool) -> list[dict[str, Any]]:
    return [{"count": options.instance_count, "kind": Enum("KIND_GPU" if gpu else "KIND_CPU")}]


def _dynamic_batching(options: ServingOptions, max_batch: int) -> dict[str, Any]:
    preferred = [b for b in (8, 16, 32, 64) if b <= max_batch]
    return {"preferred_batch_size": preferred, "max_queue_delay_microseconds": options.max_queue_delay_us}


def encoder_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    max_batch = options.batch_size(manifest)
    # Feature rows: an id list's flat ids and offsets cannot be merged along axis 0, so the client sends whole batches.
    batched = manifest.modality != "features"
    config: dict[str, Any] = {"name": name, "max_batch_size": max_batch if batched else 0}
    if options.backend == "python":
        config["backend"] = "python"
    elif options.backend == "onnxruntime":
        config["platform"] = "onnxruntime_onnx"
        config["default_model_filename"] = "model.onnx"
    else:
        config["platform"] = "tensorrt_plan"
        config["default_model_filename"] = "model.plan"
    config["input"] = [tensor(t, batched=batched) for t in manifest.inputs]
    if options.backend == "python" and manifest.text is not None:
        for item in config["input"]:  # any lengths merge; the python encoder re-batches rows by length (ragged batching)
            item["allow_ragged_batch"] = True
    config["output"] = [tensor(t, batched=batched) for t in manifest.outputs]
    config["instance_group"] = _instance_group(options, options.on_gpu)
    if batched:
        config["dynamic_batching"] = _dynamic_batching(options, max_batch)
    if options.tensorrt_accelerator:
        config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [_tensorrt_accelerator(manifest, options, max_batch)]}}
    # What a client needs to pad token ids the way the tokenizer model does (embedrt.triton.backend reads them).
    extra = {"embedrt_modality": manifest.modality, "embedrt_model_sha256": manifest.model_file.get("sha256", "")}
    if options.backend == "python":
        extra["ort_allow_spinning"] = int(options.spinning)
    if not batched:
        extra["embedrt_max_batch_rows"] = max_batch
    if manifest.text is not None:
        extra.update(embedrt_pad_multiple=options.pad_multiple, embedrt_pad_token_id=manifest.text.pad_token_id, embedrt_max_length=manifest.text.max_length)
    config["parameters"] = parameters(extra)
    return config


def _tensorrt_accelerator(manifest: Manifest, options: ServingOptions, max_batch: int) -> dict[str, Any]:
    from embedrt.runtime.engines.providers import profile_shapes

    max_length = manifest.text.max_length if manifest.text is not None else None
    low, opt, high = profile_shapes(manifest.input_names, max_batch, max_length)
    if manifest.image is not None:  # (batch, 3, crop, crop)
        side = manifest.image.crop
        low, opt, high = (",".join(f"{n}:{b}x3x{side}x{side}" for n in manifest.input_names) for b in (1, min(8, max_batch), max_batch))
    values = {
        "precision_mode": "FP16" if options.fp16 else "FP32",
        "max_workspace_size_bytes": str(4 << 30),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": options.trt_cache_dir,
        "trt_profile_min_shapes": low,
        "trt_profile_opt_shapes": opt,
        "trt_profile_max_shapes": high,
    }
    return {"name": "tensorrt", "parameters": string_map(values)}


def _python_model(name: str, manifest: Manifest, options: ServingOptions, inputs: list, outputs: list, params: dict | None = None) -> dict[str, Any]:
    """A python-backend model of the repository (tokenizer, pooling, image preprocess): CPU instances, dynamic batching."""
    max_batch = options.batch_size(manifest)
    config = {
        "name": name,
        "backend": "python",
        "max_batch_size": max_batch,
        "input": inputs,
        "output": outputs,
        "instance_group": _instance_group(options, False),
        "dynamic_batching": _dynamic_batching(options, max_batch),
    }
    if params:
        config["parameters"] = parameters(params)
    return config


def tokenizer_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    outputs = [tensor(t) for t in manifest.inputs]
    if MASK not in manifest.input_names:  # the pooling model needs it even when the graph does not take it
        outputs.append({"name": MASK, "data_type": Enum("TYPE_INT64"), "dims": [-1]})
    outputs.append({"name": TRUNCATED_OUTPUT, "data_type": Enum("TYPE_BOOL"), "dims": [1]})
    # the encoder merges any lengths (ragged) on the python backend; native backends need one shape per batch
    params = {"pad_multiple": options.pad_multiple, "pad_together": int(options.backend != "python")}
    return _python_model(name, manifest, options, [{"name": TEXT_INPUT, "data_type": Enum("TYPE_STRING"), "dims": [1]}], outputs, params)


def pooling_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    inputs = [
        {"name": TOKEN_OUTPUT, "data_type": Enum("TYPE_FP32"), "dims": [-1, manifest.dim]},
        {"name": MASK, "data_type": Enum("TYPE_INT64"), "dims": [-1]},
    ]
    outputs = [{"name": SENTENCE_OUTPUT, "data_type": Enum("TYPE_FP32"), "dims": [manifest.dim]}]
    return _python_model(name, manifest, options, inputs, outputs, {"pooling": manifest.pooling, "normalize": int(manifest.normalize)})


def text_ensemble_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    """strings -> NAME_tokenizer -> NAME_encoder (-> NAME_pooling) -> sentence_embedding, truncated."""
    ids = {n: n for n in manifest.input_names}
    steps = [
        {
            "model_name": f"{name}_tokenizer",
            "model_version": -1,
            "input_map": string_map({TEXT_INPUT: TEXT_INPUT}),
            "output_map": string_map({**ids, **({MASK: MASK} if not manifest.pooled_in_graph else {}), TRUNCATED_OUTPUT: TRUNCATED_OUTPUT}),
        }
    ]
    if manifest.pooled_in_graph:
        steps.append({"model_name": f"{name}_encoder", "model_version": -1, "input_map": string_map(ids), "output_map": string_map({SENTENCE_OUTPUT: SENTENCE_OUTPUT})})
    else:
        steps.append({"model_name": f"{name}_encoder", "model_version": -1, "input_map": string_map(ids), "output_map": string_map({TOKEN_OUTPUT: TOKEN_OUTPUT})})
        steps.append({
            "model_name": f"{name}_pooling",
            "model_version": -1,
            "input_map": string_map({TOKEN_OUTPUT: TOKEN_OUTPUT, MASK: MASK}),
            "output_map": string_map({SENTENCE_OUTPUT: SENTENCE_OUTPUT}),
        })
    return {
        "name": name,
        "platform": "ensemble",
        "max_batch_size": options.batch_size(manifest),
        "input": [{"name": TEXT_INPUT, "data_type": Enum("TYPE_STRING"), "dims": [1]}],
        "output": [
            {"name": SENTENCE_OUTPUT, "data_type": Enum("TYPE_FP32"), "dims": [manifest.dim]},
            {"name": TRUNCATED_OUTPUT, "data_type": Enum("TYPE_BOOL"), "dims": [1]},
        ],
        "ensemble_scheduling": {"step": steps},
    }


def image_preprocess_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    inputs = [{"name": IMAGE_INPUT, "data_type": Enum("TYPE_STRING"), "dims": [1]}]
    return _python_model(name, manifest, options, inputs, [tensor(t) for t in manifest.inputs])


def image_ensemble_config(name: str, manifest: Manifest, options: ServingOptions) -> dict[str, Any]:
    """encoded image bytes -> NAME_preprocess -> NAME_encoder -> image_embedding."""
    pixels = string_map({n: n for n in manifest.input_names})
    outputs = string_map({n: n for n in manifest.output_names})
    return {
        "name": name,
        "platform": "ensemble",
        "max_batch_size": options.batch_size(manifest),
        "input": [{"name": IMAGE_INPUT, "data_type": Enum("TYPE_STRING"), "dims": [1]}],
        "output": [tensor(t) for t in manifest.outputs],
        "ensemble_scheduling": {"step": [
            {"model_name": f"{name}_preprocess", "model_version": -1, "input_map": string_map({IMAGE_INPUT: IMAGE_INPUT}), "output_map": pixels},
            {"model_name": f"{name}_encoder", "model_version": -1, "input_map": pixels, "output_map": outputs},
        ]},
    }
