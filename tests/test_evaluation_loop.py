"""The evaluation loop: a video is the mean of its chunks, counted once."""

import torch
from torch import nn

from rrn.evaluation import evaluate
from train_helpers import T


def test_evaluate_averages_chunks_and_counts_each_video_once():
    class Fixed(nn.Module):
        def forward(self, clip):  # logits = log of the first pixel's 3 channels
            return clip[:, -1, :, 0, 0].log()

    def video(vi, label, probs):  # (M, T, 3, 1, 1) chunks whose probabilities are `probs`
        clips = torch.tensor(probs)[:, None, :, None, None].expand(-1, T, 3, 1, 1)
        return {
            "clips": clips,
            "chunk_video": torch.full((len(probs),), vi),
            "label": torch.tensor([label]),
            "video_index": torch.tensor([vi]),
            "skipped": [],
        }

    batches = [
        video(0, 0, [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]),  # mean [0.4, 0.5, 0.1] -> wrong
        video(1, 2, [[0.1, 0.1, 0.8]]),
        video(0, 0, [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]),  # a padded duplicate: ignored
    ]
    res = evaluate(Fixed(), batches, device=torch.device("cpu"), chunk_batch=1)
    assert res["video_index"].tolist() == [0, 1]
    torch.testing.assert_close(res["video_probs"][0], torch.tensor([0.4, 0.5, 0.1]))
    assert res["chunk_probs"].shape == (3, 3)
    assert res["chunk_video"].tolist() == [0, 0, 1]
    assert res["chunk_labels"].tolist() == [0, 0, 2]
