"""NAME_encoder for --backend python (text and image): embedrt's ONNX Runtime backend on model.onnx, inside Triton.

The dynamic batcher hands over requests of equal shape; they run as one ONNX Runtime call.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from embedrt.runtime.onnx_backend import OnnxBackend


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        gpu = args.get("model_instance_kind") == "GPU"
        self.backend = OnnxBackend(
            here / "model.onnx",
            device="cuda" if gpu else "cpu",
            device_id=int(args.get("model_instance_device_id") or 0),
            max_batch_size=int(config["max_batch_size"]),
        )
        self.inputs = [i["name"] for i in config["input"]]

    def execute(self, requests):
        # Requests of one shape run together; a batch of mixed shapes (not produced by the batcher) runs per shape.
        groups = {}
        for n, request in enumerate(requests):
            arrays = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}
            key = tuple(a.shape[1:] for a in arrays.values())
            groups.setdefault(key, []).append((n, arrays, request.requested_output_names()))
        responses = [None] * len(requests)
        for members in groups.values():
            wanted = sorted({name for _, _, names in members for name in names}) or list(self.backend.output_names)
            feed = {name: np.concatenate([arrays[name] for _, arrays, _ in members]) for name in self.inputs}
            result = self.backend.run(feed, wanted)
            start = 0
            for n, arrays, names in members:
                size = len(next(iter(arrays.values())))
                tensors = [pb_utils.Tensor(name, result[name][start : start + size]) for name in (names or wanted)]
                responses[n] = pb_utils.InferenceResponse(output_tensors=tensors)
                start += size
        return responses
