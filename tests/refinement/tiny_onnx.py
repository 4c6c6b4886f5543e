"""Tiny ONNX classifiers written straight in protobuf wire format.

The `onnx` package would drag in protobuf 7 (which breaks dagster) and torch's exporter
needs it, so the few messages a stand-in needs are encoded here by hand:
input (n, H, W, C) -> ReduceMean over H, W -> MatMul (C, K) -> Softmax -> output (n, K).
Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint((field << 3) | 2) + _varint(len(data)) + data


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, 1) + _bytes(2, shape)  # elem_type FLOAT
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _node(op: str, inputs: list[str], outputs: list[str], attributes: bytes = b"") -> bytes:
    return (
        b"".join(_bytes(1, i) for i in inputs)
        + b"".join(_bytes(2, o) for o in outputs)
        + _bytes(3, f"{op}_{outputs[0]}")
        + _bytes(4, op)
        + attributes
    )


def tiny_classifier(path: Path, input_shape: tuple[int, int, int], classes: int, seed: int = 0) -> Path:
    """Write a random-weight (n, *input_shape) -> (n, classes) softmax classifier to `path`."""
    height, width, channels = input_shape
    weights = np.random.default_rng(seed).normal(0, 8, size=(channels, classes)).astype(np.float32)
    initializer = _int(1, channels) + _int(1, classes) + _int(2, 1) + _bytes(8, "W") + _bytes(9, weights.tobytes())
    axes = _bytes(1, "axes") + _int(20, 7) + _int(8, 1) + _int(8, 2)  # INTS [1, 2]
    keepdims = _bytes(1, "keepdims") + _int(20, 2) + _int(3, 0)  # INT 0
    graph = (
        _bytes(1, _node("ReduceMean", ["input"], ["pooled"], _bytes(5, axes) + _bytes(5, keepdims)))
        + _bytes(1, _node("MatMul", ["pooled", "W"], ["logits"]))
        + _bytes(1, _node("Softmax", ["logits"], ["output"]))
        + _bytes(2, "tiny")
        + _bytes(5, initializer)
        + _bytes(11, _value_info("input", ["n", height, width, channels]))
        + _bytes(12, _value_info("output", ["n", classes]))
    )
    model = _int(1, 7) + _bytes(2, "skyscript-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model)
    return path


# The shapes DeepFace's attribute graphs take and give (224x224 BGR; emotion: 48x48 gray).
DEEPFACE_STAND_INS = {
    "age_model_weights.onnx": ((224, 224, 3), 101),
    "gender_model_weights.onnx": ((224, 224, 3), 2),
    "facial_expression_model_weights.onnx": ((48, 48, 1), 7),
    "race_model_single_batch.onnx": ((224, 224, 3), 6),
}


def write_deepface_stand_ins(home: Path, only: tuple[str, ...] | None = None) -> Path:
    """Create tiny graphs at `$home/.deepface/weights/<name>.onnx`, where DeepFace looks."""
    weights = home / ".deepface" / "weights"
    for seed, (name, (shape, classes)) in enumerate(DEEPFACE_STAND_INS.items()):
        if only is None or name in only:
            tiny_classifier(weights / name, shape, classes, seed=seed)
    return weights
