"""``rrn check-data``: find every problem of a dataset before a training run meets it.

Reports (never raises for) per-video problems of a split loaded with ``missing="skip"``
(:func:`~rrn.data.splits.split_problems`, which also collects every malformed line): missing
files, empty files, files that are not videos or have no video stream, truncated files (also
with ``decode=False``: the packets are read, not decoded), corrupt streams (with
``decode=True``, a full decode), frame folders whose numbering or listed frame count is wrong, a
video listed on both the train and test side, and classes without any training video.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from rrn.data.decode import VideoDecodeError, decode_video, probe_video
from rrn.data.sampling import Sampling
from rrn.data.splits import DatasetSplit


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`check_dataset`."""

    video: str
    """The video id, path or class concerned."""
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.video}: {self.what} -> {self.fix}"


def check_dataset(
    split: DatasetSplit, *, decode: bool = True, decoder: str = "auto", progress: bool = False
) -> list[Problem]:
    """List every problem of a split (empty list = ready to train).

    Args:
        split: The split, ideally loaded with ``missing="skip"`` so missing files are reported
            here rather than raised one at a time.
        decode: Fully decode every video (finds damaged data inside a file; slow) rather than
            decode its first frame and read the rest without decoding (finds truncated files).
        decoder: Decoding backend.
        progress: Show a progress bar.

    Returns:
        The problems, in split order.
    """
    from rrn.progress import progress_bar

    problems = [
        Problem(
            m.video_id,
            f"listed at {m.listed_in}:{m.line} but not found under the data root",
            "restore the file, fix --data-root, or remove the line",
        )
        for m in split.missing
    ]
    both = {r.video_id for r in split.train} & {r.video_id for r in split.test}
    problems += [
        Problem(v, "listed on both the train and the test side", "remove one of the two lines")
        for v in sorted(both)
    ]
    counts = Counter(r.label for r in split.train)
    problems += [
        Problem(name, "class has no training video", "add videos or check the split files")
        for k, name in enumerate(split.classes)
        if counts[k] == 0
    ]
    seen = set()
    records = [r for r in split.train + split.test if not (r.path in seen or seen.add(r.path))]
    for rec in progress_bar(records, enabled=progress, desc="checking", unit="video"):
        if rec.path.is_dir():
            problems += _check_folder(rec, decode)
            continue
        try:
            if os.path.getsize(rec.path) == 0:
                problems.append(
                    Problem(
                        rec.video_id,
                        f"{rec.path} is empty (0 bytes)",
                        "re-download or re-extract the video",
                    )
                )
                continue
            if decode:  # every frame decoded (finds damaged data), one in 10 converted
                decode_video(rec.path, Sampling(sample_every=10), backend=decoder)
            else:
                probe_video(rec.path)
        except VideoDecodeError as err:
            problems.append(
                Problem(
                    rec.video_id,
                    err.reason,
                    f"re-download or re-encode {rec.path}, "
                    "or remove it from the split "
                    "(training skips it with a warning)",
                )
            )
        except OSError as err:
            problems.append(
                Problem(rec.video_id, f"{rec.path}: {err}", "check the file's permissions")
            )
    return problems


def _check_folder(rec, decode: bool) -> list[Problem]:
    """A frame folder: numbering, the listed frame count, every sampled JPEG (``decode``)."""
    from rrn.data.frame_folder import count_frames, probe_frame_folder, read_frame_folder

    fix = f"re-extract the frames of {rec.path}, or remove it from the list (training skips it)"
    try:
        n = count_frames(rec.path)
        if rec.num_frames is not None and n != rec.num_frames:
            return [
                Problem(
                    rec.video_id,
                    f"the list says {rec.num_frames} frames, {rec.path} has {n}",
                    f"correct total_frames in the list to {n}, or {fix}",
                )
            ]
        if decode:
            # every frame, as decode=True does for videos
            read_frame_folder(rec.path, Sampling(sample_every=1))
        else:
            probe_frame_folder(rec.path)
    except VideoDecodeError as err:
        return [Problem(rec.video_id, err.reason, fix)]
    return []
