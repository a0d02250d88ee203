"""The text int8 recipe's layout: which FFN outputs stay blockwise (MatMulNBits) and which run on the u8 x s8 GEMM."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper

from embedrt.export import export_text
from embedrt.export.quantize import BLOCK_SIZE, WEIGHTS_7BIT
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.cpu import u8s8_exact
from tests.random_models import random_bert


@pytest.fixture(scope="module")
def tiny_bert(minilm_source, tmp_path_factory):
    return random_bert(tmp_path_factory.mktemp("tiny") / "bert", minilm_source, pooling="mean", normalize=True)


def _ffn_outputs(path):
    """{layer: op type} of each layer's FFN output projection in an export's graph."""
    found = {}
    for node in onnx.load(str(path / "model.onnx")).graph.node:
        for layer in (0, 1):
            if f"layer.{layer}/output/dense" in node.name and node.op_type in ("MatMulNBits", "MatMulInteger", "DynamicQuantizeMatMul"):
                found[layer] = (node.op_type, {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("block_size"))
    return found


def test_with_8bit_weights_only_the_first_layers_ffn_output_stays_blockwise(tiny_bert, tmp_path):
    if not u8s8_exact():
        pytest.skip("this CPU's u8 x s8 kernel saturates: its int8 exports take 7-bit weights (the next test)")
    out = export_text(tiny_bert, tmp_path / "int8", precision="int8")
    assert _ffn_outputs(out) == {0: ("MatMulNBits", BLOCK_SIZE), 1: ("MatMulInteger", None)}
    assert BLOCK_SIZE == 256
    assert read_manifest(out).optimizations[-1] == "int8:matmul_nbits_block256"


def test_with_7bit_weights_every_ffn_output_stays_blockwise(tiny_bert, tmp_path):
    """The recipe measured on a Zen 3 (AVX2, 7-bit weights) keeps all of them blockwise."""
    out = export_text(tiny_bert, tmp_path / "int8-7bit", precision="int8", int8_weights="7")
    assert _ffn_outputs(out) == {0: ("MatMulNBits", BLOCK_SIZE), 1: ("MatMulNBits", BLOCK_SIZE)}
    assert WEIGHTS_7BIT in read_manifest(out).optimizations
