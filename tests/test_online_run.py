"""Online recognition: a stream's predictions equal forward_video's, events and segments, the
annotated video, keeping up with a live-paced source, and outputs that stay valid when the
stream is interrupted or dies."""

import json
import logging
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from cut_videos import cut_avi_before_frame
from rrn.checkpoint import load_model, make_checkpoint, save_checkpoint
from rrn.cli import main
from rrn.config import StreamConfig
from rrn.data import FrameSource, make_synthetic_dataset
from rrn.data.decode import decode_video
from rrn.data.sampling import Sampling
from rrn.data.synth import write_video
from rrn.online import (
    MultiStreamRecognizer,
    Outputs,
    SegmentTracker,
    SourceError,
    SourceFrame,
    SourceRun,
    StreamSummary,
    parse_source,
    run_sources,
    sampling_for,
    stream_source,
)
from runs import save_run

SIZE = 32
FPS = 25


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 48-frame video whose halves differ (a synthetic clip, then another one in inverted
    colours) and a T=3 model whose classifier tells the halves apart: A, then B."""
    tmp = tmp_path_factory.mktemp("stream")
    data = make_synthetic_dataset(tmp / "data", classes=2, videos_per_class=2, frames=24, size=96)
    first, second = (
        decode_video(sorted(data.glob(f"{c}/*.avi"))[0], Sampling(sample_every=1))
        for c in ("MoveRight", "MoveLeft")
    )
    video = write_video(tmp / "video.avi", np.concatenate([first, 255 - second]), fps=FPS)
    run = save_run(
        tmp / "run",
        skips=("block2", "block4"),
        skip_type="linear",
        frame_size=SIZE,
        sample_every=2,
        classes=("A", "B", "C"),
        seed=3,
    )
    model = load_model(run)
    _separate_halves(model, video)
    save_checkpoint(
        run / "last.pt",
        make_checkpoint(model, config=model.train_config.to_dict(), classes=model.classes),
    )
    return load_model(run), run, video


def _separate_halves(model, video) -> None:
    """Set the classifier to A for features like the first half's, B for the second's, C never."""
    frames = model.inputs.transform()(FrameSource(model.inputs.sampling)(video))  # (24, 3, S, S)
    with torch.no_grad():
        feats = model.video_features(frames, stages=(4,))[4]  # (24, C) pooled: what fc sees
        a, b = feats[:12].mean(0), feats[12:].mean(0)
        w = (a - b) * 8 / (a - b).norm() ** 2  # A - B logit: +-4 at the halves' means
        bias = -(w @ (a + b) / 2)
        model.fc.weight.copy_(torch.stack([w / 2, -w / 2, torch.zeros_like(w)]))
        model.fc.bias.copy_(torch.stack([bias / 2, -bias / 2, torch.tensor(-2.0)]))


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _decode_all(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _stream(model, video, tmp_path, **settings):
    preds = []
    cfg = StreamConfig(
        out=str(tmp_path / "annotated.mp4"), json=str(tmp_path / "events.jsonl"), **settings
    )
    summary = stream_source(model, str(video), cfg, on_prediction=lambda p, s: preds.append(p))
    return summary, preds


def test_predictions_equal_forward_video_on_evaluation_frames(setup, tmp_path):
    model, _, video = setup
    summary, preds = _stream(model, video, tmp_path)
    assert summary.status == "end" and summary.frames == 48
    assert [p.index for p in preds] == list(range(0, 48, 2))  # every 2nd frame, as trained
    assert [p.time for p in preds] == pytest.approx([i / FPS for i in range(0, 48, 2)])
    # Evaluation's frames (FrameSource: decode, resize) and transform, streamed at once.
    frames = model.inputs.transform()(FrameSource(model.inputs.sampling)(video))  # (N, 3, S, S)
    with torch.no_grad():
        expected = model.forward_video(frames).softmax(-1)  # (N, K)
    torch.testing.assert_close(
        torch.stack([p.probs for p in preds]), expected, atol=1e-5, rtol=1e-4
    )
    T = model.temporal_context  # smoothing defaults to the context
    for n, p in enumerate(preds):
        torch.testing.assert_close(p.smoothed, expected[max(0, n - T + 1) : n + 1].mean(0))


def test_events_and_segments(setup, tmp_path):
    model, _, video = setup
    summary, preds = _stream(model, video, tmp_path, smooth=1, labels=2)
    events = _events(tmp_path / "events.jsonl")
    assert events[0]["type"] == "start" and events[0]["classes"] == ["A", "B", "C"]
    assert events[0]["sampling"] == "every 2nd frame, short side 37" and events[0]["smooth"] == 1
    frames = [e for e in events if e["type"] == "frame"]
    assert [e["frame"] for e in frames] == [p.index for p in preds]
    for e, p in zip(frames, preds):
        assert len(e["top"]) == 2 and e["top"] == e["smoothed"]  # smooth=1: nothing averaged
        assert e["top"][0]["class"] == "ABC"[int(p.probs.argmax())]
        assert e["top"][0]["prob"] == pytest.approx(float(p.probs.max()), abs=1e-4)
    # Segments: runs of the same top class, each ending where the next starts.
    tops = ["ABC"[int(p.probs.argmax())] for p in preds]
    runs = [(tops[0], preds[0].time)]
    for cls, p in zip(tops[1:], preds[1:]):
        if cls != runs[-1][0]:
            runs.append((cls, p.time))
    ends = [start for _, start in runs[1:]] + [48 / FPS]
    segments = [e for e in events if e["type"] == "segment" and e["phase"] == "end"]
    starts = [e for e in events if e["type"] == "segment" and e["phase"] == "start"]
    assert (
        [s["segment_id"] for s in starts]
        == [s["segment_id"] for s in segments]
        == ["video:1", "video:2"]
    )
    assert [c for c, _ in runs] == ["A", "B"] and 0.8 <= runs[1][1] <= 1.12  # the cut: 0.96 s
    assert [(s["class"], s["start"], s["end"]) for s in segments] == [
        (c, pytest.approx(start), pytest.approx(end)) for (c, start), end in zip(runs, ends)
    ]
    assert sum(s["frames"] for s in segments) == len(preds) == summary.classified
    end = events[-1]
    assert end["type"] == "end" and end["status"] == "end" and end["frames"] == 48
    assert end["stopped_at"] == {"frame": 47, "time": pytest.approx(47 / FPS)}


def test_annotated_video_has_every_source_frame_and_the_labels(setup, tmp_path):
    model, _, video = setup
    summary, _ = _stream(model, video, tmp_path)
    written = _decode_all(tmp_path / "annotated.mp4")
    source = decode_video(video, Sampling(sample_every=1))
    assert written.shape == source.shape == (48, 96, 96, 3)
    diff = np.abs(written.astype(int) - source.astype(int))  # (N, H, W, 3)
    assert diff[:, 64:, 64:].mean() < 8  # away from the labels: the source, up to compression
    assert diff[:, :16, :16].mean() > 5 * diff[:, 64:, 64:].mean()  # the label box, top left
    with av.open(str(tmp_path / "annotated.mp4")) as c:
        assert c.streams.video[0].average_rate == FPS


def test_sampling_can_be_changed_for_the_stream(setup):
    model, _, _ = setup
    assert sampling_for(model) == Sampling(2, None, 37)
    assert sampling_for(model, sample_every=5) == Sampling(5, None, 37)
    assert sampling_for(model, fps=4) == Sampling(2, 4.0, 37)
    trained_by_time = Sampling(2, 4.0, 37)
    trained = model.info
    model.info = replace(trained, inputs=replace(trained.inputs, sampling=trained_by_time))
    try:
        assert sampling_for(model, sample_every=3) == Sampling(3, None, 37)  # the number given
    finally:
        model.info = trained


def test_realtime_drops_frames_when_the_model_falls_behind(setup, tmp_path):
    """The file is delivered at its frame rate (a live source); each step takes 100 ms while a
    sampled frame arrives every 80 ms, so the loop must skip to the newest frame. (The torch
    engine: the slow step is the model's own.)"""
    model, _, video = setup
    step = model.step_terms

    def slow_step(frame, terms):
        time.sleep(0.1)
        return step(frame, terms)

    model.step_terms = slow_step
    try:
        start = time.perf_counter()
        summary, preds = _stream(model, video, tmp_path, realtime=True, engine="torch")
        wall = time.perf_counter() - start
    finally:
        del model.step_terms
    assert summary.status == "end" and summary.frames == 48 and summary.sampled == 24
    # kept up by dropping frames, not by ending in time: a wall-clock bound (it ended about when
    # the 1.92 s source did) fails on a busy machine; that frames were dropped does not
    assert summary.dropped > 0 and summary.classified + summary.dropped == 24
    assert summary.classified <= wall / 0.1 + 1  # each step took its 0.1 s
    assert [p.index for p in preds] == sorted(p.index for p in preds)
    assert len(_decode_all(tmp_path / "annotated.mp4")) == 48  # every frame still written
    end = _events(tmp_path / "events.jsonl")[-1]
    assert end["dropped"] == summary.dropped and end["classified"] == len(preds)


def test_ctrl_c_keeps_the_outputs_valid(setup, tmp_path):
    model, _, video = setup

    def interrupt(pred, summary):
        if pred.index == 10:
            raise KeyboardInterrupt

    cfg = StreamConfig(out=str(tmp_path / "a.mp4"), json=str(tmp_path / "e.jsonl"))
    summary = stream_source(model, str(video), cfg, on_prediction=interrupt)
    assert summary.status == "interrupted" and summary.frames == 10  # frames 0-9 written
    assert summary.where() == "after frame 9 (0.36 s)"
    assert len(_decode_all(tmp_path / "a.mp4")) == 10
    events = _events(tmp_path / "e.jsonl")
    assert events[-1]["type"] == "end" and events[-1]["status"] == "interrupted"
    assert [e["frame"] for e in events if e["type"] == "frame"] == list(range(0, 11, 2))


def test_a_second_ctrl_c_while_the_outputs_close_keeps_their_summary(
    setup, tmp_path, caplog, monkeypatch
):
    from rrn.online import AnnotatedWriter
    from rrn.runtime.signals import StopRequest

    model, _, video = setup
    close = AnnotatedWriter.close

    def impatient_close(self):  # the user presses Ctrl-C again while the video is finalised
        signal.raise_signal(signal.SIGINT)
        close(self)

    def first_ctrl_c(pred, summary):
        if pred.index == 10:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(AnnotatedWriter, "close", impatient_close)
    cfg = StreamConfig(out=str(tmp_path / "a.mp4"), json=str(tmp_path / "e.jsonl"))
    try:
        with caplog.at_level(logging.INFO, logger="rrn"), StopRequest() as stop:
            summary = stream_source(model, str(video), cfg, on_prediction=first_ctrl_c, stop=stop)
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C cut the closing of the outputs: no summary")
    assert summary.status == "interrupted" and summary.frames == 11
    assert len(_decode_all(tmp_path / "a.mp4")) == 11
    end = _events(tmp_path / "e.jsonl")[-1]
    assert end["type"] == "end" and end["status"] == "interrupted" and end["frames"] == 11
    assert "SIGINT again: already stopping, closing the outputs" in caplog.text


@pytest.mark.parametrize("signum, rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_ctrl_c_stops_at_a_frame_and_keeps_the_outputs_valid(
    setup, tmp_path, capsys, monkeypatch, signum, rc
):
    """A real Ctrl-C (or SIGTERM) while a file plays at its frame rate: outputs complete.

    The signal is sent once the first frame is written (the outputs are open), and that frame's
    write waits for it: on a busy machine a timer could fire before the outputs exist, or after
    the stream ended."""
    from rrn.online import AnnotatedWriter

    _, run, video = setup
    written, sent, finished = threading.Event(), threading.Event(), threading.Event()
    write = AnnotatedWriter.write

    def write_then_wait_for_the_signal(self, av_frame):
        write(self, av_frame)
        written.set()
        sent.wait(60)

    def send_after_the_first_frame():
        if written.wait(120) and not finished.is_set():  # the stream waits in that write
            os.kill(os.getpid(), signum)
        sent.set()

    monkeypatch.setattr(AnnotatedWriter, "write", write_then_wait_for_the_signal)
    before = signal.getsignal(signum)
    sender = threading.Thread(target=send_after_the_first_frame, daemon=True)
    sender.start()
    try:
        code = main(
            [
                "stream",
                str(run),
                str(video),
                "--realtime",
                "--out",
                str(tmp_path / "a.mp4"),
                "--json",
                str(tmp_path / "e.jsonl"),
            ]
        )
    finally:
        finished.set()  # no signal once main has returned (a stream that never wrote a frame)
        written.set()
        sender.join(60)
    assert signal.getsignal(signum) is before  # restored
    end = _events(tmp_path / "e.jsonl")[-1]
    assert code == rc and end["status"] == "interrupted" and 0 < end["frames"] < 48
    out = capsys.readouterr().out
    assert f"{signal.Signals(signum).name} received; stopping after the current frame" in out
    assert f"was stopped after frame {end['frames'] - 1} " in out
    assert len(_decode_all(tmp_path / "a.mp4")) == end["frames"]


def _frames(video, n, error=True):
    """The first n frames of ``video``; then a decode error, or the end."""
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == n:
                if error:
                    raise av.error.InvalidDataError(1094995529, "Invalid data found")
                return
            yield SourceFrame(i, i / FPS, frame)


def test_a_file_cut_between_frames_is_a_truncated_stream(setup, tmp_path, capsys):
    """FFmpeg reads a file cut at a frame boundary as a short video; the header says otherwise."""
    _, run, video = setup
    cut = cut_avi_before_frame(video, tmp_path / "cut.avi", 30)  # frames 0-29, header: 48
    rc = main(
        [
            "stream",
            str(run),
            str(cut),
            "--out",
            str(tmp_path / "a.mp4"),
            "--json",
            str(tmp_path / "e.jsonl"),
        ]
    )
    events = _events(tmp_path / "e.jsonl")
    (error,) = [e for e in events if e["type"] == "error"]
    end = events[-1]
    assert rc == 1 and end["status"] == "error" and end["frames"] == 30 and end["errors"] == 1
    assert (
        error["type"] == "error" and error["kind"] == "source" and error["message"] == end["reason"]
    )
    assert (
        end["reason"].startswith("cannot decode video")
        and "truncated: 30 of 48 frames" in end["reason"]
    )
    assert "the stream stopped after frame 29 (1.16 s)" in capsys.readouterr().err
    assert len(_decode_all(tmp_path / "a.mp4")) == 30


def test_a_source_dying_mid_way_keeps_the_outputs_valid(setup, tmp_path):
    model, _, video = setup

    from rrn.online import AnnotatedWriter, EventLog

    outputs = Outputs(
        writer=AnnotatedWriter(tmp_path / "a.mp4", FPS), events=EventLog(tmp_path / "e.jsonl")
    )
    summary = StreamSummary("v")
    run_sources(
        MultiStreamRecognizer(model),
        [SourceRun("v", _frames(video, 17), outputs, summary, rate=FPS)],
    )
    assert summary.status == "error" and "Invalid data" in summary.error
    assert summary.where() == "after frame 16 (0.64 s)" and summary.frames == 17
    assert len(_decode_all(tmp_path / "a.mp4")) == 17
    events = _events(tmp_path / "e.jsonl")
    assert events[-1]["status"] == "error" and events[-1]["stopped_at"]["frame"] == 16
    assert events[-2]["type"] == "segment" and events[-2]["end"] == pytest.approx(17 / FPS)


def test_cli_on_a_truncated_file(setup, tmp_path, capsys):
    _, run, video = setup
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    rc = main(
        [
            "stream",
            str(run),
            str(cut),
            "--out",
            str(tmp_path / "a.mp4"),
            "--json",
            str(tmp_path / "e.jsonl"),
        ]
    )
    captured = capsys.readouterr()
    end = _events(tmp_path / "e.jsonl")[-1]
    assert 0 < end["frames"] < 48 and end["status"] == "error" and rc == 1
    assert f"failed after frame {end['frames'] - 1} " in captured.out
    assert f"the stream stopped after frame {end['frames'] - 1} " in captured.err
    assert len(_decode_all(tmp_path / "a.mp4")) == end["frames"]


def test_cli_summary_and_sampling_flag(setup, tmp_path, capsys):
    _, run, video = setup
    assert main(["stream", str(run), str(video), "--sample-every", "4", "--smooth", "1"]) == 0
    out = capsys.readouterr().out
    assert (
        "ended after frame 47 (1.88 s): 48 frames read, 12 sampled, 12 classified, 0 dropped" in out
    )
    assert "step latency" in out and " - " in out  # the segments


def test_cli_one_line_errors_for_sources_that_cannot_be_opened(setup, tmp_path, capsys):
    _, run, _ = setup
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    for source, message in [
        (str(tmp_path / "missing.mp4"), "no such video file"),
        (str(bad), f"cannot open file {bad}"),
        ("http://127.0.0.1:9/stream.mp4", "cannot open network"),
        ("/dev/video99", "cannot open camera /dev/video99"),
        (str(tmp_path), "is a folder"),
    ]:
        assert main(["stream", str(run), source, "--timeout", "2"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_outputs_that_would_overwrite_the_source_or_each_other_are_refused(setup, tmp_path, capsys):
    _, run, clip = setup
    before = Path(clip).read_bytes()
    for extra, message in [
        (["--out", str(clip)], "is the source video"),
        (["--json", str(clip)], "is the source video"),
        (
            ["--out", str(tmp_path / "a.mp4"), "--json", str(tmp_path / "a.mp4")],
            "are the same file",
        ),
    ]:
        assert main(["stream", str(run), str(clip), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert Path(clip).read_bytes() == before
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["stream", str(run), str(clip), "--out", str(blocked / "a.mp4")]) == 2
    assert f"cannot write to the output directory {blocked}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "source, platform, expected",
    [
        ("rtsp://cam.local/live", "linux", ("network", "rtsp://cam.local/live", None)),
        ("https://host/v.m3u8", "linux", ("network", "https://host/v.m3u8", None)),
        ("udp://0.0.0.0:5000", "linux", ("network", "udp://0.0.0.0:5000", None)),
        ("/dev/video2", "linux", ("camera", "/dev/video2", "v4l2")),
        ("camera:0", "linux", ("camera", "/dev/video0", "v4l2")),
        ("camera:1", "darwin", ("camera", "1:none", "avfoundation")),
        ("camera:Integrated Camera", "win32", ("camera", "video=Integrated Camera", "dshow")),
    ],
)
def test_parse_source(source, platform, expected):
    spec = parse_source(source, platform)
    assert (spec.kind, spec.target, spec.format) == expected
    assert spec.live
    assert ("rtsp_transport" in spec.options) == source.startswith("rtsp")


def test_parse_source_errors(tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        parse_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="name a camera"):
        parse_source("camera:")
    f = tmp_path / "v.mp4"
    f.write_bytes(b"x")
    assert not parse_source(str(f)).live


def test_segment_tracker_announces_start_update_and_end_with_one_id():
    t = SegmentTracker("cam", update_interval=0.5)
    start = t.update("A", 0.5, 0.0)
    assert start == [
        {
            "type": "segment",
            "stream": "cam",
            "segment_id": "cam:1",
            "phase": "start",
            "class": "A",
            "start": 0.0,
            "frames": 1,
            "mean_prob": 0.5,
            "peak_prob": 0.5,
            "last": 0.0,
        }
    ]
    assert t.update("A", 0.7, 0.4) == []  # less than update_interval since the start
    (update,) = t.update("A", 0.9, 0.6)
    assert update["phase"] == "update" and update["segment_id"] == "cam:1" and update["frames"] == 3
    end, start_b = t.update("B", 0.9, 0.8)
    assert end == {
        "type": "segment",
        "stream": "cam",
        "segment_id": "cam:1",
        "phase": "end",
        "class": "A",
        "start": 0.0,
        "end": 0.8,
        "frames": 3,
        "mean_prob": 0.7,
        "peak_prob": 0.9,
        "last": 0.6,
    }
    assert start_b["segment_id"] == "cam:2" and start_b["phase"] == "start"
    (last,) = t.finish(1.2)
    assert last["phase"] == "end" and last["end"] == 1.2 and last["segment_id"] == "cam:2"
    assert t.finish(2.0) == [] and [d["segment_id"] for d in t.done] == ["cam:1", "cam:2"]


def test_threshold_and_minimum_duration_keep_flicker_out():
    t = SegmentTracker("s", threshold=0.6, min_duration=1.0)
    records = []
    # A for 0.8 s (too short), B below the threshold, then C for 1.2 s.
    for time_s, cls, prob in [
        (0.0, "A", 0.9),
        (0.4, "A", 0.9),
        (0.8, "B", 0.5),
        (1.2, "C", 0.8),
        (1.6, "C", 0.8),
        (2.0, "C", 0.8),
        (2.4, "C", 0.8),
        (2.8, "A", 0.9),
    ]:
        records += t.update(cls, prob, time_s)
    records += t.finish(3.2)
    assert [(r["phase"], r["class"], r["start"], r.get("end")) for r in records] == [
        ("start", "C", 1.2, None),
        ("end", "C", 1.2, 2.8),
    ]
    assert records[0]["last"] == 2.4  # announced once it had lasted min_duration


def test_streaming_benchmark_quick_mode(tmp_path):
    """benchmarks/stream.py --quick: every column and target is computed (numbers not judged)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stream.py"
    spec = importlib.util.spec_from_file_location("stream_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--out", str(tmp_path / "r.md")]) == 0
    finally:
        torch.set_num_threads(threads)
    text = (tmp_path / "r.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| resnet18 | 64 | 1 |"))
    assert len(row.split("|")) == 13 and row.count(" / ") == 4
    section = text.split("## The engines")[1].split("## End to end")[0]
    engines = [line for line in section.splitlines() if line.startswith("| resnet18 | 64 | 1 | ")]
    assert [r.split("|")[4].strip() for r in engines] == ["1", "2"]  # the batches, both engines
    assert all(r.count(" / ") == 2 and r.endswith("x** |") for r in engines)
    for engine in ("torch", "onnxruntime"):
        assert f"| {engine} | whole file | 50 | 5 | 0 |" in text
        assert f"| {engine} | `--realtime`" in text
    assert text.count("- [") == 6 and "generated clip (--quick)" in text


def test_annotated_video_of_an_odd_sized_source(setup, tmp_path):
    """yuv420p needs even sides: an odd-sized source is written one pixel smaller, every frame."""
    model, _, _ = setup
    frames = np.random.default_rng(0).integers(0, 255, (7, 45, 61, 3), dtype=np.uint8)
    video = write_video(tmp_path / "odd.avi", frames, fps=FPS)
    summary, preds = _stream(model, video, tmp_path)
    assert summary.status == "end" and len(preds) == 4  # frames 0, 2, 4, 6
    assert _decode_all(tmp_path / "annotated.mp4").shape == (7, 44, 60, 3)


def test_several_sources_are_stepped_together_each_with_its_outputs(setup, tmp_path, capsys):
    """rrn stream CKPT A B: one batched step per round, one annotated video and one events file
    per source, the combined events in --json; each source's predictions equal it alone."""
    _, run, video = setup
    other = tmp_path / "other.avi"
    other.write_bytes(video.read_bytes())
    out = tmp_path / "out"
    assert (
        main(
            [
                "stream",
                str(run),
                str(video),
                str(other),
                "--out",
                str(out),
                "--json",
                str(tmp_path / "all.jsonl"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        f"annotated video: {out}/video.mp4" in text and f"events: {out}/other.events.jsonl" in text
    )
    per = {name: _events(out / f"{name}.events.jsonl") for name in ("video", "other")}
    combined = _events(tmp_path / "all.jsonl")
    for name, events in per.items():
        assert {e["stream"] for e in events} == {name}
        assert len(_decode_all(out / f"{name}.mp4")) == 48 and events[-1]["frames"] == 48
        assert [e for e in combined if e["stream"] == name] == events
    frames = [[e for e in per[n] if e["type"] == "frame"] for n in ("video", "other")]
    assert [f["top"] for f in frames[0]] == [f["top"] for f in frames[1]]  # the same file twice
    alone = _events_alone(run, video, tmp_path)
    assert [f["top"] for f in frames[0]] == [f["top"] for f in alone]


def _events_alone(run, video, tmp_path):
    assert main(["stream", str(run), str(video), "--json", str(tmp_path / "alone.jsonl")]) == 0
    return [e for e in _events(tmp_path / "alone.jsonl") if e["type"] == "frame"]
