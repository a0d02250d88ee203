"""The fp16 graph is valid ONNX whatever onnxruntime's float16 converter does: unique node names, one producer per tensor, sorted."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from embedrt.errors import ExportError
from embedrt.export.fp16 import convert_fp16, share_duplicate_nodes


def _graph_as_1_31_converts_it() -> onnx.ModelProto:
    """x -> Relu -> y, read by two Adds through one Cast each: onnxruntime 1.31 emits both Casts with one name and
    one output, appended after their consumers (the graph the converter made of all-MiniLM-L6-v2's pooling)."""
    cast = lambda: helper.make_node("Cast", ["y"], ["y_fp32"], name="y_cast_to_fp32_node", to=TensorProto.FLOAT)  # noqa: E731
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
        helper.make_node("Add", ["y_fp32", "one"], ["a"], name="add_a"),
        helper.make_node("Add", ["y_fp32", "one"], ["b"], name="add_b"),
        cast(),
        cast(),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # what onnxruntime 1.31 and 1.32 load


def test_duplicate_casts_are_shared_and_the_graph_sorted_so_onnx_and_onnxruntime_accept_it(tmp_path):
    model = _graph_as_1_31_converts_it()
    assert share_duplicate_nodes(model, tmp_path / "m.onnx") == 1
    assert [n.name for n in model.graph.node] == ["relu", "y_cast_to_fp32_node", "add_a", "add_b"]
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    a, b = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": np.array([-1, 2], np.float16)})
    assert a.tolist() == b.tolist() == [1.0, 3.0]


def test_same_named_nodes_that_differ_get_unique_names(tmp_path):
    model = _graph_as_1_31_converts_it()
    model.graph.node[2].name = "add_a"  # two different Adds of one name
    share_duplicate_nodes(model, tmp_path / "m.onnx")
    assert sorted(n.name for n in model.graph.node) == ["add_a_1", "add_a_2", "relu", "y_cast_to_fp32_node"]


def test_different_nodes_writing_one_tensor_are_refused_naming_it(tmp_path):
    model = _graph_as_1_31_converts_it()
    model.graph.node[4].attribute[0].i = TensorProto.DOUBLE  # same output name, another cast
    with pytest.raises(ExportError, match=r"m\.onnx: .*same tensor \['y_fp32'\]"):
        share_duplicate_nodes(model, tmp_path / "m.onnx")


def test_the_installed_converter_on_a_real_export_leaves_unique_names_and_a_valid_graph(minilm_dir, tmp_path):
    out = tmp_path / "fp16.onnx"
    convert_fp16(minilm_dir / "model.onnx", out, token_output="token_embeddings")
    model = onnx.load(str(out))
    names = Counter(n.name for n in model.graph.node)
    outputs = Counter(o for n in model.graph.node for o in n.output)
    assert max(names.values()) == 1 and max(outputs.values()) == 1
    onnx.checker.check_model(str(out))
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
