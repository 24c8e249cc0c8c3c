#!/usr/bin/env python3
"""Make the golden fixtures in tests/fixtures/golden/ with ONNX Runtime's Python API.

Two cases, each a model, an input and the output onnxruntime (CPU EP) computes for it:

1. nhwc_cnn: a small CNN built with onnx.helper in the shape tf2onnx emits for Keras
   models: NHWC input with a symbolic batch, Transpose to NCHW, Conv/Relu/MaxPool,
   Transpose back, a Shape->Gather->Unsqueeze->Concat->Reshape flatten, MatMul + Add,
   Softmax. Independent of edgebench's own ONNX writer.
2. lean32: edgebench's own `lean` model exported at 32x32x3 with seed 1 (only when the
   edgebench binary is given), so our writer's output is checked by an outside runtime.
   Only its input and expected output are committed (12 KiB): `cargo test` (tests/cli.rs,
   golden_fixtures_pass_on_both_engines) exports the model again with the binary under
   test, so a writer or lean-spec change that alters the model's numbers fails there.
   Regenerate this case only when such a change is meant.

Run:  PY=$(bash scripts/python-env.sh)
      cargo build
      $PY scripts/make-golden.py target/debug/edgebench
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "golden")


def nhwc_cnn():
    rng = np.random.default_rng(2024)

    def w(name, shape, fan_in):
        a = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
        return numpy_helper.from_array(a, name)

    def b(name, n):
        return numpy_helper.from_array(rng.uniform(-0.1, 0.1, size=n).astype(np.float32), name)

    inits = [
        w("conv1.w", (8, 3, 3, 3), 27), b("conv1.b", 8),
        w("conv2.w", (16, 8, 3, 3), 72), b("conv2.b", 16),
        w("dense.w", (256, 10), 256), b("dense.b", 10),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([256], np.int64), "flat_dim"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["x_nchw", "conv1.w", "conv1.b"], ["c1"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"],
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Transpose", ["r2"], ["r2_nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Shape", ["r2_nhwc"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0, name="gather_batch"),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze_batch"),
        helper.make_node("Concat", ["batch1", "flat_dim"], ["new_shape"], axis=0, name="concat_shape"),
        helper.make_node("Reshape", ["r2_nhwc", "new_shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "dense.w"], ["mm"], name="dense_matmul"),
        helper.make_node("Add", ["mm", "dense.b"], ["logits"], name="dense_bias"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "nhwc_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, 16, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="tf2onnx-style fixture",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "nhwc_cnn.onnx")
    onnx.save(model, path)
    x = rng.uniform(0.0, 1.0, size=(2, 16, 16, 3)).astype(np.float32)
    run_case("nhwc_cnn", path, x)


def lean32(edgebench):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lean32.onnx")
        subprocess.run([edgebench, "models", "export", "lean", "--input", "32x32x3",
                        "--seed", "1", "-o", path], check=True)
        onnx.checker.check_model(onnx.load(path))
        rng = np.random.default_rng(7)
        x = rng.uniform(0.0, 1.0, size=(1, 3, 32, 32)).astype(np.float32)
        run_case("lean32", path, x)


def run_case(name, path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(os.path.join(OUT, f"{name}.input.npy"), x)
    np.save(os.path.join(OUT, f"{name}.expected.npy"), y)
    print(f"{name}: input {x.shape} -> output {y.shape}, onnxruntime {ort.__version__}, "
          f"argmax {y.argmax(axis=-1).tolist()}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    nhwc_cnn()
    if len(sys.argv) > 1:
        lean32(sys.argv[1])
