"""Precision: the autocast dtype that ``--amp`` asks for on a device, and its name."""

from __future__ import annotations

import torch


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, None for full precision.

    CUDA: ``auto`` is bf16 where supported, else fp16. CPU: bf16 only when asked for (``bf16``:
    oneDNN's bf16 kernels, faster on a CPU with AVX512-BF16 or AMX, see
    :func:`cpu_has_native_bf16` and docs/benchmarks.md, "CPU precision"); ``auto`` and ``fp16``
    are full precision there.
    """
    if amp == "none" or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cpu":
        return torch.bfloat16 if amp == "bf16" else None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def precision_name(amp: str, device: torch.device) -> str:
    """What a forward pass computes in with ``--amp amp`` on ``device``: fp32, bf16 or fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype(amp, device)]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where ``--amp bf16`` is
    faster than full precision; elsewhere it is emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
