"""NAME_pooling: token vectors + attention mask -> sentence vector, with embedrt's one pooling definition."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from embedrt.runtime.text.pooling import l2_normalize, pool


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"])["parameters"]
        self.mode = params["pooling"]["string_value"]
        self.normalize = params["normalize"]["string_value"] == "1"

    def execute(self, requests):
        responses = []
        for request in requests:
            hidden = pb_utils.get_input_tensor_by_name(request, "token_embeddings").as_numpy()
            mask = pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            vectors = pool(hidden, mask, self.mode)
            if self.normalize:
                vectors = l2_normalize(vectors)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("sentence_embedding", vectors.astype(np.float32))]))
        return responses
