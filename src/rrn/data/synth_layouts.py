"""``rrn synth --layout``: the synthetic videos written as miniatures of the other dataset formats.

The same rendered videos (:func:`rrn.data.synth.render_dataset`; the same train/test groups)
in the layout each format expects, so every reader is exercised end to end on data whose
classes are known:

* ``kinetics``: ``train.csv`` / ``validate.csv`` (``label,youtube_id,time_start,time_end,split``;
  labels with spaces, e.g. ``move right``), videos ``<youtube_id>_<start:06d>_<end:06d>.mp4``
  (MJPEG) in class folders under ``train/`` and flat under ``val/``: both layouts Kinetics
  downloads come in, and the ``val/`` spelling of ``validate/``;
* ``ssv2``: ``something-something-v2-labels.json``, ``-train.json`` and ``-validation.json``
  with Something-Something's templates (``Pushing [something] from left to right``), videos
  ``<id>.webm`` in VP9 flat under the folder;
* ``rawframes``: frame folders ``rawframes/<Class>/<video>/img_00001.jpg`` ... (JPEG quality 95)
  and mmaction2 lists ``train_list.txt`` / ``test_list.txt`` (``frame_dir total_frames label``)
  with a ``classInd.txt``.

Each writer returns the flags that read its layout (also stored in ``rrn_synth.json``).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

#: Something-Something v2 templates for the four named directions (real SSv2 classes).
SSV2_TEMPLATES = {
    "MoveRight": "Pushing [something] from left to right",
    "MoveLeft": "Pushing [something] from right to left",
    "MoveUp": "Moving [something] up",
    "MoveDown": "Moving [something] down",
}


def write_video(
    path,
    frames: np.ndarray,
    *,
    fps: float = 25,
    codec: str = "mjpeg",
    pix_fmt: str | None = None,
    options: dict | None = None,
) -> Path:
    """Write uint8 RGB frames ``(N, H, W, 3)`` as a video file with PyAV (also used by the tests).

    Args:
        path: Output file; the container follows its extension.
        frames: The frames.
        fps: Frame rate.
        codec: FFmpeg encoder name (``mjpeg``, ``ffv1``, ``mpeg4``, ``libx264``, ...).
        pix_fmt: Encoder pixel format; default per codec.
        options: Encoder options.
    """
    from fractions import Fraction

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = {"mjpeg": ("yuvj444p", {"qscale": "2"}), "ffv1": ("bgr0", {}), "png": ("rgb24", {})}
    dflt_fmt, dflt_opts = defaults.get(codec, ("yuv420p", {}))
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt or dflt_fmt
        stream.options = {**dflt_opts, **(options or {})}
        for f in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def shell_word(path) -> str:
    """``path`` as one shell word (the flags printed for a dataset are pasted into a shell)."""
    return shlex.quote(str(path))


def write_ucf101(out: Path, names: list[str], videos) -> dict:
    """UCF-101's layout: ``<Class>/v_<Class>_gGG_cCC.avi`` and the three split files (CRLF)."""
    train_lines, test_lines = [], []
    for video in videos:
        rel = f"{video.name}/{video.stem}.avi"
        write_video(out / rel, video.frames, fps=25)
        if video.test:
            test_lines.append(rel)
        else:
            train_lines.append(f"{rel} {video.label + 1}")
    crlf = "\r\n"  # as the official UCF-101 files
    index = "".join(f"{i + 1} {n}{crlf}" for i, n in enumerate(names))
    (out / "classInd.txt").write_bytes(index.encode())
    (out / "trainlist01.txt").write_bytes("".join(line + crlf for line in train_lines).encode())
    (out / "testlist01.txt").write_bytes("".join(line + crlf for line in test_lines).encode())
    return {
        "flags": f"--data-root {shell_word(out)}",
        "videos": len(train_lines) + len(test_lines),
        "train": out / "trainlist01.txt",
        "test": out / "testlist01.txt",
    }


def kinetics_label(name: str) -> str:
    """``MoveRight`` -> ``move right`` (Kinetics labels are lower case with spaces)."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


def write_kinetics(out: Path, names: list[str], videos) -> dict:
    rows = {"train": [], "validate": []}
    for i, video in enumerate(videos):
        label = kinetics_label(video.name)
        yid, start = f"yt{i:05d}-g{video.group:02d}", 10 * video.clip
        name = f"{yid}_{start:06d}_{start + 10:06d}.mp4"
        side = "validate" if video.test else "train"
        path = out / "val" / name if video.test else out / "train" / label / name
        write_video(path, video.frames, fps=25)
        rows[side].append(f"{label},{yid},{start},{start + 10},{side}")
    for side, lines in rows.items():
        (out / f"{side}.csv").write_text(
            "label,youtube_id,time_start,time_end,split\n" + "".join(f"{line}\n" for line in lines)
        )
    return {
        "flags": f"--dataset kinetics --data-root {shell_word(out)}",
        "videos": sum(map(len, rows.values())),
        "train": out / "train.csv",
        "test": out / "validate.csv",
    }


def ssv2_template(name: str) -> str:
    return SSV2_TEMPLATES.get(name, f"Moving [something] {name.removeprefix('Move')}")


def write_ssv2(out: Path, names: list[str], videos) -> dict:
    entries = {"train": [], "validation": []}
    for i, video in enumerate(videos):
        vid = str(100 + i)
        write_video(
            out / f"{vid}.webm",
            video.frames,
            fps=12,
            codec="libvpx-vp9",
            pix_fmt="yuv420p",
            options={"crf": "4", "b:v": "0", "deadline": "realtime", "cpu-used": "8"},
        )
        template = ssv2_template(video.name)
        entries["validation" if video.test else "train"].append(
            {
                "id": vid,
                "label": template.replace("[something]", "a box").lower(),
                "template": template,
                "placeholders": ["a box"],
            }
        )
    labels = {
        ssv2_template(n).replace("[", "").replace("]", ""): str(i) for i, n in enumerate(names)
    }
    (out / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    for side, items in entries.items():
        (out / f"something-something-v2-{side}.json").write_text(json.dumps(items, indent=1) + "\n")
    return {
        "flags": f"--dataset ssv2 --data-root {shell_word(out)} --no-hflip",
        "videos": sum(map(len, entries.values())),
        "train": out / "something-something-v2-train.json",
        "test": out / "something-something-v2-validation.json",
    }


def write_rawframes(out: Path, names: list[str], videos) -> dict:
    from rrn.data.frame_folder import write_frame_folder

    lines = {"train": [], "test": []}
    for video in videos:
        rel = f"{video.name}/{video.stem}"
        write_frame_folder(out / "rawframes" / rel, video.frames, quality=95)
        lines["test" if video.test else "train"].append(f"{rel} {len(video.frames)} {video.label}")
    for side, items in lines.items():
        (out / f"{side}_list.txt").write_text("".join(f"{line}\n" for line in items))
    (out / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    return {
        "flags": f"--dataset rawframes --data-root {shell_word(out / 'rawframes')} --split-dir "
        f"{shell_word(out)} "
        f"--train-list {shell_word(out / 'train_list.txt')} --test-list "
        f"{shell_word(out / 'test_list.txt')}",
        "videos": sum(map(len, lines.values())),
        "train": out / "train_list.txt",
        "test": out / "test_list.txt",
    }


LAYOUTS = {
    "ucf101": write_ucf101,
    "kinetics": write_kinetics,
    "ssv2": write_ssv2,
    "rawframes": write_rawframes,
}
