"""VideoChunkDataset on tiny lossless videos whose frame i is flat grey 8*i."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rrn.data.cache import FrameCache
from rrn.data.datasets import SkippedVideo, VideoChunkDataset, collate_chunks, collate_videos
from rrn.data.sampling import Sampling
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.synth import write_video
from rrn.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform


def frame_ids(clip):
    """Which source frame each normalised frame (…, T, 3, S, S) shows (grey level / 8)."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    grey = (clip * std + mean).mul(255).mean(dim=(-3, -2, -1))
    return grey.div(8).round().long().tolist()


@pytest.fixture
def records(tmp_path):
    recs = []
    for v, n in enumerate((20, 7, 3)):  # sampled every 2nd frame: 10, 4, 2 frames
        frames = np.stack([np.full((24, 32, 3), 8 * i, np.uint8) for i in range(n)])
        path = write_video(tmp_path / f"c{v}" / f"v{v}.avi", frames, codec="ffv1")
        recs.append(VideoRecord(path, label=v, video_id=f"c{v}/v{v}"))
    return recs


def make(records, *, train, cache_dir=None, decoder="auto", **kw):
    """Every 2nd frame, short side round(16 * 8/7) = 18, 16 px crops, T = 3."""
    source = FrameSource(
        Sampling(sample_every=2, short_side=18), cache_dir=cache_dir, decoder=decoder
    )
    kw = {"context": 3, "seed": 0, **kw}
    return VideoChunkDataset(records, source=source, transform=ClipTransform(16, train), **kw)


def test_train_items_are_consecutive_sampled_frames(records):
    ds = make(records, train=True, chunks_per_video=2)
    assert len(ds) == 6
    for i in range(len(ds)):
        item = ds[i]
        assert item["clip"].shape == (3, 3, 16, 16) and item["clip"].dtype == torch.float32
        assert item["video_index"] == i // 2 and item["label"] == i // 2
        ids = frame_ids(item["clip"])
        if i // 2 == 2:  # 2 sampled frames (0, 2) < T=3: first frame repeated at the front
            assert ids == [0, 0, 2]
        else:
            assert ids[1] - ids[0] == 2 and ids[2] - ids[1] == 2 and ids[0] % 2 == 0


def test_randomness_is_a_function_of_seed_epoch_index(records):
    a, b = make(records, train=True), make(records, train=True)
    torch.testing.assert_close(a[0]["clip"], b[0]["clip"])
    draws = set()
    for epoch in range(8):
        a.set_epoch(epoch)
        draws.add(tuple(frame_ids(a[0]["clip"])))
    assert len(draws) > 1
    a.set_epoch(3), b.set_epoch(3)
    torch.testing.assert_close(a[0]["clip"], b[0]["clip"])


def test_same_batches_with_any_num_workers(records):
    ds = make(records, train=True, chunks_per_video=2)
    ds.set_epoch(5)
    runs = []
    for workers in (0, 2):
        dl = DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate_chunks)
        runs.append(torch.cat([b["clip"] for b in dl]))
    torch.testing.assert_close(runs[0], runs[1])


def test_eval_enumerates_all_chunks(records):
    ds = make(records, train=False)
    assert len(ds) == 3
    item = ds[0]  # 10 sampled frames, T=3 -> 3 chunks
    assert item["clips"].shape == (3, 3, 3, 16, 16)
    assert frame_ids(item["clips"]) == [[0, 2, 4], [6, 8, 10], [12, 14, 16]]
    assert frame_ids(ds[2]["clips"]) == [[0, 0, 2]]
    strided = make(records, train=False, eval_stride=1)[1]  # 4 sampled frames -> 2 windows
    assert frame_ids(strided["clips"]) == [[0, 2, 4], [2, 4, 6]]


def test_collate_videos_maps_chunks_to_videos(records):
    ds = make(records, train=False)
    batch = collate_videos([ds[0], ds[1], ds[2]])
    assert batch["clips"].shape == (3 + 1 + 1, 3, 3, 16, 16)
    assert batch["chunk_video"].tolist() == [0, 0, 0, 1, 2]
    assert batch["label"].tolist() == [0, 1, 2] and batch["video_index"].tolist() == [0, 1, 2]
    assert batch["skipped"] == []


def test_corrupt_video_is_skipped_not_fatal(records, tmp_path, logs_warning):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"garbage" * 100)
    recs = records + [VideoRecord(bad, 0, "bad")]
    ds = make(recs, train=True)
    with logs_warning("skipping video bad"):
        item = ds[3]
    assert isinstance(item, SkippedVideo) and not item and item.video_index == 3
    batch = collate_chunks([ds[i] for i in range(4)])
    assert batch["clip"].shape[0] == 3 and batch["skipped"] == [3]
    only_bad = collate_chunks([ds[3]])
    assert only_bad["label"].numel() == 0 and only_bad["skipped"] == [3]
    ev = collate_videos([make(recs, train=False)[i] for i in (0, 3)])
    assert ev["video_index"].tolist() == [0] and ev["skipped"] == [3]


def test_cache_is_used_and_filled(records, tmp_path):
    cache_dir = tmp_path / "cache"
    ds = make(records, train=False, cache_dir=cache_dir)
    cache = FrameCache(cache_dir)
    sampling = Sampling(sample_every=2, short_side=18)
    assert ds.source.sampling == sampling
    assert cache.get(records[0].path, sampling) is None
    first = ds[0]["clips"]
    cached = cache.get(records[0].path, sampling)
    assert cached is not None and cached.shape == (10, 18, 24, 3)  # short side round(16 * 8/7) = 18
    # Overwrite the cache entry with a marker: the dataset must read it instead of decoding.
    cache.put(records[0].path, np.full((6, 18, 24, 3), 80, np.uint8), sampling)
    assert frame_ids(ds[0]["clips"]) == [[10, 10, 10], [10, 10, 10]]
    assert frame_ids(first)[0] == [0, 2, 4]


def test_unknown_decoder_fails_at_construction(records):
    with pytest.raises(ValueError, match="unknown decoder"):
        make(records, train=True, decoder="nope")


def test_from_config_builds_the_sets_a_data_config_describes(records, tmp_path):
    from rrn.config import DataConfig

    data = DataConfig(
        data_root=str(tmp_path),
        sample_every=2,
        frame_size=16,
        chunks_per_video=2,
        eval_stride=1,
        hflip=False,
        cache_dir=str(tmp_path / "cache"),
    )
    train = VideoChunkDataset.from_config(records, data, context=3, train=True, seed=4)
    assert train.train and train.transform.train and not train.transform.hflip
    assert len(train) == 6 and train.chunks_per_video == 2 and train.seed == 4
    assert train.source.sampling == Sampling(sample_every=2, short_side=18)
    assert train.source.cache.root == tmp_path / "cache"
    test = VideoChunkDataset.from_config(records, data, context=3, train=False)
    assert not test.train and len(test) == 3  # one item per video, whatever chunks_per_video says
    assert frame_ids(test[1]["clips"]) == [[0, 2, 4], [2, 4, 6]]  # eval_stride 1
    # the same frames as the hand-built evaluation set
    torch.testing.assert_close(
        test[0]["clips"], make(records, train=False, eval_stride=1)[0]["clips"]
    )
