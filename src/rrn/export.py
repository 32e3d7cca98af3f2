"""Export a trained RRN for deployment: its per-frame step and its chunk classifier as ONNX or
TorchScript graphs, described by ``model.json``.

Two graphs are written to the output folder:

* ``step.onnx`` / ``step.pt``: one frame with the state as explicit tensors,
  ``(frame, state_in_0, ..., state_in_{J-1}) -> (logits, state_out_0, ..., state_out_{J-1})``,
  one state per skip block (:meth:`~rrn.model.RecurrentResNet.step_terms`). State ``j`` is
  the temporal term ``S(x_{t-1})`` that block ``j`` adds to the next frame's residual sum,
  so the **initial state is all zeros** of the declared shapes and the first frame's logits
  are exactly ``step(frame, None)`` for every skip type. Stepping through a video, feeding
  each call's state outputs back as the next call's inputs, gives ``forward_video``'s rows.
* ``chunk.onnx`` / ``chunk.pt``: the chunk classifier ``(B, T, 3, S, S) -> (B, K)``, the
  model's ``forward`` (the prediction at the chunk's last frame).

Every input and output has a dynamic batch axis 0; the shapes in ``model.json`` are for
batch 1. ``model.json`` also holds what a deployment needs to prepare frames: class names,
frame size, normalisation and sampling (:meth:`~rrn.data.transforms.InputSpec.to_dict`), and
``background``: the class that means "no action" for a detection model (``Background``,
class 0), else null.
:class:`ExportedModel` loads an export back (ONNX Runtime or ``torch.jit``) and runs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rrn.data.sampling import default_short_side
from rrn.detection.classes import BACKGROUND, background_index
from rrn.errors import ConfigError, UserError
from rrn.files import check_writable
from rrn.version import __version__

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
DESCRIPTION = "model.json"
EXAMPLE_BATCH = 2  # torch.export treats a size-1 axis as a constant: trace at 2, run at any


class StepGraph(nn.Module):
    """:meth:`~rrn.model.RecurrentResNet.step_terms` as a module with flat tensor arguments."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frame: Tensor, *terms: Tensor) -> tuple[Tensor, ...]:
        logits, new_terms = self.model.step_terms(frame, terms)
        return (logits, *new_terms)


class ChunkGraph(nn.Module):
    """The model's chunk classifier, ``(B, T, 3, S, S) -> (B, K)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clip: Tensor) -> Tensor:
        return self.model(clip)


def state_names(count: int) -> tuple[list[str], list[str]]:
    """Input and output names of ``count`` states: ``state_in_j`` / ``state_out_j``."""
    return [f"state_in_{j}" for j in range(count)], [f"state_out_{j}" for j in range(count)]


def describe(model: nn.Module, fmt: str) -> dict:
    """The ``model.json`` of an export of ``model`` (from :func:`rrn.load_model`) in ``fmt``."""
    size, T, K = model.inputs.frame_size, model.temporal_context, model.num_classes
    ins, outs = state_names(len(model.skip_blocks))
    ext = FORMATS[fmt]
    states = [
        {
            "block": block,
            "input": i,
            "output": o,
            "shape": list(shape),
            "dtype": "float32",
            "initial": "zeros",
        }
        for block, i, o, shape in zip(model.skip_blocks, ins, outs, model.term_shapes(size))
    ]
    return {
        "format": fmt,
        "rrn_version": __version__,
        "checkpoint": str(model.checkpoint) if model.checkpoint is not None else None,
        "model": dict(model.config),
        "temporal_context": T,
        "classes": list(model.classes),
        "background": BACKGROUND if background_index(model.classes) is not None else None,
        "inputs": model.inputs.to_dict(),
        "preprocessing": _preprocessing(model.inputs),
        "batch": "axis 0 of every input and output is dynamic; shapes are given for batch 1",
        "step": {
            "file": f"step{ext}",
            "frame": {"name": "frame", "shape": [1, 3, size, size], "dtype": "float32"},
            "logits": {"name": "logits", "shape": [1, K]},
            "states": states,
        },
        "chunk": {
            "file": f"chunk{ext}",
            "clip": {"name": "clip", "shape": [1, T, 3, size, size], "dtype": "float32"},
            "logits": {"name": "logits", "shape": [1, K]},
        },
        "contract": "Start every video with all states zero (their shapes above). Per sampled "
        "frame, feed the preprocessed frame and the previous call's state outputs "
        "as the state inputs; logits of frame n = the chunk of frames n-T+1..n.",
    }


def _preprocessing(inputs) -> str:
    """How a frame becomes the graphs' input, in words (what rrn's evaluation does)."""
    size = inputs.frame_size
    return (
        f"frames: {inputs.sampling.describe()} (RGB, resized by area); then resize the "
        f"short side to {default_short_side(size)} (antialiased bilinear; nothing when "
        f"equal), centre crop {size}x{size}, divide by 255, subtract mean and divide by std "
        f"per channel: (1, 3, {size}, {size}) float32"
    )


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how closely the export matches PyTorch."""

    out: Path
    files: list[Path]
    description: dict
    step_diff: float | None = None
    """Largest |exported - forward_video| over the logits of a random video (None: not run)."""
    chunk_diff: float | None = None
    """Largest |exported - model(clip)| over the logits of random clips (None: not run)."""
    note: str | None = None
    """Why the check did not run."""


def export_model(
    model: nn.Module,
    out: str | os.PathLike,
    fmt: str = "onnx",
    *,
    opset: int = 18,
    check: bool = True,
    chunk: bool = True,
) -> ExportReport:
    """Write ``model``'s step and chunk graphs and ``model.json`` to ``out``.

    Args:
        model: From :func:`rrn.load_model` (``classes`` and ``inputs`` are part of the export).
        out: Output folder (created).
        fmt: ``"onnx"`` or ``"torchscript"``.
        opset: ONNX opset version.
        check: Run the exported graphs on random input against PyTorch afterwards.
        chunk: Export the chunk classifier too (False: the step alone, as the onnxruntime
            engine of ``rrn stream`` needs; ``model.json`` then has no ``chunk``).

    Returns:
        The :class:`ExportReport`.

    Raises:
        ValueError: an unknown format, or a torch too old for the ONNX exporter.
        ImportError: ``onnx``/``onnxscript`` missing for ONNX (the message says what to install).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose onnx or torchscript")
    out = check_writable(out)  # one line naming the folder, before any graph is traced
    model = model.eval()
    desc = describe(model, fmt)
    step_args, chunk_args = _example_inputs(model, desc)
    ins, outs = state_names(len(model.skip_blocks))
    write = _write_onnx if fmt == "onnx" else _write_torchscript
    files = [out / desc["step"]["file"]]
    write(StepGraph(model), step_args, files[0], ["frame", *ins], ["logits", *outs], opset)
    if chunk:
        files.append(out / desc["chunk"]["file"])
        write(ChunkGraph(model), chunk_args, files[1], ["clip"], ["logits"], opset)
    else:
        del desc["chunk"]
    (out / DESCRIPTION).write_text(json.dumps(desc, indent=2) + "\n")
    report = ExportReport(out, [*files, out / DESCRIPTION], desc)
    if check:
        _check(model, report)
    return report


def _example_inputs(model: nn.Module, desc: dict) -> tuple[tuple[Tensor, ...], tuple[Tensor]]:
    param = next(model.parameters())
    g = torch.Generator().manual_seed(0)

    def batch(shape):
        return torch.randn((EXAMPLE_BATCH, *shape[1:]), generator=g).to(param.device)

    step = desc["step"]
    frame = batch(step["frame"]["shape"])
    terms = [
        torch.zeros((EXAMPLE_BATCH, *s["shape"][1:]), device=param.device) for s in step["states"]
    ]
    return (frame, *terms), (batch(desc["chunk"]["clip"]["shape"]),)


def _write_onnx(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], opset: int
) -> None:
    if not hasattr(torch.export, "Dim"):
        raise UserError(
            f"ONNX export needs torch >= 2.5 (torch.onnx's dynamo exporter); this "
            f"is torch {torch.__version__}. Use --format torchscript or upgrade "
            "torch."
        )
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            raise ImportError(
                f"ONNX export needs the {name} package: pip install 'rrn[export]' "
                "(onnx, onnxscript, onnxruntime)"
            ) from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    first, *rest = args
    shapes = ({0: batch}, tuple({0: batch} for _ in rest)) if rest else ({0: batch},)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on axis names and deprecations
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=shapes,
            dynamo=True,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )


def _write_torchscript(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], opset: int
) -> None:
    del inputs, outputs, opset  # TorchScript takes positional tensors; model.json names them
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch marks torch.jit deprecated; it still works
        traced = torch.jit.trace(module, args, check_trace=False)
        torch.jit.save(traced, str(path))


def _check(model: nn.Module, report: ExportReport) -> None:
    """Fill ``report``'s differences: a random video stepped vs ``forward_video``, and clips."""
    try:
        exported = ExportedModel(report.out)
    except ImportError as err:
        report.note = f"not checked: {err}"
        return
    param = next(model.parameters())
    size, T = model.inputs.frame_size, model.temporal_context
    g = torch.Generator().manual_seed(1)
    video = torch.randn(T + 3, 3, size, size, generator=g)  # (N, 3, S, S)
    clips = torch.randn(EXAMPLE_BATCH + 1, T, 3, size, size, generator=g)  # (B, T, 3, S, S)
    with torch.no_grad():
        expected = model.forward_video(video.to(param)).cpu().numpy()  # (N, K)
        expected_chunk = model(clips.to(param)).cpu().numpy()  # (B, K)
    stepped = exported.run_video(video.numpy())  # (N, K)
    report.step_diff = float(np.abs(stepped - expected).max())
    if exported.has_chunk:
        report.chunk_diff = float(np.abs(exported.chunk(clips.numpy()) - expected_chunk).max())


class ExportedModel:
    """An export loaded back for inference: ONNX Runtime (onnx) or ``torch.jit`` (torchscript).

    Args:
        folder: What :func:`export_model` wrote.
        threads: Intra-op threads (None: the runtime's default).

    ``step`` keeps the state between calls (``reset`` starts a new video); inputs and outputs
    are float32 numpy arrays, preprocessed as ``description["inputs"]`` says.
    """

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        self.folder = Path(folder)
        self.description = json.loads((self.folder / DESCRIPTION).read_text())
        self.format = self.description["format"]
        step = self.folder / self.description["step"]["file"]
        self.has_chunk = "chunk" in self.description  # a step-only export has none
        load = (lambda path: ort_session(path, threads)) if self.format == "onnx" else _jit_load
        self._step = load(step)
        self._chunk = (
            load(self.folder / self.description["chunk"]["file"]) if self.has_chunk else None
        )
        self.states = self.description["step"]["states"]
        self.reset()

    def reset(self, batch: int = 1) -> None:
        """Zero state: the start of a video (``batch`` videos side by side)."""
        self.state = [np.zeros((batch, *s["shape"][1:]), np.float32) for s in self.states]

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Logits (B, K) of frames (B, 3, S, S); the state moves on by one frame."""
        if self.format == "onnx":
            feeds = {"frame": frame, **{s["input"]: v for s, v in zip(self.states, self.state)}}
            logits, *self.state = self._step.run(None, feeds)
            return logits
        with torch.no_grad():
            logits, *terms = self._step(torch.from_numpy(frame), *map(torch.from_numpy, self.state))
        self.state = [t.numpy() for t in terms]
        return logits.numpy()

    def run_video(self, frames: np.ndarray) -> np.ndarray:
        """Logits (N, K) of a whole video (N, 3, S, S), from a zero state."""
        self.reset()
        return np.concatenate([self.step(f[None]) for f in frames])  # N x (1, K) -> (N, K)

    def chunk(self, clips: np.ndarray) -> np.ndarray:
        """Logits (B, K) of clips (B, T, 3, S, S)."""
        if self._chunk is None:
            raise ValueError(f"{self.folder} holds the step alone (exported without the chunk)")
        if self.format == "onnx":
            return self._chunk.run(None, {"clip": clips})[0]
        with torch.no_grad():
            return self._chunk(torch.from_numpy(clips)).numpy()


def _jit_load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks torch.jit deprecated; it still works
        return torch.jit.load(str(path))


def ort_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime session of the graph at ``path`` on the CPU.

    Args:
        path: An ``.onnx`` file.
        threads: Intra-op threads (None: ONNX Runtime's default, one per physical core).

    The intra-op threads wait without spinning when ``OMP_WAIT_POLICY`` is ``PASSIVE`` (as the
    command line sets it for torch's OpenMP threads): on shared cores a spinning pool starves
    the other work of the process, such as decoding, and every other process.

    Raises:
        ImportError: onnxruntime is missing (the message says what to install).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(
            "running an ONNX export needs onnxruntime: pip install 'rrn[export]'"
        ) from None
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
