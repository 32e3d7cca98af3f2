"""Tests of ``rrn model-info``: the numbers it prints are the model's."""

from __future__ import annotations

import json
import re

import pytest
import torchvision

from rrn.cli import main
from rrn.model import build_model, chunk_gflops


def _info(capsys, *args: str) -> dict:
    assert main(["model-info", "--frame-size", "64", "--num-classes", "5", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_identity_block4_resnet18(capsys):
    info = _info(capsys, "--arch", "resnet18", "--skip", "block4")
    frame = chunk_gflops(build_model("resnet18", 5, ()), 1, 64)
    tv_params = sum(p.numel() for p in torchvision.models.resnet18(num_classes=5).parameters())
    assert info["arch"] == "resnet18" and info["skip_type"] == "identity"
    assert info["skip_blocks"] == ["layer4.1"]
    assert info["receptive_field_frames"] == 2
    assert info["params_total"] == tv_params and info["params_temporal"] == 0
    assert info["frame_size"] == 64
    assert info["gflops_per_frame"] == round(frame, 3)
    # The earlier frame stops at layer4.1's input: 1.7-2 frames greedy, 2 frames naive.
    assert 1.7 * frame < info["gflops_per_chunk_greedy"] < 2 * frame
    assert info["gflops_per_chunk_all_frames"] == pytest.approx(2 * frame, abs=2e-3)
    assert info["greedy_saving"] == pytest.approx(
        info["gflops_per_chunk_all_frames"] / info["gflops_per_chunk_greedy"], abs=2e-3
    )


def test_linear_skips_resnet50_count_their_1x1_convs(capsys):
    info = _info(capsys, "--skip", "block1, midblock4,block4", "--skip-type", "linear")
    assert info["arch"] == "resnet50"  # the default, the paper's
    assert info["skip_blocks"] == ["layer1.0", "layer4.0", "layer4.2"]
    assert info["receptive_field_frames"] == 4
    temporal = 64 * 256 + 1024 * 2048 + 2048 * 2048
    tv_params = sum(p.numel() for p in torchvision.models.resnet50(num_classes=5).parameters())
    assert info["params_temporal"] == temporal
    assert info["params_total"] == tv_params + temporal
    assert info["gflops_per_chunk_greedy"] < info["gflops_per_chunk_all_frames"]


def test_none_is_the_plain_resnet(capsys):
    info = _info(capsys, "--arch", "resnet18", "--skip", "none")
    assert info["skip_blocks"] == [] and info["receptive_field_frames"] == 1
    assert info["gflops_per_chunk_greedy"] == info["gflops_per_frame"]
    assert info["gflops_per_chunk_all_frames"] == info["gflops_per_frame"]
    assert info["greedy_saving"] == 1.0


def test_table_output(capsys):
    args = ["model-info", "--arch", "resnet18", "--skip", "block1", "--skip-type", "nonlinear"]
    assert main([*args, "--frame-size", "64", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())  # key  value
    assert rows["architecture"] == "resnet18 (nonlinear skips)"
    assert rows["skip blocks"] == "layer1.0"
    assert rows["receptive field"] == "2 frames"
    total = (
        sum(p.numel() for p in torchvision.models.resnet18(num_classes=5).parameters()) + 64 * 64
    )
    assert rows["parameters"] == f"{total:,} total, {64 * 64:,} temporal"
    frame = chunk_gflops(build_model("resnet18", 5, ()), 1, 64)
    assert rows["GFLOPs / frame @64px"] == f"{round(frame, 3):.2f} (plain ResNet)"
    assert (
        rows["GFLOPs / chunk @64px"].endswith("x)") and " greedy, " in rows["GFLOPs / chunk @64px"]
    )


def test_bad_skip_is_a_user_error(capsys):
    assert main(["model-info", "--arch", "resnet18", "--skip", "blokc4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rrn model-info: error: unknown skip block 'blokc4'")
    assert "Did you mean 'block4'?" in err and "layer4.1" in err
    assert main(["model-info", "--arch", "resnet18", "--skip", "block4,layer4.1"]) == 2
    assert "'block4' and 'layer4.1' both resolve to layer4.1" in capsys.readouterr().err


def test_unknown_arch_is_refused_with_a_suggestion(capsys):
    # the same check and message as rrn train's (one declaration of --arch)
    assert main(["model-info", "--arch", "resnet19"]) == 2
    assert "--arch: 'resnet19' is not one of" in capsys.readouterr().err
