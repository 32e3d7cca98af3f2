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
from pathlib import Path

from rrn.data.synth import shell_word, write_ucf101, write_video

#: Something-Something v2 templates for the four named directions (real SSv2 classes).
SSV2_TEMPLATES = {
    "MoveRight": "Pushing [something] from left to right",
    "MoveLeft": "Pushing [something] from right to left",
    "MoveUp": "Moving [something] up",
    "MoveDown": "Moving [something] down",
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
        (out / f"{side}.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                         + "".join(f"{line}\n" for line in lines))
    return {"flags": f"--dataset kinetics --data-root {shell_word(out)}", "videos": sum(map(len, rows.values())),
            "train": out / "train.csv", "test": out / "validate.csv"}


def ssv2_template(name: str) -> str:
    return SSV2_TEMPLATES.get(name, f"Moving [something] {name.removeprefix('Move')}")


def write_ssv2(out: Path, names: list[str], videos) -> dict:
    entries = {"train": [], "validation": []}
    for i, video in enumerate(videos):
        vid = str(100 + i)
        write_video(out / f"{vid}.webm", video.frames, fps=12, codec="libvpx-vp9", pix_fmt="yuv420p",
                    options={"crf": "4", "b:v": "0", "deadline": "realtime", "cpu-used": "8"})
        template = ssv2_template(video.name)
        entries["validation" if video.test else "train"].append(
            {"id": vid, "label": template.replace("[something]", "a box").lower(),
             "template": template, "placeholders": ["a box"]})
    labels = {ssv2_template(n).replace("[", "").replace("]", ""): str(i) for i, n in enumerate(names)}
    (out / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    for side, items in entries.items():
        (out / f"something-something-v2-{side}.json").write_text(json.dumps(items, indent=1) + "\n")
    return {"flags": f"--dataset ssv2 --data-root {shell_word(out)} --no-hflip",
            "videos": sum(map(len, entries.values())),
            "train": out / "something-something-v2-train.json",
            "test": out / "something-something-v2-validation.json"}


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
    return {"flags": f"--dataset rawframes --data-root {shell_word(out / 'rawframes')} --split-dir {shell_word(out)} "
                     f"--train-list {shell_word(out / 'train_list.txt')} --test-list {shell_word(out / 'test_list.txt')}",
            "videos": sum(map(len, lines.values())),
            "train": out / "train_list.txt", "test": out / "test_list.txt"}


LAYOUTS = {"ucf101": write_ucf101, "kinetics": write_kinetics, "ssv2": write_ssv2,
           "rawframes": write_rawframes}
