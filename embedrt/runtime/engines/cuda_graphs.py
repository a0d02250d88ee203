"""CUDA graphs for batch-1 text calls: one captured graph per padded length bucket, replayed by copy-in / replay / copy-out.

One short query on a GPU is launch-bound (a few hundred kernel launches for a few microseconds of work each); ONNX
Runtime's CUDA provider (`enable_cuda_graph`) captures a run's launches once and replays them as one. A graph has
fixed shapes and fixed device addresses, so a batch of one text is padded with masked tokens to a bucket length
(16, 32, 64, ... up to the model's max_length), each bucket has its own inputs and outputs bound on the GPU and its own
graph (run option `gpu_graph_id`, onnxruntime >= 1.18), and the padding is exact up to rounding: the attention mask
keeps padded tokens out of attention and out of pooling.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

import numpy as np
import onnxruntime as ort

from embedrt.errors import ProviderError

SMALLEST_BUCKET = 16
OFF_HINT = "pass cuda_graphs=False (TextEmbedder, embedrt.load) to run batch-1 calls on the plain session"
# ORT's run config key that tells a session's graphs apart; 0 is reserved by ORT, -1 turns capture off for a run.
GRAPH_ID = "gpu_graph_id"
_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(float16)": np.float16}


def buckets(max_length: int) -> list[int]:
    """The padded lengths graphs are captured for: powers of two from 16, and max_length itself as the last."""
    if max_length < 1:
        raise ValueError(f"max_length={max_length}: must be at least 1")
    sizes, size = [], SMALLEST_BUCKET
    while size < max_length:
        sizes.append(size)
        size *= 2
    return [*sizes, max_length]


def bucket_for(length: int, max_length: int) -> int:
    """The smallest bucket that holds `length` tokens."""
    if not 1 <= length <= max_length:
        raise ValueError(f"a sequence of {length} tokens does not fit the buckets of max_length={max_length}")
    return next(b for b in buckets(max_length) if b >= length)


def check_cuda_graphs(cuda_graphs: bool | None, device: str, max_length: int | None) -> bool:
    """Whether an engine on `device` uses CUDA graphs: None (the default) means on for device="cuda" with a known max_length."""
    if cuda_graphs not in (None, True, False):
        raise ProviderError(f"cuda_graphs={cuda_graphs!r}: must be True, False or None (on for device='cuda').")
    if cuda_graphs is None:
        return device == "cuda" and max_length is not None
    if cuda_graphs and device != "cuda":
        raise ProviderError(f"cuda_graphs=True needs device='cuda' (ONNX Runtime's CUDA provider), not device={device!r}; drop the option.")
    if cuda_graphs and max_length is None:
        raise ProviderError("cuda_graphs=True needs the model's max_length (an export dir's manifest) to choose its length buckets.")
    return bool(cuda_graphs)


def graph_providers(providers: Sequence[Any]) -> list[Any]:
    """A CUDA provider list (providers.plan_providers) with graph capture turned on for the CUDA provider."""
    out = []
    for p in providers:
        if isinstance(p, tuple) and p[0] == "CUDAExecutionProvider":
            p = (p[0], {**p[1], "enable_cuda_graph": "1"})
        out.append(p)
    return out


class CudaGraphs:
    """Batch-1 runs of `session` on fixed per-bucket buffers on `device_type` (ONNX Runtime OrtValues), one graph id each.

    `session` is an InferenceSession made with enable_cuda_graph (cuda_graphs_for); on device_type="cpu" the same
    padding and binding run on a plain session, which is what the CPU tests check. Replays are serialised by a lock:
    ONNX Runtime's graph replay on one session is not thread-safe, and each bucket's buffers are shared.
    """

    def __init__(self, session: ort.InferenceSession, max_length: int, *, device_type: str = "cuda", device_id: int = 0) -> None:
        why = unsupported(session)
        if why is not None:
            raise ProviderError(f"CUDA graphs: {why}; {OFF_HINT}.")
        self.session = session
        self.max_length = max_length
        self.device_type = device_type
        self.device_id = device_id
        self._inputs = {i.name: _dtype(i.type, i.name) for i in session.get_inputs()}
        self._outputs = {o.name: (_dtype(o.type, o.name), tuple(o.shape)) for o in session.get_outputs()}
        self._bound: dict[int, tuple[Any, dict[str, Any], dict[str, Any], ort.RunOptions]] = {}
        self._lock = threading.Lock()

    def takes(self, inputs: dict[str, np.ndarray]) -> bool:
        """Whether a call is one this class runs: exactly one sequence, every model input given as (1, length)."""
        mask = inputs.get("attention_mask")
        return mask is not None and mask.ndim == 2 and mask.shape[0] == 1 and 1 <= mask.shape[1] <= self.max_length and all(
            name in inputs and inputs[name].shape == mask.shape for name in self._inputs
        )

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        """The outputs of one sequence, padded to its bucket and replayed; sequence axes cut back to its length."""
        length = int(inputs["attention_mask"].shape[1])
        size = bucket_for(length, self.max_length)
        with self._lock:
            binding, ins, outs, options = self._bound.get(size) or self._bind(size)
            for name, value in ins.items():
                padded = np.zeros((1, size), dtype=self._inputs[name])
                padded[:, :length] = inputs[name]  # zeros after: masked tokens, which neither attention nor pooling sees
                value.update_inplace(padded)
            try:
                binding.synchronize_inputs()  # the copies in are done before the replay reads them (another stream)
                self.session.run_with_iobinding(binding, options)
                binding.synchronize_outputs()
            except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
                raise ProviderError(f"the CUDA graph for {size}-token inputs failed to capture or replay ({exc}); {OFF_HINT}.") from exc
            # A copy made under the lock: a CPU OrtValue's numpy() is a view of the buffer the next call overwrites.
            result = {name: np.array(outs[name].numpy()) for name in output_names}
        return {name: _cut(value, length, size) for name, value in result.items()}

    def _bind(self, size: int) -> tuple[Any, dict[str, Any], dict[str, Any], ort.RunOptions]:
        """A bucket's device buffers, bound once: a captured graph replays on exactly these addresses."""
        make = ort.OrtValue.ortvalue_from_shape_and_type
        ins = {name: make([1, size], dtype, self.device_type, self.device_id) for name, dtype in self._inputs.items()}
        outs = {name: make(list(_concrete(shape, size)), dtype, self.device_type, self.device_id) for name, (dtype, shape) in self._outputs.items()}
        binding = self.session.io_binding()
        for name, value in ins.items():
            binding.bind_ortvalue_input(name, value)
        for name, value in outs.items():
            binding.bind_ortvalue_output(name, value)
        options = ort.RunOptions()
        options.add_run_config_entry(GRAPH_ID, str(len(self._bound) + 1))
        self._bound[size] = (binding, ins, outs, options)
        return self._bound[size]

    def capture(self, sizes: Sequence[int] | None = None) -> None:
        """Capture every bucket's graph now (ORT: one regular run, then the capture), and check a replay on new inputs.

        Run while no other thread uses the GPU: a capture in progress breaks other streams' synchronising calls.
        """
        for size in sizes or buckets(self.max_length):
            first = _probe_inputs(self._inputs, size, 1)
            names = list(self._outputs)
            want = self.run(first, names)
            self.run(_probe_inputs(self._inputs, size, 2), names)
            got = self.run(first, names)  # a replay after other inputs: it must read the new ones
            for name in names:
                if not np.allclose(got[name].astype(np.float32), want[name].astype(np.float32), rtol=1e-3, atol=1e-3):
                    raise ProviderError(f"the CUDA graph for {size}-token inputs replays other values than the run it captured ({name}); {OFF_HINT}.")


def cuda_graphs_for(cuda_graphs: bool | None, device: str, model_path: str, plain: ort.InferenceSession, providers: Sequence[Any],
                    make_options: Callable[[], ort.SessionOptions], max_length: int | None, device_id: int = 0) -> CudaGraphs | None:
    """An engine's CUDA graphs, or None: asked for (True) they work or raise; by default (None, device="cuda") they are
    used where the model can have them (a text model whose every node runs on CUDA), and a warning says why not elsewhere."""
    if not check_cuda_graphs(cuda_graphs, device, max_length):
        return None
    assert max_length is not None
    why = unsupported(plain)
    if why is None:
        try:
            session = ort.InferenceSession(model_path, sess_options=make_options(), providers=graph_providers(providers))
        except Exception as exc:  # e.g. "all compute graph nodes have not been partitioned to the CUDA EP"
            why = f"ONNX Runtime cannot capture this model ({exc})"
    if why is not None:
        if cuda_graphs:
            raise ProviderError(f"cuda_graphs=True: {why}; {OFF_HINT}.")
        logging.getLogger("embedrt").warning("embedrt: batch-1 calls run without CUDA graphs: %s. cuda_graphs=False silences this.", why)
        return None
    graphs = CudaGraphs(session, max_length, device_id=device_id)
    graphs.capture()  # at load, before other threads use the GPU: a capture breaks other streams' synchronising calls
    return graphs


def unsupported(session: ort.InferenceSession) -> str | None:
    """Why a model cannot have these graphs (no attention mask to pad with, a type embedrt does not bind), or None."""
    names = [i.name for i in session.get_inputs()]
    if "attention_mask" not in names:
        return f"they pad with masked tokens, and this model has no attention_mask input ({names})"
    for arg in [*session.get_inputs(), *session.get_outputs()]:
        if arg.type not in _DTYPES:
            return f"{arg.name} is a {arg.type}, which embedrt does not bind"
    return None


def _dtype(ort_type: str, name: str) -> Any:
    if ort_type not in _DTYPES:
        raise ProviderError(f"CUDA graphs: {name} is a {ort_type}, which embedrt does not bind; {OFF_HINT}.")
    return _DTYPES[ort_type]


def _concrete(shape: tuple, size: int) -> tuple[int, ...]:
    """An output's shape for one sequence of `size` tokens: the batch axis 1, the other symbolic axes the sequence."""
    return tuple(1 if axis == 0 else (dim if isinstance(dim, int) else size) for axis, dim in enumerate(shape))


def _cut(value: np.ndarray, length: int, size: int) -> np.ndarray:
    """Token outputs (1, size, ...) back to the sequence's own length; pooled ones as they are."""
    return value[:, :length] if value.ndim >= 3 and value.shape[1] == size else value


def _probe_inputs(dtypes: dict[str, Any], size: int, seed: int) -> dict[str, np.ndarray]:
    """Valid token ids for any BERT-like vocabulary (under 100), a full mask, zero token types."""
    ids = (np.arange(size) * seed) % 97 + 1
    values = {name: np.zeros((1, size), dtype=dtype) for name, dtype in dtypes.items()}
    values["attention_mask"][:] = 1
    if "input_ids" in values:
        values["input_ids"][0] = ids
    return values
