"""``rrn check-data``: find every problem of a dataset before a training run meets it.

Reports (never raises for) per-video problems of a split loaded with ``missing="skip"``
(:func:`~rrn.data.splits.split_problems`, which also collects every malformed line): missing
files, empty files, files that are not videos or have no video stream, truncated files (also
with ``decode=False``: the packets are read, not decoded), corrupt streams (with
``decode=True``, a full decode), frame folders whose numbering or listed frame count is wrong, a
video listed on both the train and test side, and classes without any training video.

Untrimmed videos (a temporal format) are checked by their annotation instead
(:func:`annotation_problems`): intervals that end before they start or after their video,
videos on both sides, classes without a training interval; :func:`frame_summary` says how their
frames are labelled (Background's share, ambiguous frames, the rarest and commonest class).
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
    if split.annotations is None:  # untrimmed videos: annotation_problems checks both
        problems += _sides_and_classes(split)
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
    if split.annotations is not None:
        problems += annotation_problems(split)
    return problems


def _sides_and_classes(split: DatasetSplit) -> list[Problem]:
    """Videos listed on both sides; classes without a training video."""
    both = {r.video_id for r in split.train} & {r.video_id for r in split.test}
    problems = [
        Problem(v, "listed on both the train and the test side", "remove one of the two lines")
        for v in sorted(both)
    ]
    counts = Counter(r.label for r in split.train)
    return problems + [
        Problem(name, "class has no training video", "add videos or check the split files")
        for k, name in enumerate(split.classes)
        if counts[k] == 0
    ]


# ---------------------------------------------------------------------------- untrimmed videos
#: Sampled frames per second of the frame statistics: THUMOS'14's convention (every 6th frame
#: at 24 frames/s), as online detection is trained and scored.
STATISTICS_RATE = 4.0


def video_durations(split: DatasetSplit) -> dict[str, float]:
    """Video id -> seconds, from the header of every video present (none for the unreadable)."""
    from rrn.data.frame_counts import sampled_shape

    out = {}
    for rec in split.train + split.test:
        try:
            seconds = sampled_shape(rec.path, Sampling(sample_every=1)).seconds
        except (VideoDecodeError, ValueError, OSError):
            continue
        if seconds is not None:
            out[rec.video_id] = seconds
    return out


def annotation_problems(
    split: DatasetSplit, durations: dict[str, float] | None = None
) -> list[Problem]:
    """The annotation checks of an untrimmed dataset (:func:`rrn.detection.labels.
    check_annotations`): intervals that end before they start or after their video (its
    duration from the annotation, else from its file), videos on both sides, classes without a
    training interval; each interval named by file and line."""
    from rrn.detection.labels import check_annotations

    durations = video_durations(split) if durations is None else durations
    return [Problem(*p) for p in check_annotations(split.annotations, durations)]


def frame_summary(
    split: DatasetSplit, durations: dict[str, float] | None = None, rate: float = STATISTICS_RATE
) -> list[str]:
    """How the frames of an untrimmed dataset are labelled, one line per side: frames sampled
    at ``rate`` per second, Background's share of those scored, the ambiguous ones, the frames
    of the least and most frequent class."""
    from rrn.detection.labels import frame_statistics

    durations = video_durations(split) if durations is None else durations
    lines = []
    present = {r.video_id for r in split.train + split.test}
    for side in ("train", "test"):
        videos = [v for v in split.annotations.subset(side) if v.video in present]
        stats = frame_statistics(videos, len(split.classes), rate=rate, durations=durations)
        share = stats.background_share
        counts = sorted(zip(stats.per_class[1:].tolist(), split.classes[1:]))
        spread = (
            f"; a class has {counts[0][0]} ({counts[0][1]}) to {counts[-1][0]} ({counts[-1][1]})"
        )
        lines.append(
            f"{side} frames (sampled at {rate:g}/s): {stats.frames} in {len(videos)} videos, "
            + (f"Background {100 * share:.1f}% of those scored" if share is not None else "none")
            + f", {stats.ignored} ambiguous{spread if counts else ''}"
            + (
                f"; {len(stats.without_duration)} without a known duration left out"
                if stats.without_duration
                else ""
            )
        )
    return lines


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
