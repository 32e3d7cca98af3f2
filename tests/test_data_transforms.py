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

    assert (
        default_short_side is sampling.default_short_side is data.default_short_side
    )  # re-exported


def test_eval_centre_crop_values_and_normalisation():
    frames = gradient_clip(h=128, w=160)
    x = ClipTransform(112, train=False)(frames)
    assert x.shape == (4, 3, 112, 112) and x.dtype == torch.float32
    back = unnormalise(x)
    # Short side already 128 -> no resize; centre crop starts at column (160 - 112) // 2 = 24.
    torch.testing.assert_close(
        back[0, 0, 0], torch.arange(24, 136, dtype=torch.float32), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        back[2] - back[0], torch.full((3, 112, 112), 20.0), atol=1e-3, rtol=0
    )


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
            torch.testing.assert_close(
                back[t] - back[0], torch.full((3, 32, 32), 10.0 * t), atol=0.02, rtol=0
            )
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


# --------------------------------------------------------------------------- evaluation views
def test_eval_views_names_counts_and_descriptions():
    from rrn.data.transforms import EvalViews

    assert EvalViews.named("center") == EvalViews(1, False) and EvalViews().count == 1
    assert EvalViews.named("3crop", flip=True) == EvalViews(3, True)
    assert [EvalViews(c, f).count for c, f in ((1, False), (1, True), (3, False), (3, True))] == [
        1,
        2,
        3,
        6,
    ]
    assert [
        EvalViews(c, f).describe() for c, f in ((1, False), (1, True), (3, False), (3, True))
    ] == ["1 centre crop", "1 centre crop x 2 flips", "3 crops", "3 crops x 2 flips"]
    with pytest.raises(ValueError, match="center or 3crop"):
        EvalViews.named("5crop")


@pytest.mark.parametrize("landscape", [True, False])
def test_three_crops_cover_the_frame(landscape):
    from rrn.data.transforms import EvalViews

    # pixel value = its position along the long side (80 px); short side 32 = S: no resize
    frames = gradient_clip(t=2, h=32, w=80)
    frames = frames if landscape else frames.transpose(0, 2, 1, 3).copy()  # (T, 80, 32, 3)
    views = ClipTransform(32, train=False, views=EvalViews(crops=3)).views_of(frames)
    assert views.shape == (3, 2, 3, 32, 32)
    along = [unnormalise(v[0])[0, 0] if landscape else unnormalise(v[0])[0, :, 0] for v in views]
    for got, start in zip(along, (0, 24, 48)):  # both ends and the middle of the long side
        torch.testing.assert_close(
            got, torch.arange(start, start + 32, dtype=torch.float32), atol=1e-3, rtol=0
        )
    covered = {round(float(x)) for got in along for x in got}
    assert covered == set(range(80))  # together the crops cover the whole frame


def test_three_crops_of_a_larger_frame_scale_its_short_side_to_the_crop():
    from rrn.data.transforms import EvalViews

    views = ClipTransform(16, train=False, views=EvalViews(crops=3)).views_of(
        gradient_clip(t=1, h=64, w=160)
    )
    assert views.shape == (3, 1, 3, 16, 16)  # 64x160 -> 16x40: three 16 px crops along the 40
    first, last = unnormalise(views[0, 0])[0, 0], unnormalise(views[2, 0])[0, 0]
    assert first[0] < 6 and last[-1] > 154  # the left edge and the right edge of the frame


def test_flipped_views_mirror_each_crop_and_the_centre_view_is_the_eval_transform():
    from rrn.data.transforms import EvalViews

    frames = gradient_clip(t=3, h=40, w=72)
    views = ClipTransform(32, train=False, views=EvalViews(crops=3, flip=True)).views_of(frames)
    assert views.shape == (6, 3, 3, 32, 32)
    for i in range(3):
        assert torch.equal(views[2 * i + 1], views[2 * i].flip(-1))  # crop, then its mirror
        assert not torch.equal(views[2 * i + 1], views[2 * i])  # the ramp is not symmetric
    centre = ClipTransform(32, train=False, views=EvalViews(crops=1, flip=True))
    pair = centre.views_of(frames)
    assert torch.equal(
        pair[0], ClipTransform(32, train=False)(frames)
    )  # the paper's view, unchanged
    assert torch.equal(pair[1], pair[0].flip(-1))
    half = gradient_clip(
        t=3, h=37, w=35
    )  # 37 = round(32 * 8 / 7): no resize; 70 - 32 even: centred
    symmetric = np.concatenate([half, half[:, :, ::-1]], axis=2)  # (3, 37, 70, 3)
    pair = centre.views_of(symmetric)
    assert torch.equal(pair[0], pair[1])  # a mirror-symmetric frame: flipping changes nothing
    with pytest.raises(ValueError, match="for evaluation"):
        ClipTransform(32, train=True).views_of(frames)
