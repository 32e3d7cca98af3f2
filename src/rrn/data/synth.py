"""``rrn synth``: a synthetic action dataset whose classes differ only in temporal order.

Class ``k`` of ``K`` = a scene panning along the direction ``2*pi*k/K`` (K=4: right, up,
left, down; opposite classes are the same motion played forward and backward). Each video:

* a random mid-frequency texture (noise on a ``size/4`` grid, upsampled so that it tiles),
  shifted by a whole 2..3 px (at 64 px) per frame along the class direction: a camera pan,
  visible everywhere in the frame, so evidence for the direction is dense;
* one or two objects (antialiased disk or square, diameter ~``size/5``, bright) moving faster
  along the same direction;
* the *group* (shared by that group number across all classes, as UCF-101's groups share a
  source video) fixes the look: texture tint, object colour, shape and count. Within a
  group every video has the same image statistics, so nothing but motion tells videos
  apart once frames are pooled: a network cannot memorise a training video by its colours;
* everything wraps around the frame (torus) from a uniformly random start, so any single
  frame is a uniformly random view: **no single frame tells the class**; a per-frame model
  sits at chance, a model that compares frames can win;
* no motion blur; written as intra-only MJPEG (every frame a JPEG, quality ~q2) in ``.avi``,
  so no frame carries information about its neighbours; byte-identical for the same seed.

Layout = UCF-101's by default: ``<out>/<Class>/v_<Class>_gGG_cCC.avi``, ``classInd.txt``,
``trainlist01.txt``, ``testlist01.txt``; groups ``1..~25%`` are test, the rest train
(disjoint, as in UCF-101). The same videos can be written in the layout of any format with a
synth writer (:func:`rrn.data.formats.synth_layouts`: a miniature Kinetics, Something-Something
v2 or mmaction2 rawframes dataset).

Training on it: **turn horizontal flipping off** (``hflip=False``): a flipped MoveRight clip
is a MoveLeft clip (``rrn train`` and ``rrn eval --flip`` warn when they find ``rrn_synth.json``
beside the data). Sample densely (``sample_every`` 1..3): beyond ~``size / (2 * 4 px)``
frames between samples the motion aliases on the torus.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rrn.data.formats import FORMATS, synth_layouts
from rrn.data.synth_layouts import (
    SYNTH_INFO,
    SynthInterval,
    SynthVideo,
    shell_word,
    write_video,
)
from rrn.errors import ConfigError

# Two clips per group: many groups -> many distinct looks to learn from, so a network has to
# learn the motion rather than memorise a handful of looks (measured: 4 train looks do not
# generalise to unseen test groups, 32 do).
CLIPS_PER_GROUP = 2
NAMED = {2: ("MoveRight", "MoveLeft"), 4: ("MoveRight", "MoveUp", "MoveLeft", "MoveDown")}


def class_names(classes: int) -> list[str]:
    """``MoveRight``/``MoveUp``/... for 2 or 4 classes, ``Move045deg`` style otherwise."""
    if classes in NAMED:
        return list(NAMED[classes])
    return [f"Move{round(360 * k / classes):03d}deg" for k in range(classes)]


def _texture(rng: np.random.Generator, size: int, tint: np.ndarray) -> np.ndarray:
    """Mid-frequency random texture on a torus, float ``(size, size, 3)`` in 0..255.

    Noise on a ``size/4`` grid, upsampled bicubically with wrap-around so that rolling it
    across the frame edge shows no seam; ``tint`` (RGB gains) colours it.
    """
    import torch
    import torch.nn.functional as F

    cells = max(4, size // 4)
    grid = torch.from_numpy(rng.random((1, 3, cells, cells)).astype(np.float32))
    # pad circularly before upsampling so the texture tiles (the pan wraps around)
    padded = F.pad(grid, (2, 2, 2, 2), mode="circular")
    scale = size / cells
    big = F.interpolate(padded, scale_factor=scale, mode="bicubic", align_corners=False)[0]
    off = int(round(2 * scale))
    smooth = big[:, off : off + size, off : off + size].clamp(0, 1).numpy()
    return ((30 + 150 * smooth) * tint[:, None, None]).transpose(1, 2, 0)  # (S, S, 3)


def _group_look(rng: np.random.Generator) -> dict:
    """What the videos of one group share (across all classes): tint, object colour and shape."""
    hue = rng.random()
    colour = 255 * np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    return {
        "tint": rng.uniform(0.4, 1.0, size=3).astype(np.float32),
        "colour": np.maximum(colour, rng.uniform(120, 200)).astype(np.float32),  # bright
        "square": bool(rng.random() < 0.5),
        "objects": int(rng.integers(1, 3)),
    }


def _objects(rng: np.random.Generator, look: dict, size: int) -> list[dict]:
    """The group's one or two objects, each at a uniformly random place on the torus."""
    scale = size / 64
    return [
        {
            "start": rng.uniform(0, size, size=2),  # (x, y), uniform on the torus
            "speed": rng.uniform(2.0, 4.0) * scale,
            "radius": rng.uniform(0.08, 0.12) * size,
            "square": look["square"],
            "colour": look["colour"],
        }
        for _ in range(look["objects"])
    ]


def _draw_objects(img: np.ndarray, objects: list[dict], centres, size: int) -> np.ndarray:
    """``img`` (float ``(S, S, 3)``) with each object drawn at its centre ``(x, y)``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for ob, (cx, cy) in zip(objects, centres):
        # Toroidal offsets in (-S/2, S/2]: the object wraps around the frame edges.
        ox = (xx - cx + size / 2) % size - size / 2
        oy = (yy - cy + size / 2) % size - size / 2
        r = ob["radius"]
        if ob["square"]:
            alpha = np.clip(r + 0.5 - np.abs(ox), 0, 1) * np.clip(r + 0.5 - np.abs(oy), 0, 1)
        else:
            alpha = np.clip(r + 0.5 - np.hypot(ox, oy), 0, 1)
        img = img * (1 - alpha[..., None]) + ob["colour"] * alpha[..., None]
    return img


def _direction(angle: float) -> np.ndarray:
    """``(dx, dy)`` of a motion along ``angle`` (radians, counter-clockwise; image y points
    down)."""
    return np.array([math.cos(angle), -math.sin(angle)])


def render_video(
    rng: np.random.Generator, look: dict, size: int, angle: float, frames: int
) -> np.ndarray:
    """Render one clip: the scene pans along ``angle`` (radians, counter-clockwise) on a torus.

    A random texture (the "camera pan") shifts by a whole number of pixels per frame and one
    or two objects move faster along the same direction; all of it wraps around the frame
    edges from a uniformly random start, so a single frame is a uniformly random view and
    only the order of frames tells the direction.

    Returns:
        uint8 ``(frames, S, S, 3)``.
    """
    scale = size / 64
    texture = _texture(rng, size, look["tint"])
    pan_speed = int(rng.integers(2, 4)) * max(1, round(scale))  # px per frame
    pan_start = rng.integers(0, size, size=2)
    objects = _objects(rng, look, size)
    direction = _direction(angle)
    step = np.rint(direction * pan_speed).astype(int)  # (dx, dy) of the pan per frame
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        dx, dy = pan_start + t * step
        img = np.roll(texture, shift=(int(dy) % size, int(dx) % size), axis=(0, 1))
        centres = [
            (ob["start"] + t * (ob["speed"] + pan_speed) * direction) % size for ob in objects
        ]
        out[t] = np.clip(np.rint(_draw_objects(img, objects, centres, size)), 0, 255)
    return out


def render_untrimmed(
    rng: np.random.Generator, look: dict, size: int, angles: np.ndarray
) -> np.ndarray:
    """Render one untrimmed video: the scene of :func:`render_video`, whose motion changes
    direction from frame to frame as ``angles`` says (one scene throughout: texture and
    objects move on from where they were).

    Args:
        angles: ``(N,)`` radians: the motion from frame ``t - 1`` to frame ``t``.

    Returns:
        uint8 ``(N, S, S, 3)``.
    """
    scale = size / 64
    texture = _texture(rng, size, look["tint"])
    pan_speed = int(rng.integers(2, 4)) * max(1, round(scale))  # px per frame
    pan = rng.integers(0, size, size=2)
    objects = _objects(rng, look, size)
    centres = [ob["start"] for ob in objects]
    out = np.empty((len(angles), size, size, 3), dtype=np.uint8)
    for t, angle in enumerate(angles):
        direction = _direction(float(angle))
        if t:  # frame 0 is where everything starts
            pan = pan + np.rint(direction * pan_speed).astype(int)
            centres = [
                (c + (ob["speed"] + pan_speed) * direction) % size
                for c, ob in zip(centres, objects)
            ]
        img = np.roll(texture, shift=(int(pan[1]) % size, int(pan[0]) % size), axis=(0, 1))
        out[t] = np.clip(np.rint(_draw_objects(img, objects, centres, size)), 0, 255)
    return out


def group_counts(videos_per_class: int) -> tuple[int, int]:
    """``(groups, test groups)`` of a class: clips of one group share a look; the first ~25%
    of the groups are the test side."""
    n_groups = max(2, math.ceil(videos_per_class / CLIPS_PER_GROUP))
    return n_groups, max(1, round(n_groups / 4))


def render_dataset(*, classes: int, videos_per_class: int, frames: int, size: int, seed: int):
    """Render every video (see the module docstring); groups ``1..~25%`` are the test side.

    Yields:
        :class:`SynthVideo` s, class by class.
    """
    names = class_names(classes)
    n_groups, n_test_groups = group_counts(videos_per_class)
    per_group = math.ceil(videos_per_class / n_groups)
    looks = [_group_look(np.random.default_rng((seed, 0, g))) for g in range(n_groups)]
    for k, name in enumerate(names):
        for v in range(videos_per_class):
            g, c = divmod(v, per_group)
            rng = np.random.default_rng((seed, 1, k, v))
            video = render_video(rng, looks[g], size, 2 * math.pi * k / classes, frames)
            test = g < n_test_groups
            yield SynthVideo(label=k, name=name, group=g + 1, clip=c + 1, test=test, frames=video)


def untrimmed_schedule(
    rng: np.random.Generator, classes: int, frames: int
) -> tuple[np.ndarray, tuple[SynthInterval, ...]]:
    """The plan of one untrimmed video: one action of every class, ``frames`` frames each, in a
    random order, between stretches of background (``frames`` to ``3 * frames`` frames each),
    and one ambiguous stretch (half an action, of a random class direction) after a random
    background stretch.

    Background moves too, but never along a class direction: each stretch along one of the
    directions halfway between two classes (``2*pi*(j + 0.5)/K``). So no single frame tells
    action from background either; only the motion does.

    Returns:
        ``(angles, intervals)``: ``(N,)`` radians per frame (the motion into that frame) and the
        actions and the ambiguous stretch (label -1), by start.
    """
    order = [int(k) for k in rng.permutation(classes)]
    pieces: list[tuple[int | None, float, int]] = []  # (label, angle, frames); None: background

    def background() -> None:
        j = int(rng.integers(classes))
        n = int(rng.integers(frames, 3 * frames + 1))
        pieces.append((None, 2 * math.pi * (j + 0.5) / classes, n))

    background()
    for k in order:
        pieces.append((k, 2 * math.pi * k / classes, frames))
        background()
    after = 2 * int(rng.integers(0, classes + 1))  # the index of a background piece
    k = int(rng.integers(classes))
    pieces.insert(after + 1, (-1, 2 * math.pi * k / classes, max(1, frames // 2)))
    background()
    pieces.insert(after + 2, pieces.pop())
    angles, intervals, at = [], [], 0
    for label, angle, n in pieces:
        angles += [angle] * n
        if label is not None:
            intervals.append(SynthInterval(label, at, at + n))
        at += n
    return np.array(angles), tuple(intervals)


def render_untrimmed_dataset(
    *, classes: int, videos_per_class: int, frames: int, size: int, seed: int
):
    """Render the untrimmed videos of a temporal layout: as many per side as
    :func:`render_dataset` renders clips of one class there, each one group's scene (its look)
    holding one action of every class (:func:`untrimmed_schedule`); groups ``1..~25%`` are the
    test side, as for the clips.

    Yields:
        :class:`SynthVideo` s with label -1 and their :attr:`~SynthVideo.intervals`.
    """
    n_groups, n_test_groups = group_counts(videos_per_class)
    per_group = math.ceil(videos_per_class / n_groups)
    looks = [_group_look(np.random.default_rng((seed, 0, g))) for g in range(n_groups)]
    for v in range(videos_per_class):
        g, c = divmod(v, per_group)
        rng = np.random.default_rng((seed, 2, v))
        angles, intervals = untrimmed_schedule(rng, classes, frames)
        video = render_untrimmed(rng, looks[g], size, angles)
        yield SynthVideo(
            label=-1,
            name="untrimmed",
            group=g + 1,
            clip=c + 1,
            test=g < n_test_groups,
            frames=video,
            intervals=intervals,
        )


def make_synthetic_dataset(
    out,
    *,
    classes: int = 4,
    videos_per_class: int = 16,
    frames: int = 24,
    size: int = 64,
    seed: int = 0,
    layout: str = "ucf101",
) -> Path:
    """Write the synthetic dataset (see the module docstring) and return ``out``.

    Args:
        out: Output folder (created; existing files of the same names are overwritten).
        classes: Number of motion directions ``K`` (>= 2).
        videos_per_class: Videos per class (>= 2, so train and test groups both exist).
        frames: Frames per video.
        size: Frame side in pixels.
        seed: Everything is a pure function of it.
        layout: The format whose layout stores the videos: ``ucf101`` (the module docstring)
            or another of :func:`~rrn.data.formats.synth_layouts` (each format's
            :attr:`~rrn.data.formats.base.DatasetFormat.synth`); the flags that read it are in
            ``out/rrn_synth.json``.
    """
    if layout not in synth_layouts():
        raise ConfigError(f"--layout must be one of {', '.join(synth_layouts())}, got {layout!r}")
    if classes < 2:
        raise ConfigError(f"--classes must be >= 2, got {classes}")
    if videos_per_class < 2:
        raise ConfigError(
            "--videos-per-class must be >= 2 (one train and one test group), got "
            f"{videos_per_class}"
        )
    if frames < 2:
        raise ConfigError(f"--frames must be >= 2 (motion needs two frames), got {frames}")
    if size < 16:
        raise ConfigError(f"--size must be >= 16 pixels, got {size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # a temporal layout's videos are untrimmed: every class's action between background
    render = render_untrimmed_dataset if FORMATS[layout].temporal else render_dataset
    videos = render(
        classes=classes, videos_per_class=videos_per_class, frames=frames, size=size, seed=seed
    )
    written = FORMATS[layout].synth(out, class_names(classes), videos)
    n_groups, n_test_groups = group_counts(videos_per_class)
    (out / SYNTH_INFO).write_text(
        json.dumps(
            {
                "classes": classes,
                "videos_per_class": videos_per_class,
                "frames": frames,
                "size": size,
                "seed": seed,
                "layout": layout,
                "flags": f"--dataset {layout} {written.flags}",
                "videos": written.videos,
                "train": str(written.train),
                "test": str(written.test),
                "groups": n_groups,
                "test_groups": list(range(1, n_test_groups + 1)),
                "note": (
                    "train with hflip=False (a flipped MoveRight is MoveLeft) and sample_every <= 3"
                ),
            },
            indent=2,
        )
        + "\n"
    )
    return out


__all__ = [
    "make_synthetic_dataset",
    "render_dataset",
    "render_video",
    "SynthVideo",
    "shell_word",
    "write_video",
]
