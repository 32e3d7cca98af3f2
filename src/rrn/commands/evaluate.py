"""``rrn eval RUN_OR_CKPT``: video-level accuracy on a test split (paper §3.3).

Each video's prediction is the mean of its M chunks' probabilities. Writes, next to the
checkpoint (or into ``--out``): ``eval_split{k}.json`` (``video_error``, ``video_top1``,
``video_top5``, ``clip_top1``, ``mean_class_accuracy``, ``num_videos``, ``num_chunks``, split,
checkpoint, config, timing), ``eval_split{k}_per_class.csv`` and ``eval_split{k}_confusion.png``.

``--splits 1 2 3`` evaluates one model per split: put ``{split}`` in the path
(``rrn eval runs/ucf_split{split} --splits 1 2 3``) and the mean over the splits, as the paper
reports it, goes to ``eval_mean.json`` in ``--out`` (default: the runs' common parent folder).
Runs under torchrun too; the videos that ``DistributedSampler`` pads in are counted once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  rrn eval runs/ucf_split1                             # best.pt of the run, its own split
  rrn eval runs/ucf_split{split} --splits 1 2 3        # one run per split + eval_mean.json
  rrn eval runs/ucf_split1/last.pt --data-root /data/UCF-101 --split-dir /data/ucfTrainTestlist
"""


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.config import make_suggesting

    p = sub.add_parser(
        "eval",
        help="video-level accuracy of a checkpoint on its test split (JSON, CSV, confusion PNG)",
        description="Evaluate a trained RRN: the prediction for a video is the mean of its "
        "chunk probabilities (paper §3.3). Data settings default to the checkpoint's.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    make_suggesting(p)
    p.add_argument("run", metavar="RUN_OR_CKPT",
                   help="run directory or checkpoint file; may contain {split} (see --splits)")
    p.add_argument("--splits", type=int, nargs="+", metavar="K",
                   help="evaluate these splits (default: the checkpoint's) and write their mean")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="checkpoint of a run directory (default: best, else last)")
    p.add_argument("--out", help="folder for the results (default: the checkpoint's folder)")
    g = p.add_argument_group("data (default: as stored in the checkpoint)")
    g.add_argument("--dataset", choices=("ucf101", "hmdb51", "list"))
    g.add_argument("--data-root")
    g.add_argument("--split-dir")
    g.add_argument("--train-list")
    g.add_argument("--test-list")
    g.add_argument("--eval-stride", type=int, help="sampled frames between chunk starts")
    g.add_argument("--cache-dir")
    g.add_argument("--missing", choices=("error", "skip"))
    r = p.add_argument_group("run")
    r.add_argument("--batch-size", type=int, default=32, help="chunks per forward pass (default: 32)")
    r.add_argument("--workers", type=int, default=2, help="DataLoader workers (default: 2)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    r.add_argument("--amp", choices=("auto", "none", "bf16", "fp16"), default="auto",
                   help="mixed precision on CUDA (default: auto)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=run)


DATA_FLAGS = ("dataset", "data_root", "split_dir", "train_list", "test_list", "eval_stride",
              "cache_dir", "missing")


def _targets(args: argparse.Namespace) -> list[tuple[int | None, str]]:
    from rrn.cli import UserError

    placeholder = "{split}" in args.run
    if placeholder and not args.splits:
        raise UserError(f"{args.run} contains {{split}}: say which with --splits, e.g. --splits 1 2 3")
    if not placeholder and args.splits and len(args.splits) > 1:
        raise UserError(
            f"--splits {' '.join(map(str, args.splits))} with one checkpoint would test on videos "
            "it trained on; put {split} in the path, one run per split "
            "(e.g. rrn eval runs/ucf_split{split} --splits 1 2 3)"
        )
    if bad := [k for k in args.splits or [] if k not in (1, 2, 3)]:
        raise UserError(f"--splits must be among 1 2 3, got {bad}")
    if not args.splits:
        return [(None, args.run)]
    return [(k, args.run.replace("{split}", str(k))) for k in args.splits]


def evaluate_checkpoint(
    path: str, split: int | None, args: argparse.Namespace, info: Any, device: Any
) -> dict[str, Any] | None:
    """Evaluate one checkpoint on one split; the result dict on rank 0, None elsewhere."""
    from rrn.checkpoint import build_from_checkpoint, find_checkpoint, load_checkpoint
    from rrn.cli import UserError
    from rrn.config import resolve_config
    from rrn.data import VideoChunkDataset, load_split
    from rrn.data.cache import resolve_cache_dir
    from rrn.engine import amp_dtype, eval_loader, evaluate
    from rrn.metrics import evaluate_probs

    ckpt_path = find_checkpoint(path, args.which)
    ckpt = load_checkpoint(ckpt_path)
    saved = dict(ckpt["config"])
    saved["run"] = {k: v for k, v in saved["run"].items() if k != "fault"}
    flags = {k: getattr(args, k) for k in DATA_FLAGS if getattr(args, k) is not None}
    if split is not None:
        flags["split"] = split
    cfg = resolve_config([(str(ckpt_path), saved), ("flags", {"data": flags})])
    d = cfg.data
    trained_on = saved.get("data", {}).get("split")
    if split is not None and trained_on not in (None, split) and info.is_main:
        print(f"rrn eval: warning: {ckpt_path} was trained on split {trained_on}, evaluating "
              f"split {split}", file=sys.stderr)
    if d.data_root is None:
        raise UserError(f"{ckpt_path} stores no --data-root; give --data-root")
    data = load_split(d.dataset, d.data_root, d.split_dir, d.split, train_list=d.train_list,
                      test_list=d.test_list, missing=d.missing)
    if data.classes != list(ckpt["classes"]):
        raise UserError(
            f"the classes of {ckpt_path} ({len(ckpt['classes'])}) differ from those of "
            f"{d.split_dir or d.data_root} ({len(data.classes)}); evaluate on the dataset it was "
            "trained on"
        )
    model = build_from_checkpoint(ckpt, device)
    dataset = VideoChunkDataset(
        data.test, context=model.temporal_context, train=False, sample_every=d.sample_every,
        fps=d.fps, frame_size=d.frame_size, short_side=d.short_side, eval_stride=d.eval_stride,
        cache_dir=resolve_cache_dir(d.cache_dir, d.data_root), decoder=d.decoder, seed=cfg.run.seed,
    )
    pin = device.type == "cuda"
    t0 = time.perf_counter()
    res = evaluate(model, eval_loader(dataset, workers=args.workers, pin_memory=pin), device=device,
                   chunk_batch=args.batch_size, dtype=amp_dtype(args.amp, device),
                   progress=args.progress and info.is_main)
    seconds = time.perf_counter() - t0
    if not info.is_main:
        return None
    out_dir = Path(args.out) if args.out else ckpt_path.parent
    ids = [data.test[i].video_id for i in res["video_index"].tolist()]
    extra = {
        "split": d.split,
        "dataset": d.dataset,
        "checkpoint": str(ckpt_path),
        "checkpoint_progress": {k: ckpt["progress"].get(k) for k in ("epoch", "global_step")},
        "context": model.temporal_context,
        "eval_stride": d.eval_stride,
        "skipped": [data.test[i].video_id for i in res["skipped"] if i >= 0],
        "num_test_videos": len(data.test),
        "timing": {"seconds": round(seconds, 3), "videos_per_s": round(len(ids) / max(seconds, 1e-9), 3),
                   "device": str(device), "world_size": info.world_size},
        "config": cfg.to_dict(),
    }
    return evaluate_probs(
        res["video_probs"], res["labels"], data.classes, out_dir=out_dir, stem=f"eval_split{d.split}",
        chunk_probs=res["chunk_probs"], chunk_labels=res["chunk_labels"], video_ids=ids, extra=extra,
    )


def run(args: argparse.Namespace) -> int:
    from rrn import distributed as rdist
    from rrn.checkpoint import CheckpointError, atomic_write_json
    from rrn.cli import UserError
    from rrn.metrics import mean_over_splits

    targets = _targets(args)
    owner = not rdist.is_initialized()
    info, device = rdist.init_distributed(args.device)
    results = []
    try:
        for split, path in targets:
            try:
                result = evaluate_checkpoint(path, split, args, info, device)
            except CheckpointError as err:
                raise UserError(str(err)) from None
            if result is not None:
                results.append(result)
                skipped = f", {len(result['skipped'])} skipped" if result["skipped"] else ""
                print(f"split {result['split']}: video accuracy {result['video_top1']:.4f} "
                      f"(error {result['video_error']:.4f}, top-5 {result['video_top5']:.4f}, "
                      f"clip {result['clip_top1']:.4f}, mean class {result['mean_class_accuracy']:.4f}) "
                      f"on {result['num_videos']} videos / {result['num_chunks']} chunks{skipped} "
                      f"-> {result['files']['json']}")
        if info.is_main and len(targets) > 1:
            mean = mean_over_splits(results)
            out = Path(args.out) if args.out else Path(os.path.commonpath(
                [str(Path(r["checkpoint"]).parent.resolve()) for r in results]))
            path = atomic_write_json(out / "eval_mean.json", mean)
            m = mean["mean_over_splits"]
            print(f"mean over splits {mean['splits']}: video accuracy {m['video_top1']:.4f} "
                  f"(error {m['video_error']:.4f}) -> {path}")
    finally:
        if owner:
            rdist.cleanup()
    return 0
