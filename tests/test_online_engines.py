"""The engines of the batched step: ONNX Runtime's outputs equal torch's (1e-4) for streams that
start and end at different times in shuffled batches of any size, every skip type; `rrn stream
--engine onnxruntime` writes the events of `--engine torch`; an export folder of another model
is refused; the default, the threads, a missing onnxruntime, and the export cache."""

import copy
import json
import logging
import random
import shutil
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rrn import load_model
from rrn.cli import main
from rrn.config import ConfigError, StreamConfig
from rrn.data import make_synthetic_dataset
from rrn.errors import UserError
from rrn.online import MultiStreamRecognizer, StreamFrame, engines
from rrn.online.engines import (
    OnnxEngine,
    TorchEngine,
    cached_export,
    default_engine,
    engine_for,
    export_key,
    make_engine,
)
from runs import save_run

SIZE = 32
TOL = 1e-4
CLASSES = ("A", "B", "C", "D")
# Every skip type, at the positions test_export.py covers: midblock4 is the projection block,
# where a zero block input is not a zero temporal term.
CASES = {
    "identity-all": (("block1", "block2", "midblock4", "block4"), "identity"),
    "linear-T3": (("midblock4", "block4"), "linear"),
    "nonlinear-all": (("block1", "block2", "midblock4", "block4"), "nonlinear"),
}


@pytest.fixture(scope="module", params=list(CASES))
def both(request, tmp_path_factory):
    """A model of each skip type and its onnxruntime engine (exported on the fly)."""
    skips, skip_type = CASES[request.param]
    tmp = tmp_path_factory.mktemp(f"engines-{request.param}")
    model = load_model(
        save_run(tmp / "run", skips=skips, skip_type=skip_type, frame_size=SIZE, classes=CLASSES)
    )
    return model, make_engine(model, "onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The checkpoint of the command-line tests (linear skips at block2 and block4, T=3)."""
    tmp = tmp_path_factory.mktemp("engines-cli")
    return save_run(
        tmp / "run", skips=("block2", "block4"), skip_type="linear", frame_size=SIZE, seed=2
    )


@pytest.fixture(scope="module")
def exported(run):
    """An export folder of ``run``'s model: the cache's (what rrn export writes, step only)."""
    model = load_model(run)
    return model, cached_export(model)


@pytest.fixture
def logged():
    """The messages rrn.online.engines logs during a test (the command line, once called, stops
    rrn's records at its own console handler, before pytest's)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("rrn.online.engines")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield records
    log.removeHandler(handler)
    log.setLevel(level)


def _messages(records, level=logging.INFO) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= level]


def _video(seed: int, n: int) -> np.ndarray:
    """n random RGB frames of 48 x 40 (resized to the model's short side by the recognizer)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)


def _schedule(recognizer: MultiStreamRecognizer, videos: dict, joins: dict, seed: int) -> dict:
    """Step ``videos`` (stream -> frames) joining at ``joins`` ticks, each batch shuffled;
    returns each stream's (probs, smoothed) per frame."""
    got = {k: [] for k in videos}
    order = random.Random(seed)
    for tick in range(max(joins[k] + len(v) for k, v in videos.items()) + 1):
        batch = []
        for k, frames in videos.items():
            i = tick - joins[k]
            if i == 0:
                recognizer.open(k)
            if 0 <= i < len(frames):
                batch.append(StreamFrame(k, frames[i], i, i / 25))
            elif i == len(frames):
                recognizer.close(k)
        order.shuffle(batch)  # matched by id, never by position
        for k, pred in recognizer.step(batch).items():
            got[k].append(torch.stack([pred.probs, pred.smoothed]))
    return {k: torch.stack(v) for k, v in got.items()}  # (N, 2, K) per stream


def test_streams_that_start_and_end_at_different_times_equal_torch(both):
    model, onnx = both
    videos = {"a": _video(0, 9), "b": _video(1, 4), "c": _video(2, 6), "d": _video(3, 2)}
    joins = {"a": 0, "b": 2, "c": 3, "d": 7}  # b ends while c runs; d joins after b left
    torch_out = _schedule(MultiStreamRecognizer(model), videos, joins, seed=0)
    onnx_rec = MultiStreamRecognizer(model, engine=onnx)
    onnx_out = _schedule(onnx_rec, videos, joins, seed=1)  # other shuffles, same streams
    assert onnx_rec.engine.name == "onnxruntime" and onnx_rec.streams.keys() == set()
    for k in videos:
        assert onnx_out[k].shape == (len(videos[k]), 2, len(CLASSES))
        torch.testing.assert_close(onnx_out[k], torch_out[k], atol=TOL, rtol=0)


def test_any_batch_size_steps_as_the_model_does(both):
    """The batch axis is dynamic: 1, 3 and 16 streams, the state carried over three frames."""
    model, onnx = both
    g = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        for batch in (1, 3, 16):
            mine = theirs = [
                torch.zeros(batch, *s[1:]) for s in model.term_shapes(SIZE)
            ]  # J x (B, C, h, w)
            for _ in range(3):
                x = torch.randn(batch, 3, SIZE, SIZE, generator=g)
                expected, mine = model.step_terms(x, mine)
                logits, theirs = onnx.step(x, theirs)
                assert logits.shape == (batch, len(CLASSES))
                torch.testing.assert_close(logits, expected, atol=TOL, rtol=0)
                for t, e in zip(theirs, mine):
                    torch.testing.assert_close(t, e, atol=TOL, rtol=0)


# ---------------------------------------------------------------------------- rrn stream
TIMINGS = ("latency", "wall")


def _same(a, b, where="") -> None:
    """Equal records, timings aside, numbers to the events' 4 decimals (+ 1e-4)."""
    if isinstance(a, dict):
        keys = {k for k in a if not any(t in k for t in TIMINGS)}
        assert keys == {k for k in b if not any(t in k for t in TIMINGS)}, where
        for k in keys:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, abs=2 * TOL), where
    else:
        assert a == b, where


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rrn_stream_with_onnxruntime_writes_the_events_of_torch(run, tmp_path, capsys):
    data = make_synthetic_dataset(
        tmp_path / "data", classes=2, videos_per_class=2, frames=14, size=48, seed=1
    )
    video = sorted(data.glob("*/*.avi"))[0]
    for engine in ("torch", "onnxruntime"):
        argv = ["stream", str(run), str(video), "--engine", engine, "--threads", "1"]
        assert main([*argv, "--json", str(tmp_path / f"{engine}.jsonl")]) == 0
    capsys.readouterr()
    torch_events = _events(tmp_path / "torch.jsonl")
    onnx_events = _events(tmp_path / "onnxruntime.jsonl")
    assert [e["type"] for e in torch_events].count("frame") == 14
    _same(onnx_events, torch_events)


def test_an_export_folder_of_the_checkpoint_is_used_and_of_another_refused(
    run, exported, tmp_path, capsys
):
    model, folder = exported
    video = _synthetic_clip(tmp_path)
    argv = ["stream", str(run), str(video), "--onnx-dir", str(folder)]
    assert main([*argv, "--json", str(tmp_path / "given.jsonl")]) == 0  # implies onnxruntime
    assert (
        main(
            [
                "stream",
                str(run),
                str(video),
                "--engine",
                "torch",
                "--json",
                str(tmp_path / "t.jsonl"),
            ]
        )
        == 0
    )
    _same(_events(tmp_path / "given.jsonl"), _events(tmp_path / "t.jsonl"))
    capsys.readouterr()

    other_weights = save_run(  # the same architecture and classes, other weights
        tmp_path / "other", skips=("block2", "block4"), skip_type="linear", frame_size=SIZE, seed=7
    )
    other_classes = save_run(
        tmp_path / "four",
        skips=("block2", "block4"),
        skip_type="linear",
        frame_size=SIZE,
        seed=2,
        classes=CLASSES,
    )
    torchscript = tmp_path / "ts"
    shutil.copytree(folder, torchscript)
    desc = json.loads((torchscript / "model.json").read_text())
    (torchscript / "model.json").write_text(json.dumps({**desc, "format": "torchscript"}))
    (tmp_path / "empty").mkdir()
    refused = {
        (other_weights, folder): "is not this checkpoint's step: its logits differ from the "
        "model's by",
        (other_classes, folder): 'was exported from another model: its classes ["A", "B", "C"] '
        'differ from the checkpoint\'s ["A", "B", "C", "D"]',
        (run, torchscript): "holds a torchscript export; the onnxruntime engine needs rrn "
        "export --format onnx",
        (run, tmp_path / "empty"): "no readable model.json",
    }
    for (ckpt, onnx_dir), message in refused.items():
        rc = main(["stream", str(ckpt), str(video), "--onnx-dir", str(onnx_dir)])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert main([*argv, "--engine", "torch"]) == 2
    assert "--onnx-dir is an export for the onnxruntime engine" in capsys.readouterr().err


def _other_graph(path) -> None:
    """An ONNX graph of another input than the step's: ``clip`` -> Identity."""
    import onnx
    from onnx import TensorProto, helper

    clip = helper.make_tensor_value_info("clip", TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["clip"], ["out"])], "g", [clip], [out])
    onnx.save(helper.make_model(graph), path)


def _description(found: dict, **changes) -> str:
    return json.dumps({**found, **changes})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "step.onnx").write_bytes(b"garbage"), "cannot load its step graph ("),
        (lambda f: (f / "step.onnx").write_bytes(b""), "cannot load its step graph ("),
        (lambda f: _other_graph(f / "step.onnx"), "its step graph takes ['clip'], not the"),
        (lambda f: (f / "model.json").write_text("[" * 100_000), "no readable model.json (max"),
        (lambda f: (f / "model.json").write_text("[]"), "model.json (not laid out as rrn export"),
        (
            lambda f: (f / "model.json").write_text(
                _description(json.loads((f / "model.json").read_text()), step={"states": [1]})
            ),
            "model.json (not laid out as rrn export",
        ),
    ],
)
def test_a_damaged_export_folder_is_one_user_error_naming_it(exported, tmp_path, damage, message):
    model, folder = exported
    given = tmp_path / "given"
    shutil.copytree(folder, given)
    damage(given)
    with pytest.raises(UserError) as caught:
        make_engine(model, onnx_dir=given)
    assert str(caught.value).startswith(f"--onnx-dir {given}")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _synthetic_clip(tmp_path):
    data = make_synthetic_dataset(
        tmp_path / "data", classes=2, videos_per_class=2, frames=6, size=48, seed=2
    )
    return sorted(data.glob("*/*.avi"))[0]


# ---------------------------------------------------------------------------- choosing one
def test_the_default_is_onnxruntime_on_the_cpu_and_torch_elsewhere(exported):
    model, _ = exported
    assert default_engine("cpu") == "onnxruntime" and default_engine("cuda:0") == "torch"
    assert make_engine(model).name == "onnxruntime"
    on_gpu = copy.deepcopy(model).to("meta")  # a model off the CPU (no GPU needed to check)
    assert isinstance(make_engine(on_gpu), TorchEngine)
    with pytest.raises(UserError, match="runs on the CPU and the model is on meta: use --device"):
        make_engine(on_gpu, "onnxruntime")
    with pytest.raises(ConfigError, match="--engine: 'tensorrt' is not one of torch, onnxruntime"):
        StreamConfig(engine="tensorrt")
    with pytest.raises(ConfigError, match="--onnx-dir is an export for the onnxruntime engine"):
        StreamConfig(engine="torch", onnx_dir="x")


def test_without_onnxruntime_asking_for_it_is_an_error_and_the_default_is_torch(
    exported, monkeypatch, logged
):
    model, folder = exported
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # the exporter missing only
    assert make_engine(model, onnx_dir=folder).name == "onnxruntime"  # a given export needs none
    with pytest.raises(UserError, match=r"needs onnxscript: pip install 'rrn\[export\]'"):
        make_engine(model, "onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"needs onnxruntime: pip install 'rrn\[export\]'"):
        make_engine(model, "onnxruntime", onnx_dir=folder)
    del logged[:]
    assert isinstance(make_engine(model), TorchEngine)
    (note,) = _messages(logged)
    assert note.startswith("onnxruntime and onnxscript not installed: the model step runs in eager")


def test_threads_and_the_wait_policy_reach_onnx_runtime(exported, monkeypatch):
    model, folder = exported
    engine = engine_for(model, StreamConfig(threads=1, onnx_dir=str(folder)))
    assert engine.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # what rrn's command line sets
    options = OnnxEngine(folder, threads=2).session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# ---------------------------------------------------------------------------- the cache
def test_the_cache_is_keyed_by_the_weights_and_read_without_exporting(exported, monkeypatch):
    model, folder = exported
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.fc.bias.add_(1.0)
    assert export_key(other) != export_key(model) == folder.name
    assert export_key(copy.deepcopy(model)) == folder.name

    def no_export(model, out):
        raise AssertionError("exported again")

    monkeypatch.setattr(engines, "_export_step", no_export)
    assert make_engine(model).folder == folder


def test_a_damaged_or_unwritable_cache_still_gives_an_engine(
    exported, tmp_path, monkeypatch, logged
):
    model, good = exported
    exports = []

    def copy_export(model, out):  # the real export, without its seconds
        exports.append(out)
        shutil.copytree(good, out, dirs_exist_ok=True)

    monkeypatch.setattr(engines, "_export_step", copy_export)
    monkeypatch.setenv("RRN_CACHE_HOME", str(tmp_path / "cache"))
    folder = cached_export(model)
    assert folder.parent == tmp_path / "cache" / "onnx" and len(exports) == 1
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # renamed in place
    (folder / "step.onnx").write_bytes(b"not a graph")  # a disk error, a killed copy
    engine = make_engine(model, "onnxruntime")
    assert engine.folder == folder and len(exports) == 2
    (warning,) = _messages(logged, logging.WARNING)
    assert warning.startswith(f"the cached export {folder} is damaged (") and warning.endswith(
        "): exporting it again"
    )

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("RRN_CACHE_HOME", str(blocked / "cache"))
    engine = make_engine(model, "onnxruntime")
    assert len(exports) == 3 and not engine.folder.is_relative_to(blocked)
    assert _messages(logged, logging.WARNING)[-1].startswith(
        f"cannot write the ONNX cache {blocked / 'cache' / 'onnx'} ("
    )
