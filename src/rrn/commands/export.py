"""``rrn export RUN_OR_CKPT --format onnx|torchscript|triton --out DIR``: the per-frame step and
the chunk classifier as deployable graphs plus model.json (see :mod:`rrn.export`), or the step
as a Triton model repository (:mod:`rrn.export_triton`)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, from_flags
from rrn.config import EvalConfig, ExportConfig

EPILOG = """\
examples:
  rrn export runs/ucf_split1 --out exported/          # step.onnx, chunk.onnx, model.json
  rrn export runs/ucf_split1 --format torchscript --out exported_ts/
  rrn export runs/ucf_split1 --format triton --out triton_repo/ --max-batch-size 16
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the per-frame step (state as inputs/outputs) and the chunk classifier "
        "to ONNX or TorchScript, or the step as a Triton model repository",
        description="Export a trained RRN: step.onnx|pt takes a frame and the state (one tensor "
        "per skip block, zeros at the start of a video) and returns the logits and the next "
        "state; chunk.onnx|pt classifies (B, T, 3, S, S) clips. model.json describes both.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help=MODEL_HELP)
    add_dataclass_arguments(p, ExportConfig, "export", title="export")
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.checkpoint import load_model
    from rrn.errors import UserError
    from rrn.export import export_model

    cfg = from_flags(ExportConfig, args, "export")
    if cfg.out is None:
        raise UserError("--out DIR is required: the folder for the exported files")
    model = load_model(args.checkpoint, which=from_flags(EvalConfig, args, "eval").which)
    if cfg.format == "triton":
        return _triton(model, cfg)
    report = export_model(model, cfg.out, cfg.format, opset=cfg.opset, check=cfg.check)
    desc = report.description
    print(
        f"exported {model.checkpoint} ({desc['model']['arch']}, skips "
        f"{', '.join(desc['model']['skip_blocks']) or 'none'}, T={desc['temporal_context']}, "
        f"{len(desc['classes'])} classes, {desc['inputs']['frame_size']} px) as {cfg.format}:"
    )
    for path in report.files:
        print(f"  {path}")
    for s in desc["step"]["states"]:
        print(
            f"  state {s['input']} -> {s['output']}: {s['shape']} at {s['block']}, zeros at start"
        )
    if report.step_diff is not None:
        print(
            f"check: max |diff| vs PyTorch: step through a video {report.step_diff:.2e}, "
            f"chunk classifier {report.chunk_diff:.2e}"
        )
    elif report.note:
        print(report.note)
    return 0


def _triton(model, cfg: ExportConfig) -> int:
    from rrn.export_triton import export_triton

    files = export_triton(
        model,
        cfg.out,
        name=cfg.name,
        max_batch_size=cfg.max_batch_size,
        opset=cfg.opset,
        source_fps=cfg.source_fps,
    )
    print(
        f"exported {model.checkpoint} as the Triton model repository {cfg.out} (model "
        f"{cfg.name!r}, sequence batching with implicit state, max batch {cfg.max_batch_size}):"
    )
    for path in files:
        print(f"  {path}")
    print(f"serve it with: tritonserver --model-repository {cfg.out}")
    return 0
