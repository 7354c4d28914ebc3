"""Quantizers to ggml block layouts for the tensor types the engines support.

The gguf package quantizes F16, Q8_0 and Q4_0 but only dequantizes the K-quants, so Q4_K and Q6_K are
written here (numpy, vectorised over blocks). The layouts follow ggml exactly so that llama.cpp and the
C engine read the same bytes; `gguf.quants.dequantize` is the independent check used by the tests.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import quants as gq

QK_K = 256
SUPPORTED_TYPES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K")
BLOCK_SIZE = {"F32": 1, "F16": 1, "Q8_0": 32, "Q4_0": 32, "Q4_K": QK_K, "Q6_K": QK_K}


class QuantizeError(ValueError):
    """The tensor cannot be stored in the requested type (unknown type or a row not a multiple of the block)."""


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    return x.astype(np.float32).reshape(-1, size)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Q4_K: per 256 values d, dmin (f16), 8 six-bit scale/min pairs packed in 12 bytes, 128 bytes of nibbles."""
    rows = x.shape[0] if x.ndim > 1 else 1
    b = _blocks(x, QK_K).reshape(-1, 8, 32)
    n = b.shape[0]
    lo = np.minimum(b.min(axis=2), 0.0)                      # (n, 8), <= 0
    hi = np.maximum(b.max(axis=2), lo + 1e-12)
    sub_scale = (hi - lo) / 15.0
    sub_min = -lo                                            # >= 0
    d = sub_scale.max(axis=1) / 63.0
    dmin = sub_min.max(axis=1) / 63.0
    d16 = d.astype(np.float16)
    dmin16 = dmin.astype(np.float16)
    df = d16.astype(np.float32)[:, None]
    dmf = dmin16.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.rint(sub_scale / df), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmf > 0, np.rint(sub_min / dmf), 0).clip(0, 63).astype(np.uint8)
        step = (df * sc)[:, :, None]
        offs = (dmf * mn)[:, :, None]
        q = np.where(step > 0, np.rint((b + offs) / step), 0).clip(0, 15).astype(np.uint8)
    scales = np.zeros((n, 12), dtype=np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    # qs: for each 64-value chunk, 32 bytes: low nibble from the even sub-block, high nibble from the odd one
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(n, 128)
    out = np.concatenate([d16.view(np.uint8).reshape(n, 2), dmin16.view(np.uint8).reshape(n, 2), scales, qs], axis=1)
    return out.reshape(rows, -1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K: per 256 values 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, d (f16)."""
    rows = x.shape[0] if x.ndim > 1 else 1
    b = _blocks(x, QK_K).reshape(-1, 16, 16)
    n = b.shape[0]
    sub = np.abs(b).max(axis=2) / 31.0                       # (n, 16)
    d = sub.max(axis=1) / 127.0
    d16 = d.astype(np.float16)
    df = d16.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.rint(sub / df), 0).clip(-128, 127).astype(np.int8)
        step = (df * sc.astype(np.float32))[:, :, None]
        q = np.where(step != 0, np.rint(b / step), 0).clip(-32, 31).astype(np.int16) + 32
    q = q.astype(np.uint8).reshape(n, 2, 4, 32)              # half, quarter (l, l+32, l+64, l+96), l
    ql = np.empty((n, 2, 64), dtype=np.uint8)
    ql[:, :, 0:32] = (q[:, :, 0] & 0xF) | ((q[:, :, 2] & 0xF) << 4)
    ql[:, :, 32:64] = (q[:, :, 1] & 0xF) | ((q[:, :, 3] & 0xF) << 4)
    qh = ((q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) | ((q[:, :, 3] >> 4) << 6))
    out = np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64).astype(np.uint8), sc.view(np.uint8),
                          d16.view(np.uint8).reshape(n, 2)], axis=1)
    return out.reshape(rows, -1)


def quantize(x: np.ndarray, tensor_type: str) -> tuple[np.ndarray, QT]:
    """Bytes (or F32/F16 values) of a 2-D tensor in tensor_type, and the ggml type to declare in the GGUF."""
    if tensor_type not in SUPPORTED_TYPES:
        raise QuantizeError(f"unsupported tensor type {tensor_type!r}; choose one of {', '.join(SUPPORTED_TYPES)}")
    block = BLOCK_SIZE[tensor_type]
    if x.shape[-1] % block:
        raise QuantizeError(f"{tensor_type} needs rows that are a multiple of {block} values, got {x.shape[-1]}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if tensor_type == "F32":
        return x, QT.F32
    if tensor_type == "F16":
        return x.astype(np.float16), QT.F16
    if tensor_type == "Q4_K":
        return quantize_q4_k(x), QT.Q4_K
    if tensor_type == "Q6_K":
        return quantize_q6_k(x), QT.Q6_K
    qt = QT[tensor_type]
    return gq.quantize(x, qt), qt


def dequantize(data: np.ndarray, tensor_type: str) -> np.ndarray:
    """Float values of stored data (the gguf package's reference dequantizers)."""
    if tensor_type == "F32":
        return np.asarray(data, dtype=np.float32)
    if tensor_type == "F16":
        return np.asarray(data, dtype=np.float16).astype(np.float32)
    return gq.dequantize(data, QT[tensor_type])
