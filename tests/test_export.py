"""Export: the exported step with zero initial state equals step(frame, None), stepping it through
a video equals forward_video, the chunk graph equals model(clip); ONNX Runtime and TorchScript."""

import json
import re

import numpy as np
import pytest
import torch

from rrn.checkpoint import load_model
from rrn.cli import main
from rrn.export import ExportedModel, export_model
from rrn.model import SKIP_TYPES
from runs import save_run

SIZE = 32
TOL = 1e-4
# Every registered skip type, at every position the paper names in one model (T = 5), but linear
# skips at stage 4 only (T = 3); midblock4 is the projection block, where a zero block input is
# not a zero temporal term. (An ONNX export takes ~10 s of CPU: one model per skip type.)
PAPER_POSITIONS = ("block1", "block2", "midblock4", "block4")
POSITIONS = {"linear": ("midblock4", "block4")}
CASES = {
    f"{t}-T{len(POSITIONS.get(t, PAPER_POSITIONS)) + 1}": (POSITIONS.get(t, PAPER_POSITIONS), t)
    for t in SKIP_TYPES
}


def _video(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=["onnx", "torchscript"])
def fmt(request):
    if request.param == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    return request.param


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, fmt, tmp_path_factory):
    skips, skip_type = CASES[request.param]
    tmp = tmp_path_factory.mktemp(f"export-{request.param}-{fmt}")
    model = load_model(save_run(tmp / "run", skips=skips, skip_type=skip_type, frame_size=SIZE))
    report = export_model(model, tmp / "out", fmt, check=False)
    return model, report, ExportedModel(report.out)


def test_zero_state_is_no_previous_frame(exported):
    model, _, runner = exported
    frames = _video(3)
    with torch.no_grad():
        expected, _ = model.step(frames, None)
    runner.reset(batch=3)  # three videos side by side: the batch axis is dynamic
    np.testing.assert_allclose(runner.step(frames.numpy()), expected.numpy(), atol=TOL, rtol=0)


def test_stepping_through_a_video_equals_forward_video(exported):
    model, _, runner = exported
    video = _video(model.temporal_context + 4, seed=1)
    with torch.no_grad():
        expected = model.forward_video(video).numpy()  # (N, K)
    np.testing.assert_allclose(runner.run_video(video.numpy()), expected, atol=TOL, rtol=0)


def test_chunk_graph_equals_model(exported):
    model, _, runner = exported
    for batch in (1, 3):
        clips = torch.randn(
            batch,
            model.temporal_context,
            3,
            SIZE,
            SIZE,
            generator=torch.Generator().manual_seed(batch),
        )
        with torch.no_grad():
            expected = model(clips).numpy()
        np.testing.assert_allclose(runner.chunk(clips.numpy()), expected, atol=TOL, rtol=0)


def test_model_json_describes_the_graphs(exported):
    model, report, _ = exported
    desc = json.loads((report.out / "model.json").read_text())
    assert desc["classes"] == ["A", "B", "C"] and desc["temporal_context"] == model.temporal_context
    inputs = desc["inputs"]
    assert inputs["frame_size"] == SIZE and inputs["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert inputs["sample_every"] == 1 and inputs["channels"] == "RGB"
    assert desc["preprocessing"].startswith(
        "frames: every frame, short side 37 (RGB, resized by area)"
    )
    states = desc["step"]["states"]
    assert [s["block"] for s in states] == list(model.skip_blocks)
    assert [tuple(s["shape"]) for s in states] == model.term_shapes(SIZE)
    assert [s["input"] for s in states] == [f"state_in_{j}" for j in range(len(states))]
    assert all(s["initial"] == "zeros" for s in states)
    assert sorted(p.name for p in report.out.iterdir()) == sorted(
        [desc["step"]["file"], desc["chunk"]["file"], "model.json"]
    )


@pytest.mark.parametrize("fmt", ["onnx"], indirect=True)  # TorchScript has no input names
def test_onnx_graph_names_and_shapes_are_model_json(exported):
    """The contract as a deployment reads it: names, shapes and zeros straight from model.json."""
    model, report, _ = exported
    import onnxruntime as ort

    desc = json.loads((report.out / "model.json").read_text())
    session = ort.InferenceSession(str(report.out / desc["step"]["file"]))
    states = desc["step"]["states"]
    assert {i.name: i.shape for i in session.get_inputs()} == {
        "frame": ["batch", 3, SIZE, SIZE],
        **{s["input"]: ["batch", *s["shape"][1:]] for s in states},
    }
    assert [o.name for o in session.get_outputs()] == ["logits", *(s["output"] for s in states)]
    feeds = {s["input"]: np.zeros(s["shape"], np.float32) for s in states}
    logits = []
    video = _video(model.temporal_context + 1, seed=2)
    for frame in video.numpy():
        out, *state = session.run(
            ["logits", *(s["output"] for s in states)], {"frame": frame[None], **feeds}
        )
        feeds = {s["input"]: v for s, v in zip(states, state)}
        logits.append(out)
    with torch.no_grad():
        expected = model.forward_video(video).numpy()
    np.testing.assert_allclose(np.concatenate(logits), expected, atol=TOL, rtol=0)


def test_cli_exports_and_checks(tmp_path, capsys):
    run = save_run(
        tmp_path / "run", skips=("block2", "block4"), skip_type="linear", frame_size=SIZE
    )
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "ts")]) == 0
    out = capsys.readouterr().out
    assert "step.pt" in out and "chunk.pt" in out and "zeros at start" in out
    diffs = re.search(r"step through a video (\S+), chunk classifier (\S+)", out).groups()
    assert max(float(d) for d in diffs) < TOL
    assert (tmp_path / "ts" / "model.json").is_file()


def test_cli_errors(tmp_path, capsys):
    run = save_run(tmp_path / "run", frame_size=SIZE)
    assert main(["export", str(run)]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(tmp_path / "x"), "--format", "tflite"]) == 2
    assert "not one of onnx, torchscript" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for fmt in ("onnx", "torchscript"):  # an unwritable --out: one line, before any tracing
        assert main(["export", str(run), "--out", str(blocked / "x"), "--format", fmt]) == 2
        err = capsys.readouterr().err
        assert (
            f"cannot write to the output directory {blocked / 'x'}" in err
            and len(err.strip().splitlines()) == 1
        )
