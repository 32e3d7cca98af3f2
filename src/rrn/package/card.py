"""A package's model card (README.md) in the Hugging Face Hub's convention: YAML metadata, then
prose.

The metadata (the Hub's model card fields) holds ``library_name: rrn``, ``pipeline_tag:
video-classification``, ``license``, ``tags``, ``datasets`` and a ``model-index``: one result
per evaluation of the packed checkpoint (task, dataset with its split, metrics), each metric with
the protocol it was measured with in its ``args`` (split, views, chunks, sampling, which
checkpoint and how it was chosen), as the Hub's ``EvalResult`` reads it back. Only numbers of
this checkpoint, measured on data that played no part in choosing it, are reported
(:mod:`rrn.package.pack` picks them); the prose says which evaluations were left out and why.

The prose: what the model recognises, how it was trained, how it was evaluated, how to use it
with rrn, and its limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from rrn.detection.metrics import is_detection_result

TASK = {"type": "video-classification", "name": "Video classification (action recognition)"}
#: The task of a detection run's evaluations (``"task": "detection"`` in its JSON).
DETECTION_TASK = {
    "type": "online-action-detection",
    "name": "Online action detection (a score per class for every frame, no later frame seen)",
}
#: (key of an evaluation's JSON, model-index metric type, metric name), in the order shown; a
#: key ``a.b`` is ``b`` inside ``a`` (a detection JSON's ``segment_map`` per tIoU).
METRICS = (
    ("video_top1", "accuracy", "Video accuracy (top-1)"),
    ("video_top5", "top_5_accuracy", "Video accuracy (top-5)"),
    ("clip_top1", "clip_accuracy", "Clip accuracy (top-1)"),
    ("mean_class_accuracy", "mean_class_accuracy", "Mean class accuracy"),
)
DETECTION_METRICS = (
    ("frame_map", "frame_map", "Per-frame mAP"),
    ("frame_mcap", "frame_mcap", "Per-frame calibrated mAP (mcAP)"),
    ("segment_map.0.5", "segment_map_tiou_0.5", "Segment mAP at tIoU 0.5"),
    ("segment_map_avg", "segment_map_avg", "Segment mAP averaged over tIoU 0.3-0.7"),
    ("delay_s_median", "detection_delay_s", "Median detection delay (s)"),
)
CLASSES_SHOWN = 30
PAPER = (
    "Iqbal, Richard, Kuehne, Gall: *Recurrent Residual Learning for Action Recognition*, GCPR 2017"
)


@dataclass(frozen=True)
class DatasetFacts:
    """What a card says of the data a model was trained and tested on."""

    type: str
    """The format (``--dataset``: ``ucf101``, ``kinetics``, ``list`` ...)."""
    name: str
    """Its name for people: ``UCF-101``, or what a custom dataset's folder is called."""
    test_split: str = "test"
    """What the Hub calls the side a model is tested on (``validation`` for Kinetics/SSv2)."""
    hub_id: str | None = None
    """The name in the card's ``datasets`` field (None for a custom dataset)."""
    synthetic: bool = False
    """``rrn synth``'s videos (a model for tests and demonstrations)."""
    flip_note: str | None = None
    """Why a mirrored video is another class (direction-dependent classes), if it is."""


def model_card(
    config: Mapping[str, Any],
    *,
    name: str,
    dataset: DatasetFacts,
    evaluations: Sequence[Mapping[str, Any]] = (),
    left_out: Sequence[str] = (),
    license: str = "unknown",
    repo_id: str | None = None,
) -> str:
    """README.md of a package.

    Args:
        config: The package's config.json (:func:`rrn.package.folder.package_config`).
        name: The model's name (the repository's, or the package folder's).
        dataset: What the data was.
        evaluations: ``rrn eval`` results (``eval_split{k}.json``) of this checkpoint to report.
        left_out: Why other evaluations found are not reported, one sentence each.
        license: The Hub's license identifier for the weights (``unknown`` when not said).
        repo_id: ``org/name`` on the Hub, for the usage lines (else a placeholder).
    """
    meta = {
        "library_name": "rrn",
        "pipeline_tag": "video-classification",
        "license": license,
        "tags": _tags(config, dataset),
        "datasets": [dataset.hub_id] if dataset.hub_id else None,
        "metrics": _metric_types(evaluations) or None,
        "model-index": model_index(name, evaluations, config, dataset) if evaluations else None,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    sections = [
        _summary(config, name, dataset),
        _recognises(config),
        _training(config, dataset),
        _evaluation(evaluations, left_out, dataset),
        _usage(config, repo_id),
        _limits(config, dataset, evaluations),
    ]
    return f"---\n{front}---\n\n" + "\n\n".join(sections) + "\n"


def model_index(
    name: str,
    evaluations: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    dataset: DatasetFacts,
) -> list[dict[str, Any]]:
    """The ``model-index`` of the metadata: one result per evaluation, its protocol in every
    metric's ``args`` (the Hub flattens results into one ``EvalResult`` per metric)."""
    results = []
    for ev in evaluations:
        args = protocol(ev, config)
        metrics = [
            {"type": kind, "value": round(value, 6), "name": label, "args": dict(args)}
            for kind, label, value in metric_values(ev)
        ]
        data = {
            "type": dataset.type,
            "name": dataset.name,
            "config": f"split{ev.get('split')}",
            "split": dataset.test_split,
        }
        task = DETECTION_TASK if is_detection_result(ev) else TASK
        results.append({"task": dict(task), "dataset": data, "metrics": metrics})
    return [{"name": name, "results": results}]


def metric_values(ev: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(model-index type, name, value) of each metric ``ev`` holds a number for, in order."""
    out = []
    for key, kind, label in DETECTION_METRICS if is_detection_result(ev) else METRICS:
        head, _, rest = key.partition(".")
        value = ev.get(head)
        if rest:
            value = value.get(rest) if isinstance(value, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((kind, label, float(value)))
    return out


def _metric_types(evaluations: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metadata's ``metrics``: every metric type reported, once, in order."""
    kinds = [kind for ev in evaluations for kind, _, _ in metric_values(ev)]
    return list(dict.fromkeys(kinds))


def protocol(ev: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """How an evaluation was measured: split, videos, chunks and views, sampling, frame size,
    precision, and which checkpoint and how it was chosen."""
    choice = ev.get("checkpoint_choice") or {}
    views = ev.get("views") or {}
    data = (ev.get("config") or {}).get("data") or config["train_config"].get("data") or {}
    return {
        "split": ev.get("split"),
        "protocol": ev.get("protocol"),
        "crops": views.get("crops"),
        "flip": views.get("flip"),
        "chunk_stride": ev.get("eval_stride"),
        "sample_every": None if data.get("fps") else data.get("sample_every"),
        "fps": data.get("fps"),
        "frame_size": data.get("frame_size", config["inputs"]["frame_size"]),
        "videos": ev.get("num_videos"),
        "videos_skipped": len(ev.get("skipped") or []),
        "precision": ev.get("precision"),
        "checkpoint": config["checkpoint"].get("file"),
        "chosen_by": choice.get("chosen_by"),
        "chosen_how": choice.get("description"),
        "epoch": choice.get("epoch"),
        "global_step": choice.get("global_step"),
    }


def _tags(config: Mapping[str, Any], dataset: DatasetFacts) -> list[str]:
    tags = ["rrn", "pytorch", "video-classification", "action-recognition"]
    tags += ["recurrent-residual-network", config["model"]["arch"], dataset.type]
    if config.get("background_class"):
        tags.append("online-action-detection")
    return list(dict.fromkeys(tags))


def _architecture(config: Mapping[str, Any]) -> str:
    model = config["model"]
    skips = model.get("skip_blocks") or []
    if not skips:
        return f"a per-frame {model['arch']} (no temporal skip: a receptive field of 1 frame)"
    return (
        f"torchvision's {model['arch']} with {model['skip_type']} temporal skip connections at "
        f"{', '.join(skips)} (a receptive field of {len(skips) + 1} frames)"
    )


def _summary(config: Mapping[str, Any], name: str, dataset: DatasetFacts) -> str:
    return (
        f"# {name}\n\n"
        f"A Recurrent Residual Network ({PAPER}): {_architecture(config)}, trained with rrn "
        f"{config.get('rrn_version', '')} to recognise {len(config['classes'])} actions of "
        f"{dataset.name}. At each skip block the previous frame's block input is added to the "
        "current frame's residual sum, `y_t = relu(F(x_t) + shortcut(x_t) + S(x_{t-1}))`, so "
        "the network sees motion at the cost of about one ResNet pass per frame; run online it "
        "gives a new prediction at every frame."
    )


def _recognises(config: Mapping[str, Any]) -> str:
    classes = list(config["classes"])
    shown = ", ".join(f"`{c}`" for c in classes[:CLASSES_SHOWN])
    more = len(classes) - CLASSES_SHOWN
    shown += f" and {more} more (config.json lists them all)" if more > 0 else ""
    background = config.get("background_class")
    note = (
        f" Class 0, `{background}`, means no action: the model is trained for online action "
        "detection in untrimmed video."
        if background
        else " It has no class for 'no action': whatever it is shown, it names one of these."
    )
    return f"## What it recognises\n\n{len(classes)} classes, in label order: {shown}.{note}"


def _inputs(config: Mapping[str, Any]) -> str:
    from rrn.data.sampling import Sampling

    i = config["inputs"]
    rate = Sampling(i["sample_every"], i.get("fps"), i["short_side"]).describe()
    return (
        f"{rate} (while decoding); centre crop {i['frame_size']} x {i['frame_size']} after "
        f"resizing the short side to {i.get('crop_short_side', i['short_side'])}; RGB scaled to "
        f"[0, 1], normalised with mean {_floats(i['mean'])} and std {_floats(i['std'])}"
    )


def _training(config: Mapping[str, Any], dataset: DatasetFacts) -> str:
    t = config["train_config"]
    data, model, optim = t.get("data", {}), t.get("model", {}), t.get("optim", {})
    ckpt = config["checkpoint"]
    step = (
        f"{optim.get('update_chunks')} chunks"
        if optim.get("update_chunks")
        else f"{optim.get('update_fraction')} of the training data"
    )
    rows = [
        ("data", f"{dataset.name} (`--dataset {dataset.type}`), split {data.get('split')}"),
        ("frames", _inputs(config)),
        (
            "initial weights",
            f"{model.get('weights')} (temporal skips: {model.get('temporal_init')})",
        ),
        (
            "optimisation",
            f"Adam, lr {optim.get('lr')} ({optim.get('schedule')} schedule), "
            f"weight decay {optim.get('weight_decay')}, batch {optim.get('batch_size')}, one step "
            f"per {step}, {optim.get('epochs')} epoch{'s' if optim.get('epochs') != 1 else ''}",
        ),
        (
            "augmentation",
            "random multi-scale crops, one per clip"
            + (", horizontal flips" if data.get("hflip") else ""),
        ),
        (
            "checkpoint",
            f"`{ckpt.get('file')}` (epoch {ckpt.get('epoch')}, step "
            f"{ckpt.get('global_step')}): {ckpt.get('description')}",
        ),
        ("software", f"rrn {config.get('rrn_version')}, torch {config.get('torch_version')}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    context = len(config["model"].get("skip_blocks") or []) + 1
    return (
        f"## How it was trained\n\nCross-entropy on the last frame of each chunk of {context} "
        "frames, as in the paper (all settings: `train_config` in config.json).\n\n"
        "| | |\n|---|---|\n" + table
    )


def _evaluation(
    evaluations: Sequence[Mapping[str, Any]], left_out: Sequence[str], dataset: DatasetFacts
) -> str:
    lines = ["## Evaluation"]
    if not evaluations:
        lines.append(
            "No evaluation of this checkpoint is reported (`rrn eval RUN` writes one; `rrn pack` "
            "reports those of the packed checkpoint)."
        )
    for ev in evaluations:
        choice = ev.get("checkpoint_choice") or {}
        skipped = len(ev.get("skipped") or [])
        numbers = ", ".join(
            f"{label[0].lower()}{label[1:]} {value:.4f}" for _, label, value in metric_values(ev)
        )
        lines.append(
            f"- Split {ev.get('split')}, {dataset.test_split} videos ({ev.get('num_videos')} "
            f"evaluated{f', {skipped} skipped' if skipped else ''}): {numbers}. Protocol: "
            f"{ev.get('protocol')}; {ev.get('precision')}. Checkpoint chosen by "
            f"{choice.get('description')}."
        )
    lines += [f"- Not reported: {why}" for why in left_out]
    return "\n\n".join(lines[:2]) + ("\n" + "\n".join(lines[2:]) if len(lines) > 2 else "")


def _usage(config: Mapping[str, Any], repo_id: str | None) -> str:
    where = f"hf://{repo_id}" if repo_id else "PACKAGE"
    said = "" if repo_id else " (PACKAGE: this folder, or `hf://org/name` once pushed)"
    return f"""## How to use it with rrn

```bash
pip install 'rrn[hub]'
rrn predict {where} video.mp4                        # top-5 classes of a video
rrn stream {where} /dev/video0 --realtime             # online, frame by frame
rrn eval {where} --data-root DATA --out results/      # the evaluation, on your copy of the data
```

```python
import rrn

model = rrn.load_model("{where}")              # in eval mode; model.info describes it
x = model.inputs.transform()(uint8_frames)    # (N, H, W, 3) uint8 -> (N, 3, S, S), as trained
probs = model.forward_video(x).softmax(-1)    # (N, {len(config["classes"])}): per frame
```

Every command that takes a run or a checkpoint takes the package{said}; \
loading checks that the weights, the model and the classes fit together. Frames are prepared as \
config.json's `inputs` say; rrn does it for you."""


def _limits(
    config: Mapping[str, Any], dataset: DatasetFacts, evaluations: Sequence[Mapping[str, Any]]
) -> str:
    context = len(config["model"].get("skip_blocks") or []) + 1
    items = [
        f"It knows the {len(config['classes'])} classes of {dataset.name} only, in the kind of "
        "video that data holds; other actions, cameras and viewpoints are outside what it learnt.",
        f"It sees {context} sampled frame{'s' if context > 1 else ''} at a time; actions longer "
        "than that are recognised from their parts "
        + (
            "(each frame's scores come from that frame and the ones before it, never a later "
            "one: an action's start is seen only once it is under way)."
            if config.get("background_class")
            else "(a video's answer is the mean over its chunks)."
        ),
        "Frames sampled, sized or normalised otherwise than in training (config.json's "
        "`inputs`) change its answers.",
    ]
    if dataset.synthetic:
        items.insert(
            0,
            "It was trained on `rrn synth`'s synthetic videos (moving shapes): a model for "
            "tests and demonstrations, not for real video.",
        )
    if dataset.flip_note:
        items.append(f"A mirrored video is another class here ({dataset.flip_note}).")
    if evaluations:
        other = (
            "another frame rate, other segment settings"
            if config.get("background_class")
            else "more crops, other chunks"
        )
        items.append(
            f"Its numbers hold for the protocol stated beside them; other protocols ({other}) "
            "give other numbers."
        )
    return "## Limits\n\n" + "\n".join(f"- {item}" for item in items)


def _floats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
