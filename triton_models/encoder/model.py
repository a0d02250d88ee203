"""NAME_encoder for --backend python (text and image): embedrt's ONNX Runtime backend on model.onnx, inside Triton.

Text inputs are ragged-batched (allow_ragged_batch): the dynamic batcher merges requests of any
length, and here their rows are re-batched the way TextEmbedder does it, length-sorted under a
token budget (embedrt.runtime.batching), so one long request does not pad every short one.
Rows must be right-padded (attention mask 1...1 0...0), as embedrt's tokenizers pad them.
Fixed-shape inputs (images) run as one concatenated batch.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from embedrt.runtime.batching import DEFAULT_MAX_BATCH_TOKENS, plan_batches
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.runtime.text.tokenization import Encoded, pad_batch


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        gpu = args.get("model_instance_kind") == "GPU"
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # spinning threads would take the CPU the tokenizer, the server and the clients need between runs
        spinning = params.get("ort_allow_spinning", "0") == "1"
        self.backend = OnnxBackend(
            here / "model.onnx",
            device="cuda" if gpu else "cpu",
            device_id=int(args.get("model_instance_device_id") or 0),
            max_batch_size=int(config["max_batch_size"]),
            session={"spinning": spinning},
        )
        self.inputs = [i["name"] for i in config["input"]]
        self.pad_token_id = int(params.get("embedrt_pad_token_id", 0))
        self.max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS["cuda" if gpu else "cpu"]
        self.unbatched = int(config["max_batch_size"]) == 0
        self.ragged = "attention_mask" in self.inputs and any(i.get("allow_ragged_batch") for i in config["input"])

    def execute(self, requests):
        arrays = [{name: pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs} for r in requests]
        wanted = [list(r.requested_output_names()) or list(self.backend.output_names) for r in requests]
        outputs = self._run_tokens(arrays, wanted) if self.ragged else self._run_fixed(arrays, wanted)
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, a) for n, a in out.items()]) for out in outputs]

    def _run_fixed(self, arrays, wanted):
        if self.unbatched:  # feature rows: each request is a whole batch (an id list's offsets are its own)
            return [self.backend.run(a, w) for a, w in zip(arrays, wanted)]
        names = sorted({n for w in wanted for n in w})
        result = self.backend.run({n: np.concatenate([a[n] for a in arrays]) for n in self.inputs}, names)
        bounds = np.cumsum([0] + [len(a[self.inputs[0]]) for a in arrays])
        return [{n: result[n][bounds[k] : bounds[k + 1]] for n in w} for k, w in enumerate(wanted)]

    def _run_tokens(self, arrays, wanted):
        """Every row of every request, re-batched by length under the token budget, then returned to its request."""
        ids, type_ids = [], []
        for a in arrays:
            for row, n in enumerate(a["attention_mask"].sum(axis=1)):
                ids.append(a["input_ids"][row, :n])
                type_ids.append(a["token_type_ids"][row, :n] if "token_type_ids" in a else np.zeros(n, np.int64))
        encoded = Encoded(ids=ids, type_ids=type_ids, offsets=[], truncated=[])
        names = sorted({n for w in wanted for n in w})
        per_row = {n: [None] * len(ids) for n in names}  # token vectors are cut to each row's length
        batches = plan_batches(encoded.lengths, max_batch_tokens=self.max_batch_tokens, max_batch_size=self.backend.max_batch_size)
        for idx in batches:
            result = self.backend.run(pad_batch(encoded, idx, self.inputs, self.pad_token_id), names)
            for j, i in enumerate(idx):
                for n in names:
                    per_row[n][i] = result[n][j, : len(ids[i])] if result[n].ndim == 3 else result[n][j]
        outputs, start = [], 0
        for a, w in zip(arrays, wanted):
            count, length = a["input_ids"].shape
            out = {}
            for n in w:
                rows = per_row[n][start : start + count]
                if rows and rows[0].ndim == 2:  # (len_i, hidden) -> (count, length, hidden), zero beyond each row's length
                    stacked = np.zeros((count, length, rows[0].shape[1]), np.float32)
                    for r, vectors in enumerate(rows):
                        stacked[r, : len(vectors)] = vectors
                    out[n] = stacked
                else:
                    out[n] = np.stack(rows).astype(np.float32, copy=False)
            outputs.append(out)
            start += count
        return outputs
