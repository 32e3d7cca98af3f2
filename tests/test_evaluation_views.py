"""Evaluation views: every view of every chunk goes through the network and is averaged."""

import numpy as np
import torch
from torch import nn

from rrn.data import ClipTransform, EvalViews, FrameSource, Sampling, VideoChunkDataset, VideoRecord
from rrn.data.synth import write_video
from rrn.evaluation import create_eval_loader, evaluate


class LeftOrRight(nn.Module):
    """Logits (left half's mean, right half's mean) of each clip's last frame; counts its clips."""

    def __init__(self):
        super().__init__()
        self.clips = 0

    def forward(self, clip):  # (B, T, 3, S, S)
        self.clips += clip.shape[0]
        last = clip[:, -1]
        half = last.shape[-1] // 2
        return 4 * torch.stack(
            [last[..., :half].mean((1, 2, 3)), last[..., half:].mean((1, 2, 3))], 1
        )  # (B, 2)


def run(views, tmp_path):
    # brighter on the left: the centre crop says "left", its mirror image says "right"
    ramp = np.linspace(250, 0, 48).astype(np.uint8)[None, None, :, None].repeat(32, 1).repeat(3, 3)
    v = write_video(tmp_path / "v.avi", ramp.repeat(10, 0), codec="ffv1")  # 10 frames of 32x48
    ds = VideoChunkDataset(
        [VideoRecord(v, 1, "v")],
        source=FrameSource(Sampling(1, None, 32)),
        transform=ClipTransform(28, train=False, views=views),
        context=2,
    )
    model = LeftOrRight()
    res = evaluate(
        model, create_eval_loader(ds, workers=0), device=torch.device("cpu"), chunk_batch=7
    )
    return ds[0]["clips"], model.clips, res


def test_every_view_of_every_chunk_is_evaluated_and_averaged(tmp_path):
    clips, forwarded, res = run(EvalViews(crops=3, flip=True), tmp_path)
    assert clips.shape == (5, 6, 2, 3, 28, 28)  # 10 frames // T=2 chunks x 6 views
    assert forwarded == 5 * 6  # chunks x views through the network
    assert res["chunk_probs"].shape == (5, 2) and res["video_probs"].shape == (1, 2)
    # each view and its mirror say left and right equally sure: their mean is exactly 1/2
    torch.testing.assert_close(res["video_probs"], torch.full((1, 2), 0.5))


def test_the_centre_view_alone_keeps_the_papers_protocol(tmp_path):
    clips, forwarded, res = run(EvalViews(), tmp_path)
    assert clips.shape == (5, 2, 3, 28, 28) and forwarded == 5  # no view dimension: as before
    assert res["video_probs"][0, 0] > 0.6  # left: brighter
    _, _, flipped = run(EvalViews(crops=1, flip=True), tmp_path)
    torch.testing.assert_close(flipped["video_probs"], torch.full((1, 2), 0.5))
    _, _, crops = run(EvalViews(crops=3), tmp_path)
    assert crops["video_probs"][0, 0] > 0.6  # three crops, all brighter on their left
    assert not torch.allclose(
        crops["video_probs"], res["video_probs"]
    )  # other pixels, other numbers
