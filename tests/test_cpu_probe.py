"""The int8 kernel probe (embedrt.runtime.engines.cpu): its graph, written without the onnx package, is the one onnx builds."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from embedrt.runtime.engines.cpu import probe_model


def test_the_probe_model_is_byte_for_byte_the_graph_onnx_helper_builds():
    m, k, n = 3, 70, 5  # a K over 127 would need two varint bytes: 70 x 5 = 350 raw bytes does
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "embedrt_u8s8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(np.full((k, n), 127, dtype=np.int8), "b")],
    )
    expected = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    expected.ir_version = 8
    ours = probe_model(m, k, n)
    onnx.checker.check_model(onnx.load_model_from_string(ours))
    assert ours == expected.SerializeToString()


def test_the_probe_model_multiplies_small_values_exactly():
    # 1 x 127 summed over K never saturates an int16 pair, on any CPU: the graph computes what it says
    session = ort.InferenceSession(probe_model(2, 64, 4), providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": np.ones((2, 64), dtype=np.uint8)})[0]
    assert got.dtype == np.int32 and got.shape == (2, 4)
    assert (got == 64 * 127).all()
