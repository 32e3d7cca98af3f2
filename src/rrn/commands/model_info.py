"""``rrn model-info``: parameters, receptive field, skip blocks and GFLOPs of a model."""

from __future__ import annotations

import argparse
import json

from rrn.commands.flags import add_dataclass_arguments, flag_overrides
from rrn.config import DataConfig, ModelConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "model-info",
        help="summarise an RRN: parameters, receptive field, skip blocks, GFLOPs per chunk",
        description="Summarise a Recurrent Residual Network without data or weights.",
    )
    add_dataclass_arguments(
        p, ModelConfig, "model", only=("arch", "skip", "skip_type", "context"), title="model"
    )
    add_dataclass_arguments(p, DataConfig, "data", only=("frame_size",), title="input")
    p.add_argument("--num-classes", type=int, default=101, help="classifier outputs K [101]")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def model_info(arch: str, skip, skip_type: str, num_classes: int, frame_size: int) -> dict:
    """Parameters, receptive field, resolved skips and GFLOPs; ``skip`` as in ``build_model``."""
    from rrn.model import build_model, chunk_gflops, count_parameters

    skips = [] if isinstance(skip, str) and skip.strip().lower() in ("", "none") else skip
    model = build_model(arch, num_classes=num_classes, skip_blocks=skips, skip_type=skip_type)
    T = model.temporal_context
    params = count_parameters(model)
    per_frame = chunk_gflops(
        build_model(arch, num_classes=num_classes, skip_blocks=()), 1, frame_size
    )
    greedy = chunk_gflops(model, T, frame_size, greedy=True)
    naive = chunk_gflops(model, T, frame_size, greedy=False)
    return {
        "arch": arch,
        "skip_type": skip_type,
        "skip_blocks": list(model.skip_blocks),
        "receptive_field_frames": T,
        "params_total": params["total"],
        "params_temporal": params["temporal"],
        "frame_size": frame_size,
        "gflops_per_frame": round(per_frame, 3),
        "gflops_per_chunk_greedy": round(greedy, 3),
        "gflops_per_chunk_all_frames": round(naive, 3),
        "greedy_saving": round(naive / greedy, 3),
    }


def run(args: argparse.Namespace) -> int:
    from rrn.model import resolve_skips

    cfg = resolve_config([("flags", flag_overrides(args))])
    skips = resolve_skips(cfg.model)
    info = model_info(
        cfg.model.arch, skips, cfg.model.skip_type, args.num_classes, cfg.data.frame_size
    )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    s = info["frame_size"]
    rows = [
        ("architecture", f"{info['arch']} ({info['skip_type']} skips)"),
        ("skip blocks", ", ".join(info["skip_blocks"]) or "none (per-frame ResNet)"),
        ("receptive field", f"{info['receptive_field_frames']} frames"),
        ("parameters", f"{info['params_total']:,} total, {info['params_temporal']:,} temporal"),
        (f"GFLOPs / frame @{s}px", f"{info['gflops_per_frame']:.2f} (plain ResNet)"),
        (
            f"GFLOPs / chunk @{s}px",
            f"{info['gflops_per_chunk_greedy']:.2f} greedy, "
            f"{info['gflops_per_chunk_all_frames']:.2f} all frames ({info['greedy_saving']:.2f}x)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
