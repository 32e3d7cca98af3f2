"""The events schema (rrn.online.events): one module builds every record of rrn stream and rrn
serve; a record the schema does not describe is a bug, refused where it is made."""

import json
import struct

import pytest

from rrn.online.events import FIELDS, OPTIONAL, event


def test_a_record_must_follow_the_schema():
    ok = event("dropped", "cam", frame=3, count=1, reason="behind")
    assert ok == {"type": "dropped", "stream": "cam", "frame": 3, "count": 1, "reason": "behind"}
    with pytest.raises(ValueError, match="unknown event type 'drop'"):
        event("drop", "cam")
    with pytest.raises(ValueError, match=r"missing \['reason'\]"):
        event("dropped", "cam", frame=3, count=1)
    with pytest.raises(ValueError, match=r"unknown \['why'\]"):
        event("dropped", "cam", frame=3, count=1, reason="behind", why="x")
    # optional fields are allowed and come after the required ones, in the schema's order
    assert list(event("error", "c", frame=2, message="m", kind="frame")) == [
        "type",
        "stream",
        "kind",
        "message",
        "frame",
    ]


def _check(record: dict) -> None:
    kind = record["type"]
    keys = [k for k in record if k not in ("type", "stream")]
    assert set(FIELDS[kind]) <= set(keys) <= set(FIELDS[kind] + OPTIONAL[kind]), record


def test_the_docs_list_every_event_type_and_field():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "online.md").read_text()
    for kind, fields in FIELDS.items():
        row = next((ln for ln in text.splitlines() if ln.strip().startswith(f"| `{kind}` |")), None)
        assert row is not None, f"docs/online.md has no row for {kind}"
        for name in fields + OPTIONAL[kind]:
            assert f"`{name}`" in row, (kind, name)


def test_rrn_stream_writes_every_record_by_the_schema(tmp_path):
    from cut_videos import cut_avi_before_frame
    from rrn.cli import main
    from rrn.data import make_synthetic_dataset
    from runs import save_run

    data = make_synthetic_dataset(tmp_path / "d", classes=2, videos_per_class=2, frames=48, size=32)
    video = sorted(data.glob("*/*.avi"))[0]
    cut = cut_avi_before_frame(video, tmp_path / "cut.avi", 30)
    run = save_run(tmp_path / "run", frame_size=32, sample_every=2)
    main(
        [
            "stream",
            str(run),
            str(video),
            str(cut),
            "--out",
            str(tmp_path / "o"),
            "--json",
            str(tmp_path / "all.jsonl"),
        ]
    )
    records = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    for r in records:
        _check(r)
    kinds = {r["type"] for r in records}
    assert {"start", "frame", "segment", "error", "end"} <= kinds
    start = next(r for r in records if r["type"] == "start")
    assert start["checkpoint"] == "run/last.pt" and start["interval_s"] == pytest.approx(0.08)


def test_rrn_serve_sends_every_record_by_the_schema(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rrn import load_model
    from rrn.config import ServeConfig
    from rrn.serve.app import create_app
    from runs import save_run
    from serve_client import jpeg_frame

    run = save_run(tmp_path / "run", frame_size=32, sample_every=1)
    app = create_app(load_model(run), ServeConfig(allowed_hosts=("testserver",), max_fps=3))
    records = []
    with TestClient(app) as client:
        with client.websocket_connect("/v1/streams/a") as ws:
            records.append(ws.receive_json())
            for i in range(5):  # the 4th and 5th are over --max-fps 3: dropped
                ws.send_bytes(jpeg_frame(i * 0.04, i))
            ws.send_bytes(struct.pack("<d", -1.0) + b"x")  # an error
            ws.send_text('{"type": "end"}')
            while records[-1]["type"] != "end":
                records.append(ws.receive_json())
        with (
            client.websocket_connect("/v1/streams/a") as a,
            client.websocket_connect("/v1/streams/a") as b,
        ):
            a.receive_json()
            records.append(b.receive_json())  # refused: the id is open
    for r in records:
        _check(r)
    kinds = [r["type"] for r in records]
    assert {"start", "frame", "segment", "dropped", "error", "end"} <= set(kinds)
    assert records[-1]["kind"] == "refused"


def test_no_segment_ever_opens_for_the_background_class():
    from rrn.online.events import SegmentTracker

    t = SegmentTracker("cam", threshold=0.5, background="Background")
    records = []
    for time_s, cls, prob in [
        (0.0, "Background", 0.9),  # nothing is happening: no segment
        (0.4, "Diving", 0.7),  # an action opens one
        (0.8, "Diving", 0.8),
        (1.2, "Background", 0.6),  # back to nothing: it ends
        (1.6, "Background", 0.99),
        (2.0, "Diving", 0.4),  # an action below the threshold: nothing
    ]:
        records += t.update(cls, prob, time_s)
    records += t.finish(2.4)
    assert [(r["phase"], r["class"], r["start"], r.get("end")) for r in records] == [
        ("start", "Diving", 0.4, None),
        ("end", "Diving", 0.4, 1.2),
    ]


def test_a_detection_model_names_its_background_class(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rrn import load_model
    from rrn.config import ServeConfig
    from rrn.serve.app import create_app
    from runs import save_run

    for classes, background in ((("Background", "A", "B"), "Background"), (("A", "B"), None)):
        run = save_run(tmp_path / "-".join(classes), frame_size=32, classes=classes)
        app = create_app(load_model(run), ServeConfig(allowed_hosts=("testserver",)))
        with TestClient(app) as client, client.websocket_connect("/v1/streams/s") as ws:
            assert client.get("/v1/model").json()["background"] == background
            assert ws.receive_json()["background"] == background


def test_a_checkpoint_is_named_without_the_servers_file_system():
    from rrn.online.events import checkpoint_name

    assert checkpoint_name("/srv/runs/ucf1/best.pt") == "ucf1/best.pt"
    assert checkpoint_name("/srv/packages/ucf1-rrn") == "packages/ucf1-rrn"
    hub = "/root/.cache/huggingface/hub/models--org--rrn-ucf/snapshots/0123456789abcdef0123"
    assert checkpoint_name(hub) == "hf://org/rrn-ucf@0123456789ab"
    assert checkpoint_name(None) is None
