"""benchmarks/hostile.py --quick: a real server, its hostile inputs refused, every section
computed (the numbers are not judged here: speed lives in the benchmark, not in tests)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "hostile.py"


def test_hostile_benchmark_quick_mode(tmp_path):
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_hostile", BENCH)
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        out = tmp_path / "hostile.md"
        assert bench.main(["--quick", "--out", str(out)]) == 0
    finally:
        sys.path.remove(str(BENCH.parent))
    text = out.read_text()
    assert "| 1024x540 baseline JPEG |" in text and "decoded and resized" in text
    assert "refused: JPEG of" in text  # the scan bomb never reaches the decoder
    assert (
        "KiB per open stream" in text
        and "state per stream" in text
        and "| 320x240, 8 s at 25 fps | 200 | 200 |" in text
    )
    assert (
        "| same cores | alone | 6/6 |" in text and "| same cores | while attacked | 6/6 |" in text
    )
    assert "canary p50 attacked / alone" in text and "attacker on its own core" in text
