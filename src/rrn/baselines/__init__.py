"""The paper's baselines (Table 1): frozen per-frame features + a linear classifier or a GRU.

:func:`extract_features` runs a frozen network (torchvision ResNet-50 with ImageNet weights by
default, or any rrn checkpoint, whose skip states are then carried along the video) over every
sampled frame of every video and stores the globally average-pooled features at the end of
stages 2, 3 and 4, one ``.npz`` per video. It is resumable (finished videos are skipped) and
shards videos across torchrun ranks.

:func:`run_baseline` trains on those features, as in the paper's Sec. 4.1:

* ``avgpool``: the mean of a video's frame features (optionally z-normalised with statistics
  from the training split only) and a linear classifier (softmax regression);
* ``gru``: a 128-unit GRU over the sequence of frame features, classifying from its last
  hidden state.

Both write the same evaluation files as ``rrn eval`` (:func:`rrn.metrics.evaluate_probs`).
On features of untrimmed videos (thumos14, activitynet) the GRU is an online detector trained
on per-frame labels (:func:`run_detection_baseline`), scored as ``rrn eval`` scores a detection
run.

Four modules: :mod:`~rrn.baselines.features` (extracting and reading the features),
:mod:`~rrn.baselines.models` (the classifiers), :mod:`~rrn.baselines.training` (training and
evaluating them), :mod:`~rrn.baselines.detection` (the GRU on untrimmed videos); every name is
importable from here.
"""

from rrn.baselines.detection import run_detection_baseline
from rrn.baselines.features import (
    EXTRACTION_FILE,
    FEATURE_STAGES,
    META_FILE,
    FeatureReport,
    claim_features_folder,
    extract_dataset_features,
    extract_features,
    extraction_settings,
    feature_file,
    load_feature_model,
    load_features,
    weights_digest,
    write_features_meta,
)
from rrn.baselines.models import AvgPoolClassifier, GRUClassifier, znorm_stats
from rrn.baselines.training import baseline_protocol, run_baseline

__all__ = [
    "EXTRACTION_FILE",
    "FEATURE_STAGES",
    "META_FILE",
    "AvgPoolClassifier",
    "FeatureReport",
    "GRUClassifier",
    "baseline_protocol",
    "claim_features_folder",
    "extract_dataset_features",
    "extract_features",
    "extraction_settings",
    "feature_file",
    "load_feature_model",
    "load_features",
    "run_baseline",
    "run_detection_baseline",
    "weights_digest",
    "write_features_meta",
    "znorm_stats",
]
