"""benchmarks/serve.py --quick: a real server per engine, two WebSocket clients, every column and
target computed (the numbers are not judged here: speed lives in the benchmark, not in tests)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "serve.py"


def test_serving_benchmark_quick_mode(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve"] = bench  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.modules.pop("bench_serve", None)
    out = tmp_path / "serve.md"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text()
    for engine in ("torch", "onnxruntime"):  # both engines, one server after the other
        assert f"| resnet18 | {engine} | 16 | 2 |" in text
        assert f"| resnet18 | {engine} | 1 | 2 |" in text
        assert f"- resnet18, {engine}: saturated" in text
    assert "classified frames/s with max batch 16 vs" in text and "batched >= 1.4x" in text
    assert "resnet18: onnxruntime sustains >= 1.2x the streams of torch eager" in text
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| resnet18")]
    assert len(rows) == 4
    for row in rows:
        sampled, classified, dropped = (int(row[i]) for i in (5, 6, 7))
        assert sampled > 0 and classified + dropped <= sampled and classified > 0
        step_ms, mean_batch = float(row[11]), float(row[12])  # from the server's /metrics
        assert step_ms > 0 and 1 <= mean_batch <= 2
