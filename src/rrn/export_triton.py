"""A Triton Inference Server model repository for the per-frame step (``rrn export --format
triton``).

Layout of ``REPO``::

    REPO/<name>/config.pbtxt      sequence batching with implicit state
    REPO/<name>/1/model.onnx      the step: (frame, state_in_j...) -> (logits, state_out_j...)
    REPO/<name>/labels.txt        class names (the classification extension)
    REPO/README.md                preprocessing, how to run, how to scale
    REPO/client_example.py        tritonclient: a video's sampled frames as one sequence

Triton keeps each sequence's state itself (``sequence_batching.state``): a client sends only
the preprocessed frame with ``sequence_id`` / ``sequence_start`` / ``sequence_end``; the state
tensors start as zeros (``initial_state { zero_data: true }``: all-zero temporal terms are
exactly "no previous frame", see :meth:`~rrn.model.RecurrentResNet.step_terms`) and the step's
state outputs are fed back as the next request's state inputs. A sampled stream sends a frame
every ``interval`` seconds, so ``max_sequence_idle_microseconds`` is
``max(5 s, 10 x interval)``: a stream is not dropped between two of its frames, and a dead one
is freed within seconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from torch import nn

from rrn.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
IDLE_MIN_S = 5.0
IDLE_INTERVALS = 10


def idle_microseconds(interval_s: float) -> int:
    """``max_sequence_idle_microseconds`` for a stream sampled every ``interval_s`` seconds."""
    return int(round(max(IDLE_MIN_S, IDLE_INTERVALS * interval_s) * 1_000_000))


def _dims(shape) -> str:
    return ", ".join(str(int(d)) for d in shape)


def config_text(desc: dict, name: str, max_batch_size: int, interval_s: float) -> str:
    """The ``config.pbtxt`` of the step described by ``desc`` (:func:`rrn.export.describe`)."""
    step, size = desc["step"], desc["inputs"]["frame_size"]
    num_classes = len(desc["classes"])
    states = "".join(
        f"""    {{
      input_name: "{s["input"]}"
      output_name: "{s["output"]}"
      data_type: TYPE_FP32
      dims: [ {_dims(s["shape"][1:])} ]
      initial_state: {{
        data_type: TYPE_FP32
        dims: [ {_dims(s["shape"][1:])} ]
        zero_data: true
        name: "zeros_{s["input"]}"
      }}
    }}{"," if i + 1 < len(step["states"]) else ""}
"""
        for i, s in enumerate(step["states"])
    )
    return f"""# rrn {desc["rrn_version"]}: the per-frame step of {desc["checkpoint"]}
# {desc["model"]["arch"]}, skips at {", ".join(desc["model"]["skip_blocks"])},
# T={desc["temporal_context"]}
name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch_size}
input [
  {{
    name: "frame"
    data_type: TYPE_FP32
    dims: [ 3, {size}, {size} ]
  }}
]
output [
  {{
    name: "logits"
    data_type: TYPE_FP32
    dims: [ {num_classes} ]
    label_filename: "labels.txt"
  }}
]
sequence_batching {{
  # one frame every {interval_s:.3f} s per stream:
  # idle = max({IDLE_MIN_S:g} s, {IDLE_INTERVALS} frames)
  max_sequence_idle_microseconds: {idle_microseconds(interval_s)}
  oldest {{
    max_candidate_sequences: {4 * max_batch_size}
    preferred_batch_size: [ {max_batch_size} ]
    max_queue_delay_microseconds: 5000
  }}
  state [
{states}  ]
}}
"""


def export_triton(
    model: nn.Module,
    repo: str | os.PathLike,
    *,
    name: str = "rrn",
    max_batch_size: int = 8,
    opset: int = 18,
    source_fps: float = 25.0,
) -> list[Path]:
    """Write the Triton model repository of ``model`` (from :func:`rrn.load_model`) to ``repo``.

    Returns:
        The files written.

    Raises:
        ValueError: a name Triton would not take, or ``max_batch_size`` < 1.
    """
    from rrn.export import StepGraph, _example_inputs, _write_onnx, describe, state_names
    from rrn.files import check_writable
    from rrn.online.recognizer import interval_seconds

    if not NAME.fullmatch(name):
        raise ConfigError(
            f"--name {name!r}: a Triton model name is 1-128 characters of A-Z a-z 0-9 _ . -"
        )
    if max_batch_size < 1:
        raise ConfigError(f"--max-batch-size must be >= 1, got {max_batch_size}")
    repo = check_writable(repo)
    model = model.eval()
    desc = describe(model, "onnx")
    folder = repo / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    ins, outs = state_names(len(model.skip_blocks))
    step_args, _ = _example_inputs(model, desc)
    _write_onnx(
        StepGraph(model),
        step_args,
        folder / "1" / "model.onnx",
        ["frame", *ins],
        ["logits", *outs],
        opset,
    )
    interval = interval_seconds(model.inputs.sampling, source_fps)
    (folder / "config.pbtxt").write_text(config_text(desc, name, max_batch_size, interval))
    (folder / "labels.txt").write_text("".join(f"{c}\n" for c in desc["classes"]))
    (repo / "README.md").write_text(_readme(desc, name, interval))
    (repo / "client_example.py").write_text(_client_example(desc, name, interval))
    return [
        folder / "config.pbtxt",
        folder / "1" / "model.onnx",
        folder / "labels.txt",
        repo / "README.md",
        repo / "client_example.py",
    ]


def _readme(desc: dict, name: str, interval: float) -> str:
    return f"""# Triton model repository: `{name}` (exported by rrn {desc["rrn_version"]})

The per-frame step of `{desc["checkpoint"]}`
({len(desc["classes"])} classes, T={desc["temporal_context"]}).
Triton keeps each stream's state (implicit state, zeros at the start of a sequence): send one
preprocessed frame per request with `sequence_id` (one per stream), `sequence_start` on its first
frame and `sequence_end` on its last.

Preprocessing: {desc["preprocessing"]}.
Sampling: one frame every {interval:.3f} s of the stream ({desc["inputs"]["sample_every"]} frames
at the training videos' rate, or the model's fps).

    tritonserver --model-repository $PWD
    python client_example.py video.mp4 --url localhost:8001

`logits` of frame n are the prediction of the chunk of the stream's frames n-T+1..n.
"""


def _client_example(desc: dict, name: str, interval: float) -> str:
    from importlib import resources

    template = resources.files("rrn").joinpath("triton_client.py.txt").read_text("utf-8")
    inputs = desc["inputs"]
    return (
        template.replace("@MODEL@", name)
        .replace("@FRAME_SIZE@", str(inputs["frame_size"]))
        .replace("@SHORT_SIDE@", str(inputs.get("crop_short_side")))
        .replace("@DECODE_SHORT_SIDE@", repr(inputs.get("short_side")))
        .replace("@MEAN@", repr(list(inputs.get("mean", [0.485, 0.456, 0.406]))))
        .replace("@STD@", repr(list(inputs.get("std", [0.229, 0.224, 0.225]))))
        .replace("@INTERVAL@", f"{interval:.6f}")
        .replace("@CLASSES@", repr(list(desc["classes"])))
    )
