"""Make the README's strip of annotated frames: ``rrn stream`` on one clip, a few frames side by side.

    .venv/bin/python docs/make_stream_strip.py RUN CLIP --out docs/stream_strip.png

Streams CLIP with the run's model (its training sampling), writes the annotated video to a
temporary folder, takes ``--frames`` frames evenly spread over the clip (from the first
frame with a full temporal context on), downscales them by ``--scale`` and writes them side
by side as one palette PNG (small enough to commit).

The README's strip: a run trained on ``../shared/data/ucf101_mini`` with split-1 files written
from its manifest (``classInd.txt`` of its 10 classes, ``trainlist01.txt`` = groups 08-25,
``testlist01.txt`` = groups 01-07, under /tmp):

    rrn train --data-root ../shared/data/ucf101_mini/UCF-101 --split-dir /tmp/ucfmini_splits \
        --cache-dir /tmp/cache --arch resnet18 --weights none --skip block4 --frame-size 112 \
        --sample-every 10 --chunks-per-video 4 --epochs 14 --batch-size 8 --lr 1e-3 \
        --update-chunks 16 --schedule cosine --workers 1 --val-every 2 --out RUN
    python docs/make_stream_strip.py RUN \
        ../shared/data/ucf101_mini/UCF-101/BasketballDunk/v_BasketballDunk_g01_c01.mp4 --which last
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

from rrn import load_model
from rrn.config import StreamConfig
from rrn.online import stream_source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory or checkpoint")
    p.add_argument("clip", help="video file")
    p.add_argument("--out", default="docs/stream_strip.png")
    p.add_argument("--frames", type=int, default=4, help="frames in the strip (default: 4)")
    p.add_argument("--scale", type=float, default=0.75, help="downscale factor (default: 0.75)")
    p.add_argument("--which", default="auto", choices=("auto", "best", "last"))
    args = p.parse_args(argv)
    model = load_model(args.run, which=args.which)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = StreamConfig(out=f"{tmp}/annotated.mp4", json=f"{tmp}/events.jsonl")
        summary = stream_source(model, args.clip, cfg)
        events = [json.loads(line) for line in Path(cfg.json).read_text().splitlines()]
        sampled = [e["frame"] for e in events if e["type"] == "frame"]
        first = sampled[min(model.temporal_context, len(sampled)) - 1]  # full context from here
        picks = np.linspace(first, summary.frames - 1, args.frames).round().astype(int).tolist()
        with av.open(cfg.out) as container:
            frames = [f.to_image() for i, f in enumerate(container.decode(video=0)) if i in picks]
    w, h = (round(s * args.scale) for s in frames[0].size)
    strip = Image.new("RGB", (w * len(frames) + 4 * (len(frames) - 1), h), "white")
    for k, frame in enumerate(frames):
        strip.paste(frame.resize((w, h), Image.LANCZOS), (k * (w + 4), 0))
    strip.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    segments = ", ".join(f"{s['class']} {s['start']:.1f}-{s['end']:.1f} s" for s in summary.segments)
    print(f"{args.out}: frames {picks} of {summary.frames}; segments: {segments}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
