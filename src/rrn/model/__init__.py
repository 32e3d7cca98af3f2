"""The Recurrent Residual Network (Iqbal et al., GCPR 2017) on torchvision's ResNet.

One module per concern:

* :mod:`~rrn.model.archs`: the registry of architectures (:data:`ARCHITECTURES`) and the names
  of their blocks (module paths and the paper's aliases);
* :mod:`~rrn.model.skips`: the registry of skip types (:data:`SKIP_TYPES`): how ``S(x_{t-1})``
  is computed and initialised (eq. 2-4);
* :mod:`~rrn.model.blocks`: torchvision's residual blocks with their sum exposed, calling the
  skip they are given;
* :mod:`~rrn.model.network`: :class:`RecurrentResNet`, greedy chunks, whole videos, live steps;
* :mod:`~rrn.model.weights`: initial weights, resolved and loaded in one place;
* :mod:`~rrn.model.info`: what a model knows about itself (``model.info``);
* :mod:`~rrn.model.build`: :func:`build_model`; :mod:`~rrn.model.cost`: parameters and FLOPs.
"""

from rrn.model.archs import (
    ALIASES,
    ARCHITECTURES,
    STAGES,
    ArchSpec,
    block_paths,
    get_arch,
    register_arch,
    resolve_skip_blocks,
    resolve_skips,
    skips_for_context,
)
from rrn.model.blocks import TemporalBasicBlock, TemporalBlock, TemporalBottleneck
from rrn.model.build import build_model
from rrn.model.cost import chunk_gflops, count_parameters
from rrn.model.errors import ModelError, WeightsError, WeightsUnavailableError
from rrn.model.info import ModelInfo, WeightsReport
from rrn.model.network import RecurrentResNet, State
from rrn.model.skips import (
    INITS,
    SKIP_TYPES,
    IdentitySkip,
    LinearSkip,
    NonlinearSkip,
    Skip,
    SkipSpec,
    get_skip_type,
    register_skip_type,
)
from rrn.model.weights import (
    CHECKPOINT_FORMAT,
    WEIGHT_KEYWORDS,
    WeightsSource,
    imagenet_state_dict,
    load_weights,
    resolve_weights,
    weights_keyword,
)

ARCHS = tuple(ARCHITECTURES)  # the registered names, in order

__all__ = [
    "ALIASES",
    "ARCHITECTURES",
    "ARCHS",
    "CHECKPOINT_FORMAT",
    "INITS",
    "SKIP_TYPES",
    "STAGES",
    "WEIGHT_KEYWORDS",
    "ArchSpec",
    "IdentitySkip",
    "LinearSkip",
    "ModelError",
    "ModelInfo",
    "NonlinearSkip",
    "RecurrentResNet",
    "Skip",
    "SkipSpec",
    "State",
    "TemporalBasicBlock",
    "TemporalBlock",
    "TemporalBottleneck",
    "WeightsError",
    "WeightsReport",
    "WeightsSource",
    "WeightsUnavailableError",
    "block_paths",
    "build_model",
    "chunk_gflops",
    "count_parameters",
    "get_arch",
    "get_skip_type",
    "imagenet_state_dict",
    "load_weights",
    "register_arch",
    "register_skip_type",
    "resolve_skip_blocks",
    "resolve_skips",
    "skips_for_context",
    "weights_keyword",
    "resolve_weights",
]
