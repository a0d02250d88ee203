"""Helpers of the Triton tests: free ports, config parsing with Triton's own protobuf, export dir variants."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from embedrt.manifest import MANIFEST_NAME


def free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def parse_config(path: Path):
    """config.pbtxt parsed by tritonclient's ModelConfig protobuf: what tritonserver itself would read."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def without_graph_pooling(export_dir: Path, out: Path) -> Path:
    """The same export, its manifest saying the graph has no pooling: the runtime (or Triton's pooling model) pools."""
    shutil.copytree(export_dir, out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["pooled_in_graph"] = False
    manifest["outputs"] = [o for o in manifest["outputs"] if o["name"] == "token_embeddings"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    return out


SLOW_MODEL = '''
import os, time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        open(os.environ["EMBEDRT_TEST_STARTED"], "a").close()  # the test knows a request is in flight
        time.sleep(float(os.environ["EMBEDRT_TEST_SLEEP_S"]))
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy() * 2)])
                for r in requests]
'''


def slow_model_repository(path: Path) -> Path:
    """A repository with one python model, `slow`: y = 2x after sleeping EMBEDRT_TEST_SLEEP_S seconds; it touches the file
    EMBEDRT_TEST_STARTED when a request starts (set both in the server's environment). Marked as a `triton build` output."""
    from embedrt.export.staging import MARKER_NAME

    (path / "slow" / "1").mkdir(parents=True)
    (path / "slow" / "1" / "model.py").write_text(SLOW_MODEL)
    (path / "slow" / "config.pbtxt").write_text(
        'name: "slow"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [{ name: "x", data_type: TYPE_FP32, dims: [ -1 ] }]\n'
        'output [{ name: "y", data_type: TYPE_FP32, dims: [ -1 ] }]\n'
        'instance_group [{ kind: KIND_CPU, count: 1 }]\n'
    )
    (path / MARKER_NAME).write_text('{"written_by": "embedrt", "kind": "triton", "files": []}')
    return path
