"""NAME_preprocess: encoded image bytes (JPEG, PNG, ...) -> pixel_values, with embedrt's image preprocessing.

An image that cannot be decoded fails its own request, with the reason; the other requests of the batch go on.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from embedrt.errors import InputError
from embedrt.manifest import MANIFEST_NAME, Manifest
from embedrt.runtime.image.preprocess import check_preprocessing, load_pixels


class TritonPythonModel:
    def initialize(self, args):
        here = Path(args["model_repository"]) / args["model_version"]
        manifest = Manifest.from_dict(json.loads((here / MANIFEST_NAME).read_text()), where=str(here / MANIFEST_NAME))
        check_preprocessing(manifest.image, str(here / MANIFEST_NAME))
        self.prep = manifest.image

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().reshape(-1)
            try:
                pixels = np.stack([self._pixels(i, item) for i, item in enumerate(raw)])
            except InputError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("pixel_values", pixels)]))
        return responses

    def _pixels(self, index, item):
        try:
            return load_pixels(bytes(item), self.prep)
        except InputError as exc:
            raise InputError(f"image[{index}] <{len(item)} bytes>: {exc}") from None
