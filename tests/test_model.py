"""Tests of rrn.model: equalities with torchvision, receptive fields, streaming, weights, errors.

Everything runs on CPU with random weights (resnet18 at 32-64 px; resnet50 at 32 px for the
Bottleneck block). Equalities are checked in eval mode, where BatchNorm uses running statistics
and so does not couple the frames of a batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.testing import assert_close

from rrn.model import (
    ALIASES,
    SKIP_TYPES,
    RecurrentResNet,
    WeightsError,
    WeightsReport,
    block_paths,
    build_model,
    chunk_gflops,
    count_parameters,
    load_weights,
    resolve_skip_blocks,
    skips_for_context,
)

K = 5  # classes
SIZE = 32  # frame side in px: resnet's final map is 1x1, enough to test every path
ARCHS = ("resnet18", "resnet50")  # BasicBlock, Bottleneck

# Skip sets the issue asks for: deepest, shallowest, one per depth, and the projection block.
SKIP_SETS = {
    "block4": ("block4",),
    "block1": ("block1",),
    "block1+block2+block4": ("block1", "block2", "block4"),
    "midblock4": ("midblock4",),
}


def _tv(arch: str, num_classes: int = K) -> nn.Module:
    return getattr(torchvision.models, arch)(num_classes=num_classes)


def _pair(
    arch: str, skips=(), skip_type: str = "identity", **kw
) -> tuple[RecurrentResNet, nn.Module]:
    """An RRN and a torchvision ResNet with the same (random) backbone weights, in eval mode."""
    torch.manual_seed(0)
    tv = _tv(arch).eval()
    model = build_model(arch, K, skips, skip_type, **kw)
    load_weights(model, tv.state_dict())
    return model.eval(), tv


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding, relative to the magnitude of ``expected``."""
    assert_close(actual, expected, atol=1e-5 * max(1.0, expected.abs().max().item()), rtol=1e-4)


def _clip(B: int, T: int, size: int = SIZE, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, 3, size, size, generator=g)


# ---------------------------------------------------------------- no skips == torchvision
@pytest.mark.parametrize("arch", ARCHS)
def test_no_skips_is_torchvision_resnet_frame_by_frame(arch):
    model, tv = _pair(arch, skip_blocks := ())
    assert model.skip_blocks == skip_blocks and model.temporal_context == 1
    clip = _clip(2, 3)
    with torch.no_grad():
        _close(model(clip), tv(clip[:, -1]))
        video = clip[0]  # (N, 3, H, W)
        _close(model.forward_video(video), tv(video))


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
def test_one_frame_clip_is_the_per_frame_resnet(skip_type):
    # Before a chunk's first frame the state is zero: a 1-frame clip sees no temporal term.
    model, tv = _pair("resnet18", ("block1", "midblock4", "block4"), skip_type)
    clip = _clip(2, 1)
    with torch.no_grad():
        _close(model(clip), tv(clip[:, 0]))


# ---------------------------------------------------------------- eq. 2-4
def _residual_sum(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """F(x) + shortcut(x) of a torchvision block, i.e. its forward without the final ReLU."""
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, torchvision.models.resnet.Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
    else:
        out = block.bn2(block.conv2(out))
    return out + (x if block.downsample is None else block.downsample(x))


def _paper_term(model: RecurrentResNet, path: str, block: nn.Module, x_prev: torch.Tensor):
    """S(x_{t-1}) written from the paper's equations, on torchvision's modules and the
    model's temporal weights: eq. 2 (projected where the shape changes), eq. 3 and eq. 4."""
    if model.skip_type == "identity":  # eq. 2
        return x_prev if block.downsample is None else block.downsample(x_prev)
    term = F.conv2d(x_prev, model.get_submodule(path).temporal.weight, stride=block.stride)
    return {"linear": term, "nonlinear": F.relu(term)}[model.skip_type]  # eq. 3, eq. 4


def test_every_skip_type_has_its_paper_equation_here():
    """A registered skip type is tested against the paper only once _paper_term writes it out."""
    assert [s.equation for s in SKIP_TYPES.values()] == [2, 3, 4]
    assert list(SKIP_TYPES) == ["identity", "linear", "nonlinear"]


def _reference_video(tv: nn.Module, model: RecurrentResNet, frames: torch.Tensor) -> torch.Tensor:
    """The paper's recurrence, one frame at a time, on torchvision's modules: (N, 3, H, W) -> (N, K).

    At a skip block: y_t = relu(F(x_t) + shortcut(x_t) + S(x_{t-1})), S from eq. 2, 3 or 4.
    """
    prev: dict[str, torch.Tensor] = {}  # skip block -> its input at the previous frame
    logits = []
    for x in frames.split(1):  # (1, 3, H, W)
        h = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        for s in (1, 2, 3, 4):
            for i, block in enumerate(getattr(tv, f"layer{s}")):
                path = f"layer{s}.{i}"
                if path not in model.skip_blocks:
                    h = block(h)
                    continue
                y = _residual_sum(block, h)
                if path in prev:
                    y = y + _paper_term(model, path, block, prev[path])
                prev[path] = h
                h = F.relu(y)
        logits.append(tv.fc(torch.flatten(tv.avgpool(h), 1)))
    return torch.cat(logits)


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_matches_the_paper_recurrence_on_torchvision_modules(arch, skip_type):
    # block1 and midblock4 change shape (resnet50's block1 widens 64 -> 256; midblock4 halves
    # the map and doubles the channels), block4 does not.
    model, tv = _pair(arch, ("block1", "midblock4", "block4"), skip_type)
    frames = _clip(1, 5)[0]
    with torch.no_grad():
        ref = _reference_video(tv, model, frames)
        _close(model.forward_video(frames, segment=2), ref)
        _close(model(frames[None]), ref[-1:])
        # Not the per-frame network: the skips change every prediction after the first.
        assert (ref[1:] - tv(frames)[1:]).abs().amax() > 1e-3 * ref.abs().max()


# ---------------------------------------------------------------- receptive field
@pytest.mark.parametrize("skips", SKIP_SETS.values(), ids=SKIP_SETS.keys())
@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_receptive_field_is_exactly_T(arch, skip_type, skips):
    torch.manual_seed(0)
    model = build_model(arch, K, skips, skip_type).eval()
    T = model.temporal_context
    assert T == len(skips) + 1
    L = T + 2  # two frames beyond the receptive field
    base = _clip(1, L)
    # Item 0 is the clip; item 1 + k perturbs frame t - k (t = L - 1, the predicted frame).
    batch = base.repeat(L + 1, 1, 1, 1, 1)
    noise = _clip(L, 1, seed=2)[:, 0]
    for k in range(L):
        batch[1 + k, L - 1 - k] += noise[k]
    with torch.no_grad():
        out = model(batch, greedy=False)  # every frame runs through every block
        greedy = model(batch)
    scale = out[0].abs().max()
    diff = (out[1:] - out[0]).abs().amax(dim=1) / scale  # (L,) indexed by k
    for k in range(L):
        if k < T:
            assert diff[k] > 1e-3, f"frame t-{k} should change the output (T={T})"
        else:
            assert diff[k] < 1e-6, f"frame t-{k} is outside the receptive field (T={T})"
    _close(greedy, out)


# ---------------------------------------------------------------- streaming == windows
@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_video_and_step_equal_windowed_model(arch, skip_type):
    model, _ = _pair(arch, ("block1", "midblock4", "block4"), skip_type)
    T, N = model.temporal_context, 7
    assert T == 4
    frames = _clip(2, N)  # (B, N, 3, H, W)
    with torch.no_grad():
        # Row t = the model on the window ending at t (shorter at the start: zero state).
        ref = torch.stack(
            [
                torch.cat([model(v[max(0, t - T + 1) : t + 1][None]) for v in frames])
                for t in range(N)
            ],
            dim=1,
        )  # (B, N, K)
        for segment in (1, 2, 3, 64):
            _close(model.forward_video(frames, segment=segment), ref)
        out = model.forward_video(frames[1], segment=3)  # unbatched (N, 3, H, W) -> (N, K)
        assert out.shape == (N, K)
        _close(out, ref[1])

        state, rows = model.init_state(), []
        for t in range(N):
            logits, state = model.step(frames[:, t], state)
            rows.append(logits)
        _close(torch.stack(rows, dim=1), ref)

        state = None  # None = start of the video; unbatched (3, H, W) frames
        for t in range(N):
            logits, state = model.step(frames[0, t], state)
            assert logits.shape == (K,)
            _close(logits, ref[0, t])


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_step_terms_from_zeros_equals_forward_video(arch, skip_type):
    """The exported state form: zero terms = no previous frame, then forward_video's rows."""
    from runs import randomize_batchnorm

    model, _ = _pair(arch, ("block1", "midblock4", "block4"), skip_type)
    randomize_batchnorm(model)  # a projection shortcut now maps a zero input off zero
    frames = _clip(2, 5)  # (B, N, 3, H, W)
    shapes = model.term_shapes(SIZE)
    assert len(shapes) == 3 and all(s[0] == 1 for s in shapes)
    terms = [torch.zeros(2, *s[1:]) for s in shapes]
    with torch.no_grad():
        ref = model.forward_video(frames)  # (B, N, K)
        rows = []
        for t in range(5):
            logits, terms = model.step_terms(frames[:, t], terms)
            rows.append(logits)
            assert [tuple(x.shape[1:]) for x in terms] == [s[1:] for s in shapes]
    _close(torch.stack(rows, dim=1), ref)


def test_a_zero_block_input_is_not_the_absent_term():
    """Why the exported state is the temporal term: S(0) through midblock4's projection is the
    BatchNorm's shift, not zero, so zeros as the previous *input* would change frame 0."""
    from runs import randomize_batchnorm

    model, _ = _pair("resnet18", ("midblock4",), "identity")
    randomize_batchnorm(model)
    frame = _clip(1, 1)[0]  # (1, 3, H, W)
    with torch.no_grad():
        absent, _ = model.step(frame, None)
        zero_input, _ = model.step(frame, [torch.zeros(1, 256, 2, 2)])  # layer4.0's input
        zero_term, _ = model.step_terms(frame, [torch.zeros(1, *model.term_shapes(SIZE)[0][1:])])
    _close(zero_term, absent)
    assert (zero_input - absent).abs().max() > 1e-3


def test_step_terms_wants_one_tensor_per_skip():
    model, _ = _pair("resnet18", ("block1", "block4"))
    with pytest.raises(ValueError, match="expected 2 state tensors"):
        model.step_terms(_clip(1, 1)[0], [])


def test_forward_video_segment_below_one_means_one_frame_at_a_time():
    model, _ = _pair("resnet18", ("block1",))
    frames = _clip(1, 3)[0]  # (N, 3, H, W)
    with torch.no_grad():
        ref = model.forward_video(frames, segment=1)
        _close(model.forward_video(frames, segment=0), ref)
        feats = model.video_features(frames, stages=(4,), segment=0)[4]
    assert feats.shape[0] == 3


# ---------------------------------------------------------------- greedy forwarding
@pytest.mark.parametrize("skips", SKIP_SETS.values(), ids=SKIP_SETS.keys())
@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_equals_all_frames(arch, skips):
    torch.manual_seed(0)
    model = build_model(arch, K, skips, "nonlinear").eval()
    T = model.temporal_context
    clip = _clip(2, T + 2)
    with torch.no_grad():
        for n in range(1, T + 3):  # shorter than, equal to and longer than the receptive field
            _close(model(clip[:, -n:]), model(clip[:, -n:], greedy=False))
        # Frames before the receptive field are ignored: T + 2 frames == the last T frames.
        _close(model(clip), model(clip[:, -T:]))
        _close(model(clip, greedy=False), model(clip[:, -T:]))


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_computes_only_what_the_last_frame_needs(arch):
    size = 64
    frame = chunk_gflops(build_model(arch, K, ()), 1, size)
    at_block1 = build_model(arch, K, ("block1",))
    at_block4 = build_model(arch, K, ("block4",))
    # block1: the earlier frame only goes through the stem.
    assert 1.0 < chunk_gflops(at_block1, 2, size) / frame < 1.1
    # block4: the earlier frame goes through everything but the last block and the head.
    assert 1.7 < chunk_gflops(at_block4, 2, size) / frame < 2.0
    # An identity skip at a block without projection adds no FLOPs: all-frames forwarding
    # costs T backbones and one classifier. (At a projection block, e.g. resnet50's block1,
    # x_{t-1} goes through the block's downsample.)
    fc = 2 * at_block4.fc.in_features * K / 1e9
    assert chunk_gflops(at_block4, 2, size, greedy=False) == pytest.approx(2 * frame - fc, rel=1e-9)
    three = build_model(arch, K, ("block1", "block2", "block4"))
    assert chunk_gflops(three, 4, size) < 0.7 * chunk_gflops(three, 4, size, greedy=False)
    # Frames beyond the receptive field cost nothing.
    assert chunk_gflops(at_block4, 5, size) == chunk_gflops(at_block4, 2, size)


def test_chunk_gflops_matches_torchvision_resnet18():
    # torchvision lists resnet18 at 1.81 GMACs per 224 px frame; chunk_gflops counts 2 per MAC.
    assert chunk_gflops(build_model("resnet18", 1000, ()), 1, 224) == pytest.approx(3.628, abs=0.01)


# ---------------------------------------------------------------- parameters
# The temporal 1x1 conv maps the block input (in channels) to the block output (out channels).
EXPECTED_TEMPORAL = {
    "resnet18": {
        "block1": 64 * 64,
        "block2": 128 * 128,
        "midblock4": 256 * 512,
        "block4": 512 * 512,
    },
    "resnet50": {
        "block1": 64 * 256,
        "block2": 512 * 512,
        "midblock4": 1024 * 2048,
        "block4": 2048 * 2048,
    },
}


def _block_in_out(block: nn.Module) -> int:
    last = block.conv3 if hasattr(block, "conv3") else block.conv2
    return block.conv1.in_channels * last.out_channels


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_counts_per_skip_type(arch, skip_type):
    tv = _tv(arch)
    tv_count = sum(p.numel() for p in tv.parameters())
    model = build_model(arch, K, ALIASES, skip_type)
    paths = resolve_skip_blocks(arch, ALIASES)
    counts = count_parameters(model)
    if skip_type == "identity":
        assert counts == {"total": tv_count, "temporal": 0}
        assert model.temporal_parameter_names() == []
        return
    expected = sum(EXPECTED_TEMPORAL[arch].values())
    assert expected == sum(_block_in_out(tv.get_submodule(p)) for p in paths)  # from the channels
    assert counts == {"total": tv_count + expected, "temporal": expected}
    assert model.temporal_parameter_names() == [f"{p}.temporal.weight" for p in paths]
    for alias, path in zip(ALIASES, paths):
        w = model.get_submodule(path).temporal.weight
        assert w.numel() == EXPECTED_TEMPORAL[arch][alias] and tuple(w.shape[2:]) == (1, 1)


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
def test_names_are_torchvision_names_plus_temporal_weights(skip_type):
    skips = ("block1", "midblock4", "block4")
    model = build_model("resnet50", K, skips, skip_type)
    tv_names = {n for n, _ in _tv("resnet50").state_dict().items()}
    new = {f"{p}.temporal.weight" for p in resolve_skip_blocks("resnet50", skips)}
    expected = tv_names if skip_type == "identity" else tv_names | new
    assert set(model.state_dict()) == expected
    assert {n for n, _ in model.named_parameters()} - {
        n for n, _ in _tv("resnet50").named_parameters()
    } == (set() if skip_type == "identity" else new)
    assert isinstance(model, torchvision.models.ResNet)
    rebuilt = build_model(**model.config)
    assert set(rebuilt.state_dict()) == expected and rebuilt.skip_blocks == model.skip_blocks


# ---------------------------------------------------------------- loading weights
@pytest.fixture
def tv_weights(tmp_path):
    torch.manual_seed(0)
    tv = _tv("resnet18").eval()
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
def test_torchvision_state_dict_loads_with_only_temporal_keys_missing(tv_weights, skip_type):
    tv, path = tv_weights
    model = build_model("resnet18", K, ("block1", "block4"), skip_type, weights=path)
    temporal = (
        () if skip_type == "identity" else ("layer1.0.temporal.weight", "layer4.1.temporal.weight")
    )
    assert model.info.weights == WeightsReport(str(path), missing=temporal)
    own = model.state_dict()
    for k, v in tv.state_dict().items():
        assert torch.equal(own[k], v), k


def test_different_num_classes_keeps_backbone_and_skips_classifier(tv_weights):
    tv, path = tv_weights
    model = build_model("resnet18", 7, ("block4",), "linear", weights=path)
    assert model.info.weights == WeightsReport(
        str(path), missing=("layer4.1.temporal.weight",), skipped=("fc.weight", "fc.bias")
    )
    assert model.fc.weight.shape == (7, 512) and model.num_classes == 7
    own = model.state_dict()
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(own[k], v), k


def test_checkpoint_wrappers_and_ddp_prefix_load(tmp_path, tv_weights):
    tv, _ = tv_weights
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {f"module.{k}": v for k, v in tv.state_dict().items()}}, path)
    model = build_model("resnet18", K, ("block4",), "identity", weights=path)
    assert torch.equal(model.conv1.weight, tv.conv1.weight)


def test_wrong_or_extra_keys_raise(tmp_path, tv_weights):
    tv, _ = tv_weights
    sd = tv.state_dict()
    model = build_model("resnet18", K, ("block4",), "linear")
    with pytest.raises(ValueError, match="unexpected") as err:
        load_weights(model, {**sd, "layer5.0.conv1.weight": torch.zeros(1)})
    assert "layer5.0.conv1.weight" in str(err.value)
    renamed = {("conv0.weight" if k == "conv1.weight" else k): v for k, v in sd.items()}
    with pytest.raises(ValueError) as err:
        load_weights(model, renamed)
    assert "conv1.weight" in str(err.value) and "conv0.weight" in str(err.value)
    path = tmp_path / "resnet50.pth"
    torch.save(_tv("resnet50").state_dict(), path)
    with pytest.raises(ValueError, match="do not fit resnet18: shapes differ for "):
        build_model("resnet18", K, ("block4",), weights=path)


def test_missing_weights_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "resnet18.pth"
    with pytest.raises(WeightsError, match="does not exist") as err:
        build_model("resnet18", K, ("block4",), weights=path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- temporal_init="zero"
def test_zero_init_linear_skips_start_as_the_per_frame_resnet():
    skips = ("block1", "midblock4", "block4")
    model, tv = _pair("resnet18", skips, "linear", temporal_init="zero")
    assert all(p.abs().sum() == 0 for n, p in model.named_parameters() if ".temporal." in n)
    clip = _clip(2, 4)
    with torch.no_grad():
        assert_close(model(clip), tv(clip[:, -1]), atol=1e-6, rtol=1e-6)
        assert_close(model.forward_video(clip[0]), tv(clip[0]), atol=1e-6, rtol=1e-6)


def test_zero_init_nonlinear_is_refused():
    with pytest.raises(ValueError, match="zero gradient"):
        build_model("resnet18", K, ("block4",), "nonlinear", temporal_init="zero")
    with pytest.raises(ValueError, match="kaiming, zero"):
        build_model("resnet18", K, ("block4",), "linear", temporal_init="ones")


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("skip_type", SKIP_TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_frame_of_the_receptive_field(arch, skip_type):
    torch.manual_seed(0)
    model = build_model(arch, K, ("block1", "block2", "block4"), skip_type).train()
    T, L = model.temporal_context, model.temporal_context + 2
    target = torch.tensor([0, 3])

    clip = _clip(2, L).requires_grad_()
    F.cross_entropy(model(clip), target).backward()
    per_frame = clip.grad.abs().sum(dim=(0, 2, 3, 4))  # (L,)
    assert [bool(per_frame[L - 1 - k] > 0) for k in range(L)] == [k < T for k in range(L)]
    for name, p in model.named_parameters():
        if ".temporal." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name

    # In train mode BatchNorm couples the frames of a batch through its statistics. With the
    # statistics frozen and every frame run through every block, a frame can reach the last
    # output only through the skips: frame t-3 does so only via block1 -> block2 -> block4.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    clip = _clip(2, L).requires_grad_()
    F.cross_entropy(model(clip, greedy=False), target).backward()
    per_frame = clip.grad.abs().sum(dim=(0, 2, 3, 4))
    assert [bool(per_frame[L - 1 - k] > 0) for k in range(L)] == [k < T for k in range(L)]


# ---------------------------------------------------------------- errors
def test_unknown_arch_suggests():
    with pytest.raises(ValueError, match="resnet19.*resnet18, resnet34.*Did you mean 'resnet18'"):
        build_model("resnet19", K, ())
    with pytest.raises(ValueError, match="Did you mean 'resnet50'"):
        block_paths("resnet05")


def test_unknown_skip_name_lists_valid_names_and_suggests():
    with pytest.raises(ValueError) as err:
        build_model("resnet18", K, ("blokc4",))
    msg = str(err.value)
    assert "'blokc4'" in msg and "Did you mean 'block4'?" in msg
    for name in (*ALIASES, *block_paths("resnet18")):
        assert name in msg
    with pytest.raises(ValueError, match="Did you mean 'layer4.2'"):
        build_model("resnet50", K, ("layer4.22",))
    with pytest.raises(ValueError, match="layer4.1"):  # resnet18 has no layer4.2
        build_model("resnet18", K, ("layer4.2",))


def test_repeated_block_names_both_inputs():
    with pytest.raises(ValueError, match="'block4' and 'layer4.1' both resolve to layer4.1"):
        build_model("resnet18", K, ("block4", "layer4.1"))
    with pytest.raises(ValueError, match="'midblock4' and 'layer4.0' both resolve to layer4.0"):
        build_model("resnet50", K, "midblock4,layer4.0")


def test_unknown_skip_type():
    with pytest.raises(
        ValueError, match="skip_type must be one of identity, linear, nonlinear, got 'conv'"
    ):
        build_model("resnet18", K, ("block4",), "conv")


def test_wrong_input_ranks():
    model = build_model("resnet18", K, ("block4",)).eval()
    with pytest.raises(
        ValueError, match=r"expected a clip \(B, T, 3, H, W\), got shape \(2, 3, 32, 32\)"
    ):
        model(torch.zeros(2, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"expected frames \(N, 3, H, W\) or \(B, N, 3, H, W\)"):
        model.forward_video(torch.zeros(3, SIZE, SIZE))


def test_video_features_rejects_stage_5():
    model = build_model("resnet18", K, ("block4",)).eval()
    with pytest.raises(ValueError, match=r"stages must be among \(1, 2, 3, 4\), got \[5\]"):
        model.video_features(torch.zeros(2, 3, SIZE, SIZE), stages=(4, 5))


# ---------------------------------------------------------------- video features
@pytest.mark.parametrize("arch", ARCHS)
def test_video_features_are_the_pooled_stage_outputs(arch):
    model, tv = _pair(arch, ("block2", "block4"), "linear")
    T, N = model.temporal_context, 5
    frames = _clip(1, N, size=64)[0]  # (N, 3, H, W)
    with torch.no_grad():
        feats = model.video_features(frames, stages=(1, 2, 3, 4), segment=2)
        widths = {1: 64, 2: 128, 3: 256, 4: 512}
        if arch == "resnet50":
            widths = {s: 4 * c for s, c in widths.items()}
        assert {s: tuple(f.shape) for s, f in feats.items()} == {
            s: (N, c) for s, c in widths.items()
        }
        # Stage 4 is the pooled final feature: the head's input, frame by frame.
        _close(model.fc(feats[4]), model.forward_video(frames))
        for t in range(N):
            window = frames[max(0, t - T + 1) : t + 1][None]
            pooled = model.forward_head(model.forward_features(window), pre_logits=True)
            _close(feats[4][t], pooled[0])
        # Stage 1 lies before the first skip (block2): it is torchvision's, frame by frame.
        stage1 = tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(frames)))))
        _close(feats[1], stage1.mean(dim=(-2, -1)))
        batched = model.video_features(frames[None], stages=(3,))
        assert batched[3].shape == (1, N, widths[3])
        _close(batched[3][0], feats[3])


def test_feature_pieces_carry_the_skip_state_across_pieces():
    """Pieces of any size give :meth:`video_features`' rows: the skip state crosses each cut
    (a piece that started from zero would differ at its first frame)."""
    model, _ = _pair("resnet18", ("block2", "block4"), "linear")
    frames = _clip(1, 7, size=64)[0]  # (7, 3, H, W)
    with torch.no_grad():
        whole = model.video_features(frames, stages=(2, 4))
        pieces = [frames[:3], frames[3:4], frames[4:]]
        got = list(model.feature_pieces(pieces, stages=(2, 4)))
        fresh = model.video_features(frames[3:4], stages=(4,))[4]  # no previous frame
    assert [tuple(g[4].shape) for g in got] == [(3, 512), (1, 512), (3, 512)]
    for s in (2, 4):
        _close(torch.cat([g[s] for g in got]), whole[s])
    assert not torch.allclose(fresh[0], whole[4][3], atol=1e-3)


# ---------------------------------------------------------------- block names
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("T", [1, 2, 3, 5])
def test_skips_for_context_gives_receptive_field_T(arch, T):
    skips = skips_for_context(arch, T)
    assert skips == block_paths(arch)[len(block_paths(arch)) - (T - 1) :]
    assert len(skips) == T - 1
    assert build_model(arch, K, skips).temporal_context == T
    if T == 2:
        assert skips == resolve_skip_blocks(arch, ("block4",))  # the paper's best position


def test_skips_for_context_bounds():
    assert len(skips_for_context("resnet18", 9)) == 8  # every block
    for bad in (0, 10):
        with pytest.raises(ValueError, match="between 1 and 9"):
            skips_for_context("resnet18", bad)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        (
            "resnet18",
            {
                "block1": "layer1.0",
                "block2": "layer2.1",
                "midblock4": "layer4.0",
                "block4": "layer4.1",
            },
        ),
        (
            "resnet50",
            {
                "block1": "layer1.0",
                "block2": "layer2.3",
                "midblock4": "layer4.0",
                "block4": "layer4.2",
            },
        ),
    ],
)
def test_aliases_resolve(arch, expected):
    for alias, path in expected.items():
        assert resolve_skip_blocks(arch, [alias]) == (path,)
    # Any order, comma-separated strings with spaces, case and separators: depth order out.
    assert resolve_skip_blocks(arch, "block4, Block1 ,mid_block4") == (
        expected["block1"],
        expected["midblock4"],
        expected["block4"],
    )
    model = build_model(arch, K, "block4, block2")
    assert model.skip_blocks == (expected["block2"], expected["block4"])
    assert model.config["skip_blocks"] == [expected["block2"], expected["block4"]]
