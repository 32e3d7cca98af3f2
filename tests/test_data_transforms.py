"""Clip transforms: shapes, normalisation values, one draw per clip."""

import numpy as np
import pytest
import torch

from rrn.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, default_short_side


def unnormalise(x):
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean) * 255


def gradient_clip(t=4, h=64, w=80):
    """Frame t = horizontal ramp (0..w-1) + 10*t, identical in all channels."""
    ramp = np.arange(w, dtype=np.uint8)[None, :, None].repeat(h, 0).repeat(3, 2)
    return np.stack([ramp + 10 * i for i in range(t)]).astype(np.uint8)


def test_default_short_side():
    assert default_short_side(112) == 128 and default_short_side(224) == 256
    from rrn import data
    from rrn.data import sampling

    assert default_short_side is sampling.default_short_side is data.default_short_side  # re-exported


def test_eval_centre_crop_values_and_normalisation():
    frames = gradient_clip(h=128, w=160)
    x = ClipTransform(112, train=False)(frames)
    assert x.shape == (4, 3, 112, 112) and x.dtype == torch.float32
    back = unnormalise(x)
    # Short side already 128 -> no resize; centre crop starts at column (160 - 112) // 2 = 24.
    torch.testing.assert_close(back[0, 0, 0], torch.arange(24, 136, dtype=torch.float32), atol=1e-3, rtol=0)
    torch.testing.assert_close(back[2] - back[0], torch.full((3, 112, 112), 20.0), atol=1e-3, rtol=0)


def test_eval_resizes_short_side():
    x = ClipTransform(32, train=False)(np.full((2, 100, 50, 3), 200, np.uint8))
    assert x.shape == (2, 3, 32, 32)
    torch.testing.assert_close(unnormalise(x), torch.full((2, 3, 32, 32), 200.0), atol=1e-3, rtol=0)


def test_train_same_crop_and_flip_for_every_frame():
    frames = gradient_clip(t=5)
    tf = ClipTransform(32, train=True)
    flips = set()
    for seed in range(20):
        back = unnormalise(tf(frames, np.random.default_rng(seed)))
        assert back.shape == (5, 3, 32, 32)
        # Frames differ only by +10 per step: the same crop, resize and flip were applied to all.
        for t in range(1, 5):
            torch.testing.assert_close(back[t] - back[0], torch.full((3, 32, 32), 10.0 * t), atol=0.02, rtol=0)
        row = back[0, 0, 0]
        flips.add(bool(row[0] > row[-1]))  # ramp reversed = flipped
    assert flips == {True, False}


def test_train_is_deterministic_given_rng_and_hflip_off():
    frames = gradient_clip()
    a = ClipTransform(32, train=True)(frames, np.random.default_rng(3))
    b = ClipTransform(32, train=True)(torch.from_numpy(frames), np.random.default_rng(3))
    torch.testing.assert_close(a, b)
    tf = ClipTransform(32, train=True, hflip=False)
    for seed in range(10):
        row = unnormalise(tf(frames, np.random.default_rng(seed)))[0, 0, 0]
        assert row[0] < row[-1]


def test_rejects_wrong_input():
    with pytest.raises(ValueError, match=r"uint8 frames \(T, H, W, 3\)"):
        ClipTransform(32, train=False)(np.zeros((2, 8, 8, 3), np.float32))
