"""Metrics: chunk -> video aggregation (paper §3.3), top-k, mean class accuracy, written files."""

import csv
import json

import pytest
import torch

from rrn.metrics import (
    compute_metrics,
    confusion_matrix,
    evaluate_probs,
    mean_over_splits,
    video_probs_from_chunks,
)


def test_video_probs_are_the_mean_of_chunk_probs():
    chunk_probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    chunk_video = torch.tensor([0, 0, 1, 1])
    video = video_probs_from_chunks(chunk_probs, chunk_video, 2)
    assert torch.allclose(video, torch.tensor([[0.55, 0.45], [0.35, 0.65]]))


def test_metrics_values():
    # 4 videos, 3 classes: video 0 and 1 right, video 2 wrong (top-2 right), video 3 wrong
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1]])
    labels = torch.tensor([0, 1, 1, 2])
    m, conf = compute_metrics(probs, labels)
    assert m["video_top1"] == pytest.approx(0.5)
    assert m["video_error"] == pytest.approx(0.5)
    assert m["video_top5"] == pytest.approx(1.0)  # k clipped to K=3
    # per-class recall: class0 1/1, class1 1/2, class2 0/1 -> mean 0.5
    assert m["mean_class_accuracy"] == pytest.approx(0.5)
    assert conf.tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 0]]
    assert m["num_videos"] == 4 and m["clip_top1"] is None


def test_mean_class_accuracy_ignores_absent_classes():
    probs = torch.eye(3)[[0, 0, 1]]  # class 2 has no test video
    m, _ = compute_metrics(probs, torch.tensor([0, 0, 1]))
    assert m["mean_class_accuracy"] == 1.0


def test_confusion_matrix_rows_are_true_classes():
    conf = confusion_matrix(torch.tensor([1, 1, 0]), torch.tensor([0, 1, 0]), 2)
    assert conf.tolist() == [[1, 1], [0, 1]]


def test_evaluate_probs_writes_json_csv_png(tmp_path):
    classes = ["Walk", "Run"]
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]])
    labels = torch.tensor([0, 1, 1])
    chunk_probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    chunk_labels = torch.tensor([0, 1, 1, 1])
    out = evaluate_probs(
        probs,
        labels,
        classes,
        out_dir=tmp_path,
        stem="eval_split1",
        chunk_probs=chunk_probs,
        chunk_labels=chunk_labels,
        video_ids=["a", "b", "c"],
        extra={"split": 1},
    )
    saved = json.loads((tmp_path / "eval_split1.json").read_text())
    for key in (
        "video_error",
        "video_top1",
        "video_top5",
        "clip_top1",
        "mean_class_accuracy",
        "num_videos",
        "num_chunks",
    ):
        assert key in saved
    assert saved["video_top1"] == pytest.approx(2 / 3)
    assert saved["clip_top1"] == pytest.approx(3 / 4)
    assert saved["num_chunks"] == 4 and saved["split"] == 1
    assert saved["misclassified"] == [{"video_id": "c", "label": "Run", "predicted": "Walk"}]
    rows = list(csv.DictReader(open(tmp_path / "eval_split1_per_class.csv")))
    assert [r["class"] for r in rows] == classes
    assert rows[1]["support"] == "2" and float(rows[1]["accuracy"]) == 0.5
    assert rows[1]["most_confused_with"] == "Walk"
    png = (tmp_path / "eval_split1_confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["files"]["json"].endswith("eval_split1.json")


def test_evaluate_probs_checks_class_count():
    with pytest.raises(ValueError, match="2 class names"):
        evaluate_probs(torch.rand(2, 3), torch.tensor([0, 1]), ["a", "b"])


def test_mean_over_splits():
    results = [
        {
            "split": 1,
            "video_top1": 0.8,
            "video_error": 0.2,
            "video_top5": 1.0,
            "clip_top1": 0.7,
            "mean_class_accuracy": 0.75,
            "num_videos": 10,
            "num_chunks": 30,
        },
        {
            "split": 2,
            "video_top1": 0.6,
            "video_error": 0.4,
            "video_top5": 0.9,
            "clip_top1": 0.5,
            "mean_class_accuracy": 0.55,
            "num_videos": 12,
            "num_chunks": 36,
        },
    ]
    mean = mean_over_splits(results)
    assert mean["mean_over_splits"]["video_top1"] == pytest.approx(0.7)
    assert mean["mean_over_splits"]["video_error"] == pytest.approx(0.3)
    assert mean["splits"] == [1, 2] and mean["num_videos"] == 22
