"""The engine that runs :class:`~rrn.online.recognizer.MultiStreamRecognizer`'s batched step:
eager PyTorch or ONNX Runtime.

An engine is one call with the contract of :meth:`~rrn.model.RecurrentResNet.step_terms`:
``engine.step(frames, terms) -> (logits, new_terms)``, frames (B, 3, S, S), one temporal term
per skip block (B, C, h, w), all zeros at a stream's start. Both engines take and return torch
tensors, so the recognizer keeps every stream's state exactly as it does with the model alone;
ONNX Runtime's numpy arrays exist only inside :meth:`OnnxEngine.step` (views of the same CPU
memory both ways, no copy).

* :class:`TorchEngine`: the model's ``step_terms``, on the model's device;
* :class:`OnnxEngine`: ``step.onnx`` as :func:`rrn.export.export_model` writes it (the state as
  explicit tensors, a dynamic batch axis), on ONNX Runtime's CPU provider. It comes from an
  export folder the user names (``--onnx-dir``), checked against the model
  (:func:`check_export`), or is exported at the start into a cache keyed by the weights
  (:func:`cached_export`), so that the next start skips the export. Either way one probe
  (:func:`probe`: two frames of two streams through both) must agree before a frame is served.

:func:`make_engine` picks one: the engine named, or the faster one for the device as
``benchmarks/stream.py`` measures them: onnxruntime on the CPU when it is installed (one
stream's step 2x faster than eager PyTorch on 2 cores), torch on a GPU (no GPU run has compared
them; ONNX Runtime's CUDA provider is not used).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from rrn.choices import Engine, names
from rrn.errors import UserError

logger = logging.getLogger(__name__)

ENGINES = names(Engine)
PROBE_TOL = 1e-3
"""Largest |logit difference| between the engines on the probe (they agree to ~1e-5; a folder
exported from other weights differs by far more)."""
ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")
"""What the onnxruntime engine needs: the runtime, and the exporter unless --onnx-dir is given."""


class StepEngine(Protocol):
    """What :class:`~rrn.online.recognizer.MultiStreamRecognizer` steps through."""

    name: str
    device: torch.device
    """Where the frames and the state tensors live."""
    dtype: torch.dtype

    def step(
        self, frames: torch.Tensor, terms: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, K) and the new terms of frames (B, 3, S, S) and terms (B, C, h, w)."""
        ...


class TorchEngine:
    """Eager PyTorch: the model's :meth:`~rrn.model.RecurrentResNet.step_terms`."""

    name = "torch"

    def __init__(self, model):
        self.model = model
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype

    def step(self, frames, terms):
        return self.model.step_terms(frames.to(self.device, self.dtype), terms)


class OnnxEngine:
    """``step.onnx`` of an export folder, run by ONNX Runtime on the CPU.

    Args:
        folder: What :func:`rrn.export.export_model` wrote (``model.json`` and ``step.onnx``).
        threads: Intra-op threads (None: ONNX Runtime's default, one per physical core).
    """

    name = "onnxruntime"
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        from rrn.export import DESCRIPTION, ort_session

        self.folder = Path(folder)
        step = json.loads((self.folder / DESCRIPTION).read_text())["step"]
        self.session = ort_session(self.folder / step["file"], threads)
        self.frame = step["frame"]["name"]
        self.inputs = [s["input"] for s in step["states"]]
        self.outputs = [step["logits"]["name"], *(s["output"] for s in step["states"])]

    def step(self, frames, terms):
        # torch (B, ...) -> numpy views of the same memory -> ONNX Runtime -> torch views
        feeds = {self.frame: _array(frames)}
        feeds.update((name, _array(t)) for name, t in zip(self.inputs, terms))
        logits, *new_terms = self.session.run(self.outputs, feeds)
        return torch.from_numpy(logits), [torch.from_numpy(t) for t in new_terms]


def _array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


# ---------------------------------------------------------------------------- choosing one
def make_engine(
    model,
    name: str | None = None,
    *,
    onnx_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> StepEngine:
    """The engine that steps ``model`` (from :func:`rrn.load_model`).

    Args:
        model: The model; its device decides the default engine.
        name: ``"torch"`` or ``"onnxruntime"`` (None: :func:`default_engine`, or onnxruntime
            when ``onnx_dir`` is given).
        onnx_dir: An ``rrn export --format onnx`` folder of this model (onnxruntime only;
            None: export the step into the cache, or use the export cached there).
        threads: ONNX Runtime's intra-op threads (torch's are the process's:
            ``torch.set_num_threads``).

    Raises:
        UserError: onnxruntime asked for and not installed, or for a model on a GPU; an
            ``onnx_dir`` that is not an export of this model.
    """
    device = next(model.parameters()).device
    if name is None:
        name = "onnxruntime" if onnx_dir is not None else default_engine(device)
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "torch":
        if onnx_dir is not None:
            raise UserError("--onnx-dir is for --engine onnxruntime")
        return TorchEngine(model)
    if device.type != "cpu":
        raise UserError(
            f"--engine onnxruntime runs on the CPU and the model is on {device}: use "
            "--device cpu, or --engine torch on the GPU"
        )
    missing = _missing(("onnxruntime",) if onnx_dir is not None else ONNX_PACKAGES)
    if missing:
        raise UserError(
            f"--engine onnxruntime needs {', '.join(missing)}: pip install 'rrn[export]' "
            "(or --engine torch)"
        )
    if onnx_dir is not None:
        check_export(model, onnx_dir)
        return _probed(model, _given_engine(onnx_dir, threads), f"the export in {onnx_dir}")
    return _cached_engine(model, threads)


def _given_engine(folder: str | os.PathLike, threads: int | None) -> OnnxEngine:
    """The engine of a user's export folder; a step graph ONNX Runtime cannot load, or whose
    inputs are not those ``model.json`` names (another file put in its place), is a
    :class:`UserError` naming the file."""
    try:
        engine = OnnxEngine(folder, threads)
        wanted, graph = {engine.frame, *engine.inputs}, engine.session.get_inputs()
    except Exception as err:  # ONNX Runtime's errors have no common public base class
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"--onnx-dir {folder}: ONNX Runtime cannot load its step graph ({why}); export "
            f"this checkpoint again (rrn export CHECKPOINT --format onnx --out {folder})"
        ) from None
    if {i.name for i in graph} != wanted:
        raise UserError(
            f"--onnx-dir {folder}: its step graph takes {sorted(i.name for i in graph)}, not the "
            f"inputs model.json names ({sorted(wanted)}): another graph is in its place; export "
            f"this checkpoint again (rrn export CHECKPOINT --format onnx --out {folder})"
        )
    return engine


def default_engine(device: torch.device | str = "cpu") -> str:
    """The faster engine for ``device``: onnxruntime on the CPU when it and the exporter are
    installed (otherwise torch, with a note saying what to install), torch on a GPU."""
    if torch.device(device).type != "cpu":
        return "torch"
    missing = _missing(ONNX_PACKAGES)
    if missing:
        logger.info(
            "%s not installed: the model step runs in eager PyTorch (pip install "
            "'rrn[export]' for --engine onnxruntime, about 2x faster for one stream on a CPU)",
            " and ".join(missing),
        )
        return "torch"
    return "onnxruntime"


def _missing(packages: Sequence[str]) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


def engine_for(model, config) -> StepEngine:
    """:func:`make_engine` with a :class:`~rrn.config.StreamConfig`'s ``engine``, ``onnx_dir``
    and ``threads``."""
    return make_engine(model, config.engine, onnx_dir=config.onnx_dir, threads=config.threads)


# ---------------------------------------------------------------------------- checking one
def check_export(model, folder: str | os.PathLike) -> None:
    """Refuse an export folder that does not describe ``model``: another format, other classes,
    frame size, normalisation or sampling, other skip blocks or state shapes.

    Raises:
        UserError: naming the folder and what differs.
    """
    from rrn.export import describe

    folder = Path(folder)
    found, compared, step_file = _read_description(folder)
    if found.get("format") != "onnx":
        raise UserError(
            f"--onnx-dir {folder} holds a {found.get('format')} export; the onnxruntime engine "
            "needs rrn export --format onnx"
        )
    wanted = describe(model, "onnx")
    for (what, key), theirs in zip(_COMPARED, compared):
        if theirs != key(wanted):
            raise UserError(
                f"--onnx-dir {folder} was exported from another model: its {what} "
                f"{_short(theirs)} differ from the checkpoint's {_short(key(wanted))}; "
                "export this checkpoint (rrn export CHECKPOINT --out DIR) or drop --onnx-dir"
            )
    if not (folder / step_file).is_file():
        raise UserError(f"--onnx-dir {folder}: {step_file} is missing")


def _read_description(folder: Path) -> tuple[dict, list, str]:
    """``(model.json, its values that :data:`_COMPARED` compares, the step's file name)``;
    a file that is missing, not JSON or not laid out as rrn export writes it is a
    :class:`UserError`."""
    from rrn.export import DESCRIPTION

    try:
        found = json.loads((folder / DESCRIPTION).read_text())
        compared = [key(found) for _, key in _COMPARED]
        step_file = str(found["step"]["file"]) if found.get("format") == "onnx" else ""
    except (OSError, ValueError, RecursionError) as err:
        why = str(err)
    except (TypeError, KeyError, AttributeError):  # a list, a string, a key missing
        why = "not laid out as rrn export writes it"
    else:
        return found, compared, step_file
    raise UserError(
        f"--onnx-dir {folder}: no readable {DESCRIPTION} ({why}); make one with "
        f"rrn export CHECKPOINT --format onnx --out {folder}"
    )


_COMPARED = (
    ("classes", lambda d: d.get("classes")),
    ("inputs (frame size, normalisation, sampling)", lambda d: d.get("inputs")),
    ("temporal context", lambda d: d.get("temporal_context")),
    (
        "skip blocks and state shapes",
        lambda d: [(s["block"], s["shape"]) for s in d.get("step", {}).get("states", [])],
    ),
)


def _short(value, limit: int = 120) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@torch.inference_mode()
def probe(model, engine: StepEngine, *, seed: int = 0) -> float:
    """Largest |logit difference| between ``engine`` and the model's own step on two frames of
    two streams (zero state, then the state carried)."""
    size = model.inputs.frame_size
    g = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    terms = [torch.zeros(s[1:]).expand(2, *s[1:]).contiguous() for s in model.term_shapes(size)]
    mine, theirs, worst = terms, terms, 0.0
    for _ in range(2):
        frames = torch.randn(2, 3, size, size, generator=g)  # (B, 3, S, S)
        expected, mine = model.step_terms(frames.to(param), [t.to(param) for t in mine])
        got, theirs = engine.step(frames.to(engine.device, engine.dtype), theirs)
        worst = max(worst, float((got.float().cpu() - expected.float().cpu()).abs().max()))
    return worst


def _probed(model, engine: StepEngine, what: str) -> StepEngine:
    diff = probe(model, engine)
    if not diff <= PROBE_TOL:
        raise UserError(
            f"{what} is not this checkpoint's step: its logits differ from the model's by "
            f"{diff:.3g} (more than {PROBE_TOL:g}); export this checkpoint again"
        )
    logger.debug("model step: %s, %s (probe: %.2g from torch)", engine.name, what, diff)
    return engine


# ---------------------------------------------------------------------------- the cache
def _cached_engine(model, threads: int | None) -> OnnxEngine:
    """The engine of the cached export; a damaged cache entry (a graph ONNX Runtime cannot
    load, or one whose outputs are not the model's) is exported again, once."""
    folder = cached_export(model)
    try:
        engine = OnnxEngine(folder, threads)
        if probe(model, engine) <= PROBE_TOL:
            return engine
        why = "its outputs differ from the model's"
    except Exception as err:  # ONNX Runtime's errors have no common public base class
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
    logger.warning("the cached export %s is damaged (%s): exporting it again", folder, why)
    shutil.rmtree(folder, ignore_errors=True)
    return _probed(model, OnnxEngine(cached_export(model), threads), "the cached export")


def cache_home() -> Path:
    """rrn's cache folder: ``$RRN_CACHE_HOME``, else ``$XDG_CACHE_HOME/rrn``, else
    ``~/.cache/rrn``."""
    if os.environ.get("RRN_CACHE_HOME"):
        return Path(os.environ["RRN_CACHE_HOME"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rrn"


def export_key(model) -> str:
    """What an export of ``model``'s step depends on, hashed: its weights, its description, and
    the versions of torch and rrn that export it."""
    from rrn.export import describe
    from rrn.version import __version__

    desc = describe(model, "onnx")
    h = hashlib.sha256()
    kept = {k: desc[k] for k in ("model", "temporal_context", "classes", "inputs", "step")}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    h.update(f"torch {torch.__version__} rrn {__version__}".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes, whatever the dtype
    return h.hexdigest()[:32]


def cached_export(model) -> Path:
    """The folder of ``model``'s step exported to ONNX: ``<cache_home>/onnx/<export_key>``,
    exported now (several seconds) unless an earlier start did. Written under another name and
    renamed into place, so a folder found there is complete, and two processes exporting the
    same model at once both end up with one whole folder.

    An unwritable cache (a read-only home) is reported and the step exported into a temporary
    folder instead; ONNX Runtime reads the graph when its session is made, so the folder is
    removed when the process exits.
    """
    from rrn.export import DESCRIPTION

    root = cache_home() / "onnx"
    folder = root / export_key(model)
    if (folder / DESCRIPTION).is_file():
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".exporting-", dir=root))
    except OSError as err:
        logger.warning(
            "cannot write the ONNX cache %s (%s): exporting for this run only", root, err
        )
        work = Path(tempfile.mkdtemp(prefix="rrn-onnx-"))
        folder = work
        _remove_at_exit(work)
    _export_step(model, work)
    if work != folder:
        try:
            work.rename(folder)
        except OSError:  # another process put it there first: theirs is as good
            shutil.rmtree(work, ignore_errors=True)
    return folder


def _export_step(model, out: Path) -> None:
    from rrn.export import export_model

    logger.info(
        "exporting the model step to ONNX for ONNX Runtime (once per checkpoint, kept in %s)...",
        cache_home() / "onnx",
    )
    start = time.perf_counter()
    export_model(model, out, "onnx", check=False, chunk=False)
    logger.info("exported in %.1f s", time.perf_counter() - start)


def _remove_at_exit(folder: Path) -> None:
    import atexit

    atexit.register(shutil.rmtree, folder, ignore_errors=True)
