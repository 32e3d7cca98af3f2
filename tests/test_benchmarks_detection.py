"""benchmarks/detection.py in its quick mode: rrn eval's frames/s beside the bare step's."""

import importlib.util
from pathlib import Path

import pytest
import torch


def test_online_evaluation_benchmark_quick_mode(tmp_path):
    """Every column and the target are computed (numbers not judged: a shared machine)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "detection.py"
    spec = importlib.util.spec_from_file_location("detection_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path / "r.md")]) == 0
    finally:
        torch.set_num_threads(threads)
    text = (tmp_path / "r.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| resnet18 | 64 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 8 and all(float(c.strip("*x")) > 0 for c in cells[2:])
    step, decoded, cached = (float(c) for c in cells[2:5])  # rounded to 0.1 frames/s
    ratios = [float(c.strip("*x")) for c in cells[5:7]]
    assert ratios == pytest.approx([step / decoded, step / cached], abs=0.02)
    assert text.count("- [") == 1 and "within 1.3x of the bare step's" in text
