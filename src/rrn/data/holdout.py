"""A validation split carved from the training list, by group, so no number is chosen on the test
split.

UCF-101 (and ``rrn synth``) names carry a group, ``v_<Class>_g<GG>_c<CC>``: the clips of one group
are cut from one source video and must never be on both sides of a split. :func:`carve_validation`
moves whole groups of each class from training to validation, about ``fraction`` of the class's
training videos, chosen by a seeded shuffle of the class's groups (pure: the same records, fraction
and seed always give the same split). Names without a group (HMDB-51's, lists of your own) are
their own group; HMDB-51's ``..._<n>`` clip suffix is dropped so clips of one source stay together.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from rrn.data.splits import VideoRecord
from rrn.errors import ConfigError

_UCF_GROUP = re.compile(r"_g(\d+)_c\d+$")
_CLIP_SUFFIX = re.compile(r"_\d+$")


def group_of(record: VideoRecord) -> tuple[int, str]:
    """``(label, group)``: the source a video was cut from, within its class."""
    name = record.video_id.rsplit("/", 1)[-1]
    m = _UCF_GROUP.search(name)
    return record.label, (f"g{int(m.group(1))}" if m else _CLIP_SUFFIX.sub("", name))


def carve_validation(
    records: list[VideoRecord], fraction: float, seed: int = 0
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split training records into ``(train, validation)`` by group, class by class.

    Each class gives ``round(fraction * its groups)`` groups (at least one when it has two or more
    groups, none when it has one: a class is never left without training videos).

    Returns:
        The remaining training records and the validation records, each in the input order.

    Raises:
        ValueError: ``fraction`` outside (0, 1), or no class has two groups to spare one.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {fraction}")
    groups: dict[int, list[str]] = defaultdict(list)
    for rec in records:
        label, group = group_of(rec)
        if group not in groups[label]:
            groups[label].append(group)
    held: set[tuple[int, str]] = set()
    for label in sorted(groups):
        names = sorted(groups[label])
        if len(names) < 2:
            continue
        rng = np.random.default_rng((seed, label))
        take = min(len(names) - 1, max(1, round(fraction * len(names))))
        held |= {(label, names[i]) for i in rng.permutation(len(names))[:take]}
    if not held:
        raise ConfigError(
            "--val-fraction: no class has two groups of training videos to hold one out"
        )
    train = [r for r in records if group_of(r) not in held]
    val = [r for r in records if group_of(r) in held]
    return train, val
