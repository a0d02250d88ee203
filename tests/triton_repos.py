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
