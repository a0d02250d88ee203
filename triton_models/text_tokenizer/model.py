"""NAME_tokenizer: strings -> token ids, with embedrt's tokenizer set up from the export's manifest.

Each request is padded to its longest text, rounded up to `pad_multiple`. With `pad_together`
(encoders without ragged batching: Triton's native onnxruntime and tensorrt backends, whose
dynamic batcher only merges requests of equal shape), every request of one executed batch is
padded to the same length instead, so that the encoder can merge them.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from embedrt.manifest import MANIFEST_NAME, Manifest
from embedrt.runtime.text.tokenization import encode, load_tokenizer, pad_batch
from embedrt.triton.padding import padded_length


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        manifest = Manifest.from_dict(json.loads((here / MANIFEST_NAME).read_text()), where=str(here / MANIFEST_NAME))
        self.text = manifest.text
        self.tokenizer = load_tokenizer(here, manifest.text)
        self.pad_multiple = int(config["parameters"]["pad_multiple"]["string_value"])
        self.pad_together = config["parameters"]["pad_together"]["string_value"] == "1"
        self.outputs = [o["name"] for o in config["output"] if o["name"] != "truncated"]

    def execute(self, requests):
        texts, counts = [], []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
            texts.extend(t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in raw)
            counts.append(len(raw))
        encoded = encode(self.tokenizer, texts)
        lengths = encoded.lengths
        longest = int(lengths.max()) if texts else 1
        truncated = np.zeros((len(texts), 1), dtype=bool)
        truncated[encoded.truncated] = True
        responses, start = [], 0
        for count in counts:
            rows = np.arange(start, start + count)
            own = int(lengths[rows].max()) if count else 1
            length = padded_length(longest if self.pad_together else own, self.pad_multiple, self.text.max_length)
            batch = pad_batch(encoded, rows, self.outputs, self.text.pad_token_id, length)
            tensors = [pb_utils.Tensor(name, batch[name]) for name in self.outputs]
            tensors.append(pb_utils.Tensor("truncated", truncated[rows]))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += count
        return responses
