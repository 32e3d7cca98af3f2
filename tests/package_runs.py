"""Test-only runs for the model package tests: a random RRN saved as a run of ``rrn synth``
data, as rrn pack and rrn.load_model expect one."""

import torch

from rrn.checkpoint import make_checkpoint, save_checkpoint
from rrn.config import resolve_config
from rrn.model import build_model
from runs import randomize_batchnorm

RUN_SETTINGS = {"run": {"workers": 0, "progress": False, "device": "cpu"}}


def write_run(folder, synth, *, name="last.pt", selection="last", step=6, classes=None, seed=0):
    """A run of a random RRN (trained-looking BatchNorm) on ``synth`` at ``step``."""
    cfg = resolve_config(
        [
            (
                "flags",
                {
                    "data": {"data_root": str(synth), "frame_size": 32, "sample_every": 1},
                    "model": {"arch": "resnet18", "skip": "block4"},
                    "run": {"out": str(folder)},
                },
            )
        ]
    )
    classes = classes or cfg.data.load_split().classes
    torch.manual_seed(seed)
    model = build_model("resnet18", num_classes=len(classes), skip_blocks=("block4",)).eval()
    randomize_batchnorm(model, seed)
    ckpt = make_checkpoint(
        model,
        config=cfg.to_dict(),
        classes=classes,
        progress={"epoch": 2, "global_step": step},
        selection=selection,
    )
    save_checkpoint(folder / name, ckpt)
    return folder
