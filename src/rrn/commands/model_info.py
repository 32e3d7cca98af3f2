"""``rrn model-info [RUN_OR_CKPT]``: parameters, receptive field, skip blocks and GFLOPs of a
model described by flags, or of a trained one (a run, a checkpoint, a package), with its classes,
inputs and checkpoint."""

from __future__ import annotations

import argparse
import json

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, flag_overrides, from_flags
from rrn.config import DataConfig, EvalConfig, ModelConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "model-info",
        help="summarise an RRN: parameters, receptive field, skip blocks, GFLOPs per chunk",
        description="Summarise a Recurrent Residual Network without data or weights, or a "
        "trained one with its classes, inputs and checkpoint.",
    )
    p.add_argument(
        "checkpoint",
        metavar="RUN_OR_CKPT",
        nargs="?",
        help=f"a trained model to describe instead of the flags' ({MODEL_HELP})",
    )
    add_dataclass_arguments(
        p, ModelConfig, "model", only=("arch", "skip", "skip_type", "context"), title="model"
    )
    add_dataclass_arguments(p, DataConfig, "data", only=("frame_size",), title="input")
    p.add_argument("--num-classes", type=int, default=101, help="classifier outputs K [101]")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
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


def trained_model_info(run_or_ckpt: str, which: str = "auto") -> dict:
    """:func:`model_info` of a trained model, with its classes, inputs and checkpoint."""
    from rrn.checkpoint import load_model

    model = load_model(run_or_ckpt, which=which)
    info = model_info(
        model.arch,
        list(model.skip_blocks),
        model.skip_type,
        model.num_classes,
        model.inputs.frame_size,
    )
    return {
        **info,
        "classes": model.classes,
        "inputs": model.inputs.to_dict(),
        "checkpoint": dict(model.choice),
    }


def run(args: argparse.Namespace) -> int:
    from rrn.errors import UserError
    from rrn.model import resolve_skips

    given = flag_overrides(args, ("model", "data"))
    if args.checkpoint and (given or args.num_classes != 101):
        raise UserError(
            "a trained model is described as it is: drop --arch, --skip, --skip-type, "
            "--context, --frame-size and --num-classes, or the RUN_OR_CKPT"
        )
    if args.checkpoint:
        info = trained_model_info(args.checkpoint, from_flags(EvalConfig, args, "eval").which)
    else:
        cfg = resolve_config([("flags", flag_overrides(args))])
        info = model_info(
            cfg.model.arch,
            resolve_skips(cfg.model),
            cfg.model.skip_type,
            args.num_classes,
            cfg.data.frame_size,
        )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _table(info)
    return 0


def _table(info: dict) -> None:
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
    if "classes" in info:
        classes, ckpt = info["classes"], info["checkpoint"]
        shown = ", ".join(classes[:8]) + (
            f" ... ({len(classes)} in all)" if len(classes) > 8 else ""
        )
        rows += [
            ("classes", shown),
            ("frames", f"{info['inputs']['frame_size']} px, {_sampling(info['inputs'])}"),
            ("checkpoint", f"{ckpt['file']} ({ckpt['chosen_by']}, step {ckpt['global_step']})"),
        ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def _sampling(inputs: dict) -> str:
    from rrn.data.sampling import Sampling

    return Sampling(inputs["sample_every"], inputs["fps"], inputs["short_side"]).describe()
