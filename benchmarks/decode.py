"""Per-video decoding time of ``rrn.data.decode_video`` on the real clips of ``../shared/data``.

Each clip is decoded as training decodes it (every 10th frame kept, short side 128) ``--repeat``
times; the fastest run per clip is kept (the least disturbed by other processes), and the
table gives, per folder, the number of clips and the median and mean of those times.

Compare two versions of the decoder by running this script with each one first on the path and
alternating the runs (A B A B) on an otherwise idle machine, e.g.
``PYTHONPATH=other/src python benchmarks/decode.py``. Usage:
``python benchmarks/decode.py [--data ../shared/data] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import rrn
from rrn.data import decode_video
from rrn.data.sampling import Sampling

GROUPS = {
    "ucf101_mini (H.264 MP4)": "ucf101_mini",
    "ucf101_avi (Xvid AVI)": "videos/ucf101_avi",
    "hmdb51 (MP4)": "videos/hmdb51",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"rrn from {Path(rrn.__file__).parent}; load average {os.getloadavg()[0]:.2f}")
    print("| clips | n | median ms/video | mean ms/video |\n|---|---|---|---|")
    every: list[float] = []
    for name, folder in GROUPS.items():
        clips = sorted(p for p in (args.data / folder).rglob("*") if p.suffix in (".avi", ".mp4"))
        best = []
        for clip in clips:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                decode_video(clip, Sampling(sample_every=10, short_side=128))
                times.append(time.perf_counter() - start)
            best.append(min(times) * 1000)
        every += best
        print(
            f"| {name} | {len(best)} | {statistics.median(best):.1f} | {statistics.mean(best):.1f} |"
        )
    print(f"| all | {len(every)} | {statistics.median(every):.1f} | {statistics.mean(every):.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
