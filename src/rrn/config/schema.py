"""The settings schema: one dataclass per concern, each field documented by the string under it
and validated in ``__post_init__``.

:class:`TrainConfig` (sections ``data``, ``model``, ``optim``, ``run``) is what ``rrn train``
resolves and saves; the other commands add a dataclass of their own. A field's type says what
it may hold: a ``Literal`` of :mod:`rrn.choices` (:func:`check_literals`), a :class:`Range` on
every number (:func:`check_ranges`); the data's fields are also checked against the sampling
rules (:class:`~rrn.data.sampling.Sampling`) and the dataset format's traits. Values reach the
dataclasses in layers (YAML, a checkpoint's config, flags: :mod:`rrn.config.layers`), applied
over the defaults by :func:`resolve_config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from rrn.choices import (
    Arch,
    CacheFormat,
    DatasetName,
    Decoder,
    Engine,
    Schedule,
    SkipType,
    Stage,
    TemporalInit,
    Tracker,
)
from rrn.config.layers import field_types, flag_name, merge_layers, strip_optional
from rrn.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take, declared on its field:
    ``lr: Annotated[float, Range(0, low_open=True)] = 1e-4``.

    Every ``int``/``float`` field of the schema declares one (a test checks), and
    :func:`check_fields` applies it generically, so a value out of range, NaN or infinite fails
    when the settings are parsed, naming the flag, never later inside a thread or a loop.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """The bound ``low`` itself is excluded."""
    high_open: bool = False
    hint: str = ""
    """Said after the range, e.g. what to use instead."""

    def describe(self) -> str:
        """``> 0``, ``>= 1``, ``<= 10``, ``in 1..100``, ``in (0, 1]``."""
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            if not (self.low_open or self.high_open) and float(lo).is_integer():
                return f"in {_number(lo)}..{_number(hi)}"
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_number(lo)}, {_number(hi)}{right}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {_number(lo)}"
        return f"{'<' if self.high_open else '<='} {_number(hi)}"

    def contains(self, value: float) -> bool:
        lo, hi = self.low, self.high
        above = lo is None or (value > lo if self.low_open else value >= lo)
        below = hi is None or (value < hi if self.high_open else value <= hi)
        return above and below


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POSITIVE = Range(0, low_open=True)
"""> 0."""
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
PROBABILITY = Range(0, 1)
SEED = Range(0, 2**32 - 1, hint="what numpy, DataLoader workers and torch all accept")


# --------------------------------------------------------------------------------------------
# The dataclasses
# --------------------------------------------------------------------------------------------


#: The DataConfig fields that say which videos a dataset holds and how to read them: every
#: command that reads a dataset takes all of them (one declaration, not one list per command).
DATASET_FIELDS = (
    "dataset",
    "data_root",
    "split_dir",
    "split",
    "train_list",
    "test_list",
    "missing",
    "decoder",
)
#: The DataConfig fields of the frame cache (where decoded frames are kept, in which format).
CACHE_FIELDS = ("cache_dir", "cache_format", "cache_quality")
#: The DataConfig fields that decide which frames are decoded, at which size.
FRAME_FIELDS = ("sample_every", "fps", "frame_size", "short_side")


@dataclass
class DataConfig:
    dataset: DatasetName = "ucf101"
    """Annotation format: ucf101 or hmdb51 official splits; list (--train-list/--test-list, or
    without them one folder per class under --data-root, split by group into 3 folds);
    kinetics (train.csv/validate.csv, videos in train/ and validate/ or val/); ssv2
    (Something-Something v2 JSON files, <id>.webm videos); rawframes (mmaction2 frame-folder
    lists --train-list/--test-list, 'frame_dir total_frames label'); untrimmed videos with
    labelled intervals, for online action detection: thumos14 (<Class>_val.txt/_test.txt
    anywhere under --split-dir; val videos train, test videos test) or activitynet
    (--split-dir FILE.json: ActivityNet's JSON)."""
    data_root: str | None = None
    """Folder with the videos or frame folders (UCF-101: <root>/<Class>/<video>.avi)."""
    split_dir: str | None = None
    """Folder with the official split or annotation files (default: --data-root)."""
    split: Annotated[int, Range(1, 3)] = 1
    """Which official train/test split (1, 2 or 3; kinetics and ssv2 have one, 1)."""
    train_list: str | None = None
    """With --dataset list or rawframes: text file of training videos, one 'path label' (list)
    or 'frame_dir total_frames label' (rawframes) a line."""
    test_list: str | None = None
    """With --dataset list or rawframes: text file of test videos, in the same format."""
    sample_every: Annotated[int, AT_LEAST_1] = 10
    """Keep every n-th frame of a video; consecutive kept frames form a chunk."""
    fps: Annotated[float, POSITIVE] | None = None
    """Sample frames evenly in time at this rate instead of every --sample-every-th frame
    (which is then ignored; default: use --sample-every)."""
    frame_size: Annotated[int, AT_LEAST_1] = 224
    """Side of the square crop fed to the network, in pixels."""
    short_side: Annotated[int, AT_LEAST_1] | None = None
    """Resize each frame's short side to this while decoding, before cropping (default:
    round(8/7 x --frame-size), e.g. 256 for 224)."""
    chunks_per_video: Annotated[int, AT_LEAST_1] = 1
    """Training chunks drawn from each video per epoch (untrimmed videos: times one per
    --seconds-per-chunk)."""
    seconds_per_chunk: Annotated[float, POSITIVE] = 1.0
    """Untrimmed videos (thumos14, activitynet): one training chunk per this many seconds of
    each video per epoch, so chunks per video scale with its length; each chunk ends at a frame
    drawn from inside the video and is labelled by that last frame."""
    background_fraction: Annotated[float, PROBABILITY] | None = 0.5
    """Untrimmed videos: the share of training chunks whose last frame is Background, at most
    (capped at Background's share of the frames; none: chunks drawn as the frames come, which
    lets Background swamp the batches of mostly empty video)."""
    eval_stride: Annotated[int, AT_LEAST_1] | None = None
    """Stride, in sampled frames, between the chunks of a test video (default: T, i.e. all
    N // T non-overlapping chunks)."""
    cache_dir: str | None = None
    """Frame cache folder, read and filled (default: <data-root>/.rrn-cache when rrn cache has
    built it, else no cache)."""
    cache_format: CacheFormat = "jpeg"
    """Format of the frames written to the frame cache: jpeg (JPEG frames behind an index, 9-14x
    smaller) or npy (uncompressed, memory-mapped, fastest to read). Reading finds either."""
    cache_quality: Annotated[int, Range(1, 100)] = 90
    """JPEG quality (1-100) of --cache-format jpeg."""
    decoder: Decoder = "auto"
    """Video decoding backend (auto = PyAV, measured the fastest for strided sampling)."""
    hflip: bool = True
    """Random horizontal flips in training (turn off when left/right is the class, e.g. for
    rrn synth data)."""
    missing: Literal["error", "skip"] = "error"
    """A video listed in the split files but missing on disk: error, or skip it with a
    warning."""
    val_fraction: Annotated[float, Range(0, 1, high_open=True)] = 0.0
    """Hold out about this fraction of the training videos as a validation split, by group
    (clips of one source video stay together): best.pt follows its accuracy. 0 = none; then no
    checkpoint is selected and the result of a run is its last.pt."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.fps is not None and not _dataset_format(self.dataset).timestamps:
            raise ConfigError(
                f"--fps {self.fps:g} with --dataset {self.dataset}: its frames have no timestamps; "
                "use --sample-every k (frames extracted at R frames/s give R/k frames/s)"
            )
        try:  # sample_every, fps, short_side: the rules live in Sampling, checked once there
            self.sampling()
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def sampling(self):
        """The frames a video gives (every k-th or by fps, at which short side): the frame
        cache's key and the decoder's arguments, as one :class:`~rrn.data.sampling.Sampling`."""
        from rrn.data.sampling import Sampling, default_short_side

        short = (
            self.short_side if self.short_side is not None else default_short_side(self.frame_size)
        )
        return Sampling(sample_every=self.sample_every, fps=self.fps, short_side=short)

    def split_kwargs(self) -> dict[str, Any]:
        """The arguments of :func:`rrn.data.splits.load_split` that pick this dataset's split."""
        if self.data_root is None:
            raise ConfigError("--data-root is required (the folder with the videos)")
        return {
            "dataset": self.dataset,
            "data_root": self.data_root,
            "split_dir": self.split_dir,
            "split": self.split,
            "train_list": self.train_list,
            "test_list": self.test_list,
        }

    def load_split(self, missing: str | None = None):
        """The train/test records of this dataset and split (:func:`rrn.data.splits.load_split`)."""
        from rrn.data.splits import load_split

        return load_split(**self.split_kwargs(), missing=missing or self.missing)


@dataclass
class ModelConfig:
    arch: Arch = "resnet50"
    """ResNet depth the recurrent residual network is built on."""
    skip: tuple[str, ...] | None = None
    """Blocks with a temporal skip, comma-separated aliases (block1, block2, midblock4, block4)
    or module paths (layer4.2); 'none' for a per-frame ResNet. Default: from --context, else
    block4."""
    skip_type: SkipType = "identity"
    """How the previous frame's features enter a temporal skip: identity (eq. 2), linear 1x1
    conv (eq. 3) or nonlinear relu(1x1 conv) (eq. 4)."""
    context: Annotated[int, AT_LEAST_1] | None = None
    """Temporal context T = frames per training chunk = number of skips + 1. Alone it picks the
    last T-1 blocks; with --skip it must agree."""
    weights: str = "imagenet"
    """Initial weights: none, imagenet (torchvision's, downloaded once into its cache), a
    torchvision state dict file, an rrn checkpoint, or a model package (a folder or
    hf://org/name); the classifier of a checkpoint or package is re-initialised when its classes
    differ from the run's."""
    temporal_init: TemporalInit = "kaiming"
    """Initialisation of the temporal skip parameters."""
    freeze: tuple[Stage, ...] = ()
    """Stages kept frozen (weights and BatchNorm statistics), comma-separated from: stem,
    layer1, layer2, layer3, layer4."""
    sync_bn: bool = False
    """Under DDP, synchronise BatchNorm statistics across processes."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.skip is not None and self.context is not None:
            if len(self.skip) + 1 != self.context:
                raise ConfigError(
                    f"--context {self.context} needs {self.context - 1} temporal skip(s) but "
                    f"--skip names {len(self.skip)} ({','.join(self.skip) or 'none'}); "
                    "give only one of the two, or make them agree"
                )
        if not self.weights:
            raise ConfigError(
                "--weights must be none, imagenet, a file path, a package folder or hf://org/name"
            )


@dataclass
class OptimConfig:
    epochs: Annotated[int, AT_LEAST_1] = 10
    """Passes over the training data."""
    batch_size: Annotated[int, AT_LEAST_1] = 8
    """Chunks per forward/backward (micro-batch); bounds memory, not the optimiser step."""
    lr: Annotated[float, POSITIVE] = 1e-4
    """Adam learning rate at the start of the schedule."""
    weight_decay: Annotated[float, AT_LEAST_0] = 0.0
    """L2 weight decay added by Adam."""
    update_fraction: Annotated[
        float,
        Range(
            0,
            1,
            low_open=True,
            hint="a fraction of the training data; use --update-chunks N for a number of chunks",
        ),
    ] = 0.01
    """Optimiser step every this fraction of the training chunks, in (0, 1] (0.01 = 1%, the
    paper's setting); gradients are accumulated over micro-batches until then."""
    update_chunks: Annotated[int, AT_LEAST_1] | None = None
    """Optimiser step every this many training chunks instead of --update-fraction (default:
    use --update-fraction)."""
    schedule: Schedule = "constant"
    """Learning-rate schedule over the optimiser steps."""
    lr_milestones: tuple[int, ...] = ()
    """With --schedule step: epochs after which the learning rate is multiplied by --lr-gamma."""
    lr_gamma: Annotated[float, Range(0, 1, low_open=True)] = 0.1
    """With --schedule step: factor applied at each milestone."""
    warmup_steps: Annotated[int, AT_LEAST_0] = 0
    """Linear warm-up from 0 over this many optimiser steps."""
    grad_clip: Annotated[float, POSITIVE] | None = None
    """Clip the gradient norm to this value (default: no clipping)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.schedule == "step" and not self.lr_milestones:
            raise ConfigError("--schedule step needs --lr-milestones, e.g. --lr-milestones 4,8")
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ConfigError(f"--lr-milestones must be increasing, got {self.lr_milestones}")

    def chunks_per_step(self, num_chunks: int) -> int:
        """Chunks per optimiser step for a training set of ``num_chunks`` chunks."""
        if self.update_chunks is not None:
            return self.update_chunks
        return max(1, round(self.update_fraction * num_chunks))


@dataclass
class RunConfig:
    out: str = "runs/rrn"
    """Run directory: config.yaml, last.pt, best.pt, log.jsonl, curves.png, eval results."""
    seed: Annotated[int, SEED] = 0
    """Seeds initialisation, data order and augmentation; equal seeds give equal runs."""
    device: str = "auto"
    """cuda, cuda:N, cpu, or auto (cuda when available). Under torchrun each process takes
    cuda:LOCAL_RANK."""
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"
    """Mixed precision. CUDA: auto = bf16 where supported, else fp16. CPU: only bf16 (oneDNN;
    faster on CPUs with AVX512-BF16 or AMX, slower elsewhere); auto and fp16 are full precision
    there."""
    channels_last: bool = True
    """Use the channels_last memory format on CUDA (ignored on CPU, where it showed no consistent
    gain: benchmarks/precision.py)."""
    workers: Annotated[int, AT_LEAST_0] | None = None
    """DataLoader worker processes per process (0 = load in the main process; default: the CPU
    cores this process may use, at most 8, shared by the processes of a torchrun job)."""
    pin_memory: bool = True
    """Pin host memory for faster copies to the GPU (ignored on CPU)."""
    checkpoint_every: Annotated[int, AT_LEAST_0] = 50
    """Also write RUN/last.pt every this many optimiser steps within an epoch (0 = only at the
    end of each epoch)."""
    val_every: Annotated[int, AT_LEAST_0] = 1
    """Evaluate on the validation split (--val-fraction) every this many epochs and at the end
    (0 = never); best.pt follows its video accuracy."""
    watch_test: bool = False
    """Also evaluate on the test split at those epochs, to watch it: logged as test_* and drawn
    in curves.png, never used to choose a checkpoint."""
    log_every: Annotated[int, AT_LEAST_1] = 1
    """Write a line to RUN/log.jsonl every this many optimiser steps."""
    progress: bool = True
    """Show progress bars (on a terminal; a log file gets the line each epoch or pass ends with)."""
    track: tuple[Tracker, ...] = ()
    """Experiment trackers that follow the run: the config, every number of log.jsonl, the model
    at the end; several as wandb,mlflow (none: no tracker). TensorBoard events are written
    whenever tensorboard is installed; naming it makes it required."""
    resume: bool = False
    """Continue the run in --out from its last.pt (same data order and weights as a run that
    was never interrupted)."""
    overwrite: bool = False
    """Start afresh in an --out that already holds a run (its checkpoints and log are
    replaced)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.out:
            raise ConfigError("--out must name a run directory")
        if self.device != "auto" and not (
            self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")
        ):
            raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


@dataclass
class TrainConfig:
    """Everything ``rrn train`` needs; saved as RUN/config.yaml and in every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        lists = (self.data.train_list, self.data.test_list)
        if problem := _dataset_format(self.data.dataset).list_files_problem(*lists):
            raise ConfigError(problem)
        if _dataset_format(self.data.dataset).temporal:
            _check_temporal(self)
        if self.data.val_fraction and not self.run.val_every:
            raise ConfigError(
                f"--val-fraction {self.data.val_fraction:g} with --val-every 0 holds videos out of "
                "training that are never evaluated; give --val-every N, or drop --val-fraction"
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, nested dict (lists for tuples): safe for YAML, JSON and ``weights_only``."""
        return {name: plain(dataclasses.asdict(getattr(self, name))) for name in SECTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **sections: Mapping[str, Any]) -> TrainConfig:
        """A copy with some fields changed, e.g. ``cfg.replace(run={"resume": True})``."""
        new = {
            name: dataclasses.replace(getattr(self, name), **sections.get(name, {}))
            for name in SECTIONS
        }
        return TrainConfig(**new)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a nested or flat dict; unknown keys raise :class:`ConfigError`."""
        return resolve_config([(source, values)])


@dataclass
class EvalConfig:
    """What ``rrn eval`` adds to the checkpoint's data settings and the run settings."""

    which: Literal["auto", "best", "last"] = "auto"
    """Checkpoint of a run directory: auto = best.pt when a validation split (--val-fraction)
    chose it, else last.pt; best (falling back to last; the output says how it was chosen);
    last."""
    batch_size: Annotated[int, AT_LEAST_1] = 32
    """Clips (chunks, or chunk views) per forward pass."""
    out: str | None = None
    """Folder for the results (default: the checkpoint's folder); {split} becomes the split
    evaluated."""
    views: Literal["center", "3crop"] = "center"
    """Spatial views of every chunk: center (one centre crop, the paper's protocol) or 3crop
    (three crops of the frame resized to short side --frame-size, at both ends and the middle of
    its long side: together they cover the frame); a video's prediction averages every view."""
    flip: bool = False
    """Also evaluate each view mirrored left-right (doubles the views; not for datasets whose
    classes are directions, e.g. ssv2)."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class FeaturesConfig:
    """What ``rrn features`` stores: pooled per-frame features of a frozen network."""

    out: str | None = None
    """Output folder (videos/<id>.npz and features.json)."""
    source: str = "imagenet"
    """imagenet (torchvision weights of --arch, the paper's baseline), none (random, fixed
    seed; for tests), or an rrn checkpoint / run directory."""
    stages: tuple[int, ...] = (2, 3, 4)
    """Stages whose output is average-pooled and stored, comma-separated from 1,2,3,4."""
    float16: bool = False
    """Store features as float16 (half the disk)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.stages or any(s not in (1, 2, 3, 4) for s in self.stages):
            raise ConfigError(f"--stages must name stages among 1,2,3,4, got {list(self.stages)}")


@dataclass
class BaselineConfig:
    """A classifier on stored features (``rrn baseline``; the paper's Table 1)."""

    features: str | None = None
    """Folder written by rrn features."""
    model: Literal["avgpool", "gru"] = "avgpool"
    """avgpool: mean of the frame features + linear classifier; gru: a GRU over the frames."""
    stage: Annotated[int, Range(1, 4)] = 4
    """Which stored stage's features to use (1-4)."""
    znorm: bool = False
    """Z-normalise features with statistics of the training split only."""
    epochs: Annotated[int, AT_LEAST_1] = 100
    """Passes over the training videos."""
    lr: Annotated[float, POSITIVE] = 1e-3
    """Adam learning rate."""
    weight_decay: Annotated[float, AT_LEAST_0] = 1e-4
    """L2 weight decay added by Adam."""
    batch_size: Annotated[int, AT_LEAST_1] = 64
    """Videos per optimiser step (detection: windows)."""
    hidden: Annotated[int, AT_LEAST_1] = 128
    """GRU units (the paper: 128)."""
    window: Annotated[int, AT_LEAST_1] = 128
    """Detection (features of thumos14/activitynet videos, --model gru): sampled frames per
    training window, its hidden state from zero at its first frame (MiniROAD: 128)."""
    window_stride: Annotated[int, AT_LEAST_1] = 4
    """Detection: frames between the last frames of two training windows of a video (MiniROAD:
    4), the first at a random offset each epoch."""
    loss_steps: Annotated[int, AT_LEAST_1] = 1
    """Detection: the loss is on the last this many frames of each window (MiniROAD: 1, the
    frame the window's whole past has been seen for)."""
    seed: Annotated[int, SEED] = 0
    """Seeds initialisation and order."""
    out: str | None = None
    """Where to write the results (default: the --features folder)."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def stem(self) -> str:
        """Name of the result files: ``baseline_<model>_stage<s>[_znorm]``."""
        return f"baseline_{self.model}_stage{self.stage}{'_znorm' if self.znorm else ''}"


@dataclass
class StreamConfig:
    """What ``rrn stream`` writes and how it keeps up (see :mod:`rrn.online`)."""

    out: str | None = None
    """Annotated video: every source frame, with the top classes of the latest sampled frame
    drawn on it (.mp4; default: none). With several sources, a folder: one annotated video
    (NAME.mp4) and one events file (NAME.events.jsonl) per source."""
    json: str | None = None
    """Events file: one JSON line per classified frame (time, top classes) and per action
    segment phase (start, update, end), with the stream's name; all sources in one file
    (default: none)."""
    smooth: Annotated[int, AT_LEAST_1] | None = None
    """Average the probabilities of the last N sampled frames before picking the top classes
    and segments (1 = no smoothing; default: the model's temporal context T)."""
    labels: Annotated[int, AT_LEAST_1] = 3
    """Most probable classes shown per sampled frame: drawn on the annotated video and listed
    in the events file."""
    realtime: bool = False
    """Keep up with the source: when the model falls behind, skip to the newest frame and count
    the dropped ones. A file is then played at its frame rate, like a live source (default:
    every sampled frame is classified)."""
    threads: Annotated[int, AT_LEAST_1] | None = None
    """CPU threads for the model step, with either engine (intra-op; default: the engine's,
    the cores available)."""
    engine: Engine | None = None
    """What runs the model step: torch (eager PyTorch) or onnxruntime (the step exported to
    ONNX and run by ONNX Runtime: about 2x faster for one stream on a CPU; needs the export
    extra). Both give the same outputs (to 1e-4). Default: onnxruntime on the CPU when it is
    installed, else torch; torch on a GPU."""
    onnx_dir: str | None = None
    """An `rrn export --format onnx` folder of this checkpoint for the onnxruntime engine
    (its model.json must describe the same model and its step give the same outputs; default:
    the step is exported at the start and kept in the cache folder, $RRN_CACHE_HOME or
    ~/.cache/rrn, for the next start)."""
    timeout: Annotated[float, POSITIVE] = 10.0
    """Seconds a network stream may take to open, and a live source may go without sending a
    frame before it counts as ended (or stalled)."""
    threshold: Annotated[float, PROBABILITY] = 0.0
    """Smoothed probability the top class needs for an action segment (0: any top class);
    below it no segment is open."""
    min_segment: Annotated[float, AT_LEAST_0] = 0.0
    """Seconds a run of one top class must last before its segment is announced (shorter
    runs are flicker: no segment events)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.onnx_dir is not None and self.engine == "torch":
            raise ConfigError(
                "--onnx-dir is an export for the onnxruntime engine; drop it or use "
                "--engine onnxruntime"
            )


@dataclass
class ExportConfig:
    """What ``rrn export`` writes (see :mod:`rrn.export`)."""

    format: Literal["onnx", "torchscript", "triton"] = "onnx"
    """onnx (step.onnx, chunk.onnx; for ONNX Runtime and other runtimes), torchscript
    (step.pt, chunk.pt; for torch.jit.load in Python or LibTorch) or triton (a Triton
    Inference Server model repository: the step with its state kept by Triton's sequence
    batcher, a config.pbtxt, labels and a client example)."""
    out: str | None = None
    """Folder for the exported graphs and model.json, or the Triton model repository
    (required)."""
    opset: Annotated[int, Range(17, hint="torch.onnx's exporter")] = 18
    """ONNX opset version (onnx and triton)."""
    check: bool = True
    """Run the exported graphs once against PyTorch (a random video through the step, a random
    clip through the chunk classifier) and report the largest difference (onnx: needs
    onnxruntime; not for triton, whose model is the ONNX step)."""
    name: str = "rrn"
    """Model name in the Triton repository (triton only)."""
    max_batch_size: Annotated[int, AT_LEAST_1] = 8
    """Streams Triton's sequence batcher steps together at most (triton only)."""
    source_fps: Annotated[float, POSITIVE] = 25.0
    """Frame rate that sample_every refers to for a live source (the training videos' rate,
    e.g. 25 for UCF-101): a model trained on every 10th frame then sees one frame per 0.4 s."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ServeConfig:
    """How ``rrn serve`` listens, whom it lets in, and what it accepts (see :mod:`rrn.serve`).

    What its events say (``labels``, ``smooth``, ``threshold``, ``min_segment``) is
    :class:`StreamConfig`'s, as for ``rrn stream``. docs/serve.md says what one client can cost
    the server at most with these limits."""

    host: str = "127.0.0.1"
    """Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) needs a token:
    the service would be reachable from other machines."""
    port: Annotated[int, Range(0, 65535)] = 8000
    """TCP port (0: any free port, printed at the start)."""
    token: str | None = None
    """Bearer token every route but /healthz and the page requires (default: the RRN_TOKEN
    environment variable; none: no authentication, allowed on loopback only): at least 16
    visible ASCII characters, e.g. from `openssl rand -hex 16`. WebSocket clients may give it as
    ?token=."""
    allowed_hosts: tuple[str, ...] = ()
    """Host header values accepted besides the bound address (and, on loopback, localhost,
    127.0.0.1 and [::1]): the names clients reach the service by, e.g. rrn.example.org. Other
    Host headers are refused (a guard against DNS rebinding). Default on a non-loopback address:
    any."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (scheme://host[:port]) besides the service's own whose pages may use it.
    Browsers send Origin with every WebSocket and cross-site request; a request from another
    origin is refused (a page the user opens cannot drive the service). Clients that are not
    browsers send none and are not affected."""
    max_streams: Annotated[int, AT_LEAST_1] = 64
    """Streams open at once; a further one is refused with an error."""
    max_batch: Annotated[int, AT_LEAST_1] = 16
    """Streams stepped in one batched model call at most."""
    max_wait_ms: Annotated[float, Range(0, 1000)] = 5.0
    """How long a frame may wait for other streams' frames to join its batch."""
    max_frame_bytes: Annotated[int, Range(1024)] = 2_000_000
    """Bytes of one frame message (capture time + JPEG/PNG); a larger one is an error for its
    stream, and one over twice this closes the connection (1009)."""
    max_pixels: Annotated[int, AT_LEAST_1] = 4096 * 2160
    """Width x height a frame's image may declare (checked before decoding)."""
    max_aspect: Annotated[float, Range(1)] = 4.0
    """Longer side / shorter side of a frame's image at most (checked before decoding): a
    40000 x 1 image would be resized to millions of pixels for the model's short side."""
    max_fps: Annotated[float, POSITIVE] = 60.0
    """Frames per second one stream may send; frames beyond are dropped unread (counted)."""
    max_time_gap: Annotated[float, POSITIVE] = 60.0
    """Seconds a stream's capture time may jump forward between two frames; a frame that jumps
    further is an error for its stream (a clock that was reset starts a new stream)."""
    decode_workers: Annotated[int, AT_LEAST_1] | None = None
    """Threads decoding the streams' frames, shared by all streams, each stream using at most
    one at a time (default: the CPU cores this process may use)."""
    max_upload_mb: Annotated[float, POSITIVE] = 200.0
    """Size of a video uploaded to /v1/predict, in MB."""
    max_upload_seconds: Annotated[float, POSITIVE] = 600.0
    """Duration of an uploaded video at most (by its header, then by its frames): a longer one
    is refused with 413 (a 1 MB file can hold 44,000 tiny frames)."""
    max_upload_frames: Annotated[int, AT_LEAST_1] = 36_000
    """Frames an uploaded video may hold (decoded, not only the sampled ones); more is refused
    with 413."""
    upload_timeout: Annotated[float, POSITIVE] = 60.0
    """Seconds a client may take to send an upload; a slower one gets 408 (the upload slot is
    taken only once the whole upload is in)."""
    idle_timeout: Annotated[float, POSITIVE] = 30.0
    """Seconds a stream may go without a message before it is ended and its state freed."""
    source_fps: Annotated[float, POSITIVE] = 25.0
    """Frame rate that sample_every refers to for a live source (the training videos' rate,
    e.g. 25 for UCF-101): a model trained on every 10th frame then sees one frame per 0.4 s."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.token is not None and not TOKEN.fullmatch(self.token):
            raise ConfigError(
                "--token must be at least 16 visible ASCII characters without spaces (e.g. "
                "`openssl rand -hex 16`); a short or blank token is easy to guess"
            )


TOKEN = re.compile(r"[!-~]{16,}")
"""What a bearer token may be: 16 or more visible ASCII characters (it travels in a header and
in a WebSocket URL's query)."""


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def check_fields(obj) -> None:
    """The generic checks of every settings dataclass: :func:`check_literals` and
    :func:`check_ranges`. Each ``__post_init__`` calls it first."""
    check_literals(obj)
    check_ranges(obj)


def check_ranges(obj) -> None:
    """Every ``int``/``float`` field of dataclass ``obj`` is finite and in the :class:`Range`
    its type declares (``Annotated[float, Range(...)]``).

    Raises:
        ConfigError: naming the flag, the range and the value.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is not None and not isinstance(value, bool) and isinstance(value, int | float):
            check_number(type(obj), f.name, value)


def check_number(cls: type, name: str, value: float) -> None:
    """``value`` for field ``name`` of ``cls`` is finite and in the field's :class:`Range`.

    Raises:
        ConfigError: naming the flag, the range and the value.
    """
    flag = f"--{flag_name(name)}"
    if not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value}")
    bounds = field_range(cls, name)
    if bounds is not None and not bounds.contains(value):
        hint = f" ({bounds.hint})" if bounds.hint else ""
        raise ConfigError(f"{flag} must be {bounds.describe()}{hint}, got {_number(value)}")


def field_range(cls: type, name: str) -> Range | None:
    """The :class:`Range` declared on field ``name`` of ``cls``, if any."""
    tp, _ = strip_optional(typing.get_type_hints(cls, include_extras=True)[name])
    if typing.get_origin(tp) is Annotated:
        return next((m for m in tp.__metadata__ if isinstance(m, Range)), None)
    return None


def _check_temporal(cfg: TrainConfig) -> None:
    """What training on untrimmed videos does not do yet: choose checkpoints or watch the test
    split by the chunk accuracy of trimmed clips (detection is scored per frame by rrn eval)."""
    for flag, given in (
        ("--val-fraction", cfg.data.val_fraction),
        ("--watch-test", cfg.run.watch_test),
    ):
        if given:
            raise ConfigError(
                f"{flag} with --dataset {cfg.data.dataset}: evaluation during training scores "
                "whole trimmed videos, not frames of untrimmed ones; train without it (the "
                "run's result is last.pt) and score it per frame (docs/detection.md)"
            )


def _dataset_format(name: str):
    """The traits of ``--dataset name`` (:data:`rrn.data.formats.FORMATS`, imported when first
    asked, as :meth:`DataConfig.sampling` imports the sampling rules)."""
    from rrn.data.formats import dataset_format

    return dataset_format(name)


def check_literals(obj) -> None:
    """Every field of dataclass ``obj`` typed with a ``Literal`` (or a tuple of one) holds one of
    its names: the choices come from the type itself (:mod:`rrn.choices`), never a second list."""
    for f in dataclasses.fields(obj):
        tp, _ = strip_optional(field_types(type(obj))[f.name])
        value = getattr(obj, f.name)
        if typing.get_origin(tp) is tuple and typing.get_origin(typing.get_args(tp)[0]) is Literal:
            for item in value or ():
                check_choice(f.name, item, typing.get_args(typing.get_args(tp)[0]))
        elif typing.get_origin(tp) is Literal and value is not None:
            check_choice(f.name, value, typing.get_args(tp))


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"--{flag_name(name)}: {value!r} is not one of {', '.join(choices)}{did}")


def plain(value: Any) -> Any:
    """Tuples/Paths/mappings -> lists/str/dicts of primitives (YAML, JSON, ``weights_only``)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# The schema from layers of values
# --------------------------------------------------------------------------------------------


def resolve_config(
    layers: list[tuple[str, Mapping[str, Any]]], *, quiet: Iterable[str] = ()
) -> TrainConfig:
    """Apply ``layers`` (name, values) in order over the defaults and validate the result.

    Args:
        layers: e.g. ``[("checkpoint", saved), ("exp.yaml", yaml_values), ("flags", flags)]``.
        quiet: names of layers written by rrn itself (a checkpoint's config), whose renamed
            keys are translated without a deprecation warning.

    Returns:
        The validated :class:`TrainConfig`.
    """
    merged = merge_layers(layers, SECTIONS, set(quiet))
    return TrainConfig(**{name: cls(**merged[name]) for name, cls in SECTIONS.items()})


def describe_changes(old: TrainConfig, new: TrainConfig) -> list[str]:
    """``['optim.epochs: 2 -> 3', ...]`` for the fields that differ."""
    a, b = old.to_dict(), new.to_dict()
    return [f"{s}.{k}: {a[s][k]!r} -> {b[s][k]!r}" for s in a for k in a[s] if a[s][k] != b[s][k]]
