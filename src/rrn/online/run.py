"""Opening sources and their outputs for ``rrn stream``: one or many files, cameras or network
streams (:func:`stream_sources`), each with its annotated video, events file and ``start``
event, then run together by the round loop (:mod:`rrn.online.loop`: one batched model step per
round). Outputs are checked before any source is opened (:func:`check_outputs`): none may
overwrite a source or another output. The loop's names are importable from here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rrn.errors import ConfigError
from rrn.online.events import EventLog, SegmentTracker, background_name, event, start_fields
from rrn.online.loop import (  # noqa: F401 - the loop's names, importable from here as before
    POLL_S,
    Outputs,
    SourceRun,
    StreamSummary,
    closing,
    percentile,
    run_sources,
    stall_message,
)
from rrn.online.recognizer import MultiStreamRecognizer, interval_seconds
from rrn.online.render import AnnotatedWriter
from rrn.online.sources import LiveFrames, SourceSpec

logger = logging.getLogger(__name__)


def stream_names(sources: list[str]) -> list[str]:
    """A short, unique, file-name-safe name per source: the file's stem, ``camera0``, or the
    URL's host and path; a repeated name gets ``-2``, ``-3``..."""
    import re
    from pathlib import PurePath
    from urllib.parse import urlparse

    names, seen = [], {}
    for source in sources:
        url = urlparse(source)
        if url.scheme and url.netloc:
            base = f"{url.hostname or 'stream'}{url.path}"
        elif source.startswith(("/dev/video", "camera:")):
            base = "camera" + re.sub(r"\D", "", source)
        else:
            base = PurePath(source).stem
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "stream"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def check_outputs(specs: list[SourceSpec], out: str | None, json_path: str | None) -> None:
    """Refuse outputs that would overwrite a source or each other, and unwritable ones.

    With several sources ``out`` is a folder (one annotated video and one events file per
    source); with one, the annotated video's file.

    Raises:
        ConfigError: an output is a source, or both outputs are one file.
        OSError: an output's folder cannot be written.
    """
    from pathlib import Path

    from rrn.files import check_writable

    if out and len(specs) > 1:
        if Path(out).exists() and not Path(out).is_dir():
            raise ConfigError(
                f"--out {out} is a file; with several sources --out names a folder "
                "for one annotated video and one events file per source"
            )
        check_writable(out, "--out")
        out = None  # the per-source files are new names inside a folder just checked
    given = [(flag, Path(p)) for flag, p in (("--out", out), ("--json", json_path)) if p]
    if len(given) == 2 and given[0][1].resolve() == given[1][1].resolve():
        raise ConfigError(f"--out and --json are the same file ({out}); give each its own")
    for flag, path in given:
        for spec in specs:
            if spec.kind == "file" and path.resolve() == Path(spec.target).resolve():
                raise ConfigError(
                    f"{flag} {path} is the source video {spec.name}: it would be "
                    "overwritten; write elsewhere"
                )
        check_writable(path.parent, flag)  # before the stream is opened, not at its first frame


@dataclass
class _Opened:
    spec: SourceSpec
    container: object
    live: LiveFrames | None
    run: SourceRun


def stream_sources(
    model,
    sources: list[str],
    config,
    *,
    sampling=None,
    on_prediction=None,
    on_event=None,
    stop=None,
) -> list[StreamSummary]:
    """Open ``sources`` and classify them online with ``model``, batched (``rrn stream``).

    Args:
        model: From :func:`rrn.load_model`.
        sources: Files, cameras or URLs (:func:`~rrn.online.sources.parse_source`).
        config: A :class:`~rrn.config.StreamConfig` (outputs, smoothing, realtime, timeout,
            segment threshold and minimum duration).
        sampling: Which frames to classify (default: the model's training sampling).
        on_prediction: Called after each classified frame with (prediction, summary).
        on_event: Called with every event record, of every source.
        stop: Ends every stream once requested (a :class:`~rrn.runtime.signals.StopRequest`).

    Returns:
        One :class:`StreamSummary` per source, in order; ``status`` is ``end``,
        ``interrupted`` or ``error``. The outputs are complete and valid in every case.

    Raises:
        SourceError: a source cannot be opened (one line: which and why); nothing is written.
    """
    from rrn.online.engines import engine_for
    from rrn.online.sources import parse_source

    specs = [parse_source(s) for s in sources]
    check_outputs(specs, config.out, config.json)
    recognizer = MultiStreamRecognizer(
        model, sampling, config.smooth, engine=engine_for(model, config)
    )
    shared = _open_log(config.json) if config.json and len(specs) > 1 else None
    opened: list[_Opened] = []
    try:
        for name, spec in zip(stream_names(sources), specs):
            opened.append(
                _open(
                    spec,
                    name,
                    config,
                    len(specs) > 1,
                    recognizer,
                    on_prediction=on_prediction,
                    on_event=_chain(on_event, shared),
                )
            )
        run_sources(recognizer, [o.run for o in opened], stop)
        return [o.run.summary for o in opened]
    finally:
        with closing(stop):
            # a reader thread still inside FFmpeg must not see its container closed
            for o in opened:
                if o.live is None or o.live.close():
                    o.container.close()
            if shared is not None:
                shared.close()


def _chain(on_event, shared: EventLog | None):
    if shared is None:
        return on_event

    def both(record: dict) -> None:
        shared.write(record)
        if on_event is not None:
            on_event(record)

    return both


def _open_log(path) -> EventLog:
    try:
        return EventLog(path)
    except OSError as err:
        raise OSError(f"cannot write {path} ({err.strerror or err})") from None


def _open(
    spec: SourceSpec, name: str, config, many: bool, recognizer, *, on_prediction, on_event
) -> _Opened:
    """Open one source and its outputs; its ``start`` event is emitted here."""
    from pathlib import Path

    from rrn.data.decode import stream_rate
    from rrn.online.sources import open_source, read_frames

    container, video = open_source(spec, config.timeout)
    rate = stream_rate(video)
    frames = read_frames(container, video, config.realtime and not spec.live, spec.name)
    live = LiveFrames(frames) if config.realtime else None
    video_path = Path(config.out) / f"{name}.mp4" if many and config.out else config.out
    events_path = (
        Path(config.out) / f"{name}.events.jsonl"
        if many and config.out
        else (None if many else config.json)
    )
    outputs = Outputs(
        labels=config.labels,
        on_prediction=on_prediction,
        on_event=on_event,
        writer=AnnotatedWriter(video_path, rate) if video_path else None,
    )
    if events_path:
        outputs.events = _open_log(events_path)
    summary = StreamSummary(spec.name, name, spec.live)
    segments = SegmentTracker(
        name, config.threshold, config.min_segment, background=background_name(recognizer.classes)
    )
    run = SourceRun(
        name,
        live if live is not None else frames,
        outputs,
        summary,
        rate=rate,
        segments=segments,
        timeout=config.timeout if spec.live else None,
    )
    outputs.emit(_start_event(recognizer, spec, name, rate, config))
    return _Opened(spec, container, live, run)


def _start_event(
    recognizer: MultiStreamRecognizer, spec: SourceSpec, name: str, rate: float, config
) -> dict:
    interval = interval_seconds(recognizer.sampling, rate)
    return event(
        "start",
        name,
        **start_fields(recognizer.model, recognizer, interval, config),
        source=spec.name,
        kind=spec.kind,
        rate=round(rate, 3),
        realtime=config.realtime,
    )


def stream_source(model, source: str, config, **kwargs) -> StreamSummary:
    """:func:`stream_sources` for one source; returns its summary."""
    return stream_sources(model, [source], config, **kwargs)[0]
