"""Detection metrics: hand-computed cases, scikit-learn's average_precision_score, literal ports
of LSTR's per-frame evaluation and of ActivityNet's detection AP, the ignore rules, and classes
without positives skipped. Published numbers depend on exactly these rules."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from rrn.detection.metrics import (
    average_precision,
    calibrated_average_precision,
    detection_delay,
    evaluate_detection,
    frame_map,
    interpolated_ap,
    segment_ap,
    segment_iou,
    segment_map,
)
from rrn.detection.segments import Segment
from rrn.files import json_text


# ---------------------------------------------------------------------------- reference ports
def lstr_calibrated_average_precision_score(y_true, y_score):
    """LSTR's calibrated_average_precision_score (evaluation/metrics.py), verbatim."""
    y_true_sorted = y_true[np.argsort(-y_score)]
    tp = y_true_sorted.astype(float)
    fp = np.abs(y_true_sorted.astype(float) - 1)
    tps = np.cumsum(tp)
    fps = np.cumsum(fp)
    ratio = np.sum(tp == 0) / np.sum(tp)
    cprec = tps / (tps + fps / (ratio + np.finfo(float).eps) + np.finfo(float).eps)
    cap = np.sum(cprec[tp == 1]) / np.sum(tp)
    return cap


def lstr_perframe_average_precision(ground_truth, prediction, class_names, ignore_index, metrics):
    """LSTR's perframe_average_precision with its THUMOS postprocessing (the frames whose
    Ambiguous column, ``ignore_index``, is 1 removed; no smoothing, no switch: the defaults)."""
    ground_truth = np.array(ground_truth)
    prediction = np.array(prediction)
    valid_index = np.where(ground_truth[:, ignore_index] != 1)[0]
    ground_truth, prediction = ground_truth[valid_index], prediction[valid_index]
    if metrics == "AP":
        compute_score = average_precision_score
    else:
        compute_score = lstr_calibrated_average_precision_score
    ignore_index = set([0, ignore_index])
    per_class_ap = {}
    for idx, class_name in enumerate(class_names):
        if idx not in ignore_index:
            if np.any(ground_truth[:, idx]):
                per_class_ap[class_name] = compute_score(ground_truth[:, idx], prediction[:, idx])
    return np.mean(list(per_class_ap.values())), per_class_ap


def anet_segment_iou(target_segment, candidate_segments):
    """ActivityNet's Evaluation/utils.py segment_iou, verbatim."""
    tt1 = np.maximum(target_segment[0], candidate_segments[:, 0])
    tt2 = np.minimum(target_segment[1], candidate_segments[:, 1])
    segments_intersection = (tt2 - tt1).clip(0)
    segments_union = (
        (candidate_segments[:, 1] - candidate_segments[:, 0])
        + (target_segment[1] - target_segment[0])
        - segments_intersection
    )
    tIoU = segments_intersection.astype(float) / segments_union
    return tIoU


def anet_interpolated_prec_rec(prec, rec):
    """ActivityNet's Evaluation/utils.py interpolated_prec_rec, verbatim."""
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    ap = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return ap


def anet_compute_average_precision_detection(ground_truth, prediction, tiou_thresholds):
    """ActivityNet's eval_detection.py compute_average_precision_detection, line by line, with
    lists of dicts for its pandas data frames (``groupby('video-id')`` a dict, ``iterrows`` a
    loop) and ``float`` for the removed ``np.float``."""
    ap = np.zeros(len(tiou_thresholds))
    if not prediction:
        return ap

    npos = float(len(ground_truth))
    lock_gt = np.ones((len(tiou_thresholds), len(ground_truth))) * -1
    sort_idx = np.array([p["score"] for p in prediction]).argsort()[::-1]
    prediction = [prediction[i] for i in sort_idx]

    tp = np.zeros((len(tiou_thresholds), len(prediction)))
    fp = np.zeros((len(tiou_thresholds), len(prediction)))

    ground_truth_gbvn = {}
    for index, gt in enumerate(ground_truth):
        ground_truth_gbvn.setdefault(gt["video-id"], []).append({"index": index, **gt})

    for idx, this_pred in enumerate(prediction):
        if this_pred["video-id"] not in ground_truth_gbvn:
            fp[:, idx] = 1
            continue

        this_gt = ground_truth_gbvn[this_pred["video-id"]]
        tiou_arr = anet_segment_iou(
            np.array([this_pred["t-start"], this_pred["t-end"]]),
            np.array([[g["t-start"], g["t-end"]] for g in this_gt]),
        )
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for tidx, tiou_thr in enumerate(tiou_thresholds):
            for jdx in tiou_sorted_idx:
                if tiou_arr[jdx] < tiou_thr:
                    fp[tidx, idx] = 1
                    break
                if lock_gt[tidx, this_gt[jdx]["index"]] >= 0:
                    continue
                tp[tidx, idx] = 1
                lock_gt[tidx, this_gt[jdx]["index"]] = idx
                break

            if fp[tidx, idx] == 0 and tp[tidx, idx] == 0:
                fp[tidx, idx] = 1

    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / npos

    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)

    for tidx in range(len(tiou_thresholds)):
        ap[tidx] = anet_interpolated_prec_rec(precision_cumsum[tidx, :], recall_cumsum[tidx, :])

    return ap


def anet_records(segments):
    return [
        {"video-id": s.video, "t-start": s.start, "t-end": s.end, "score": s.score}
        for s in segments
    ]


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


# ---------------------------------------------------------------------------- average precision
def test_average_precision_by_hand():
    # ranked: P N P N. Thresholds 0.9: P=1 R=1/2; 0.8: P=1/2 R=1/2; 0.7: P=2/3 R=1; 0.1: P=1/2 R=1
    # AP = (1/2 - 0) * 1 + 0 * 1/2 + (1 - 1/2) * 2/3 + 0 * 1/2 = 1/2 + 1/3 = 5/6
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6, abs=1e-15)


def test_a_tie_is_one_threshold():
    # 0.5 holds one positive and one negative: P=1/2 R=1/2; 0.2: P=2/3 R=1
    # AP = 1/2 * 1/2 + 1/2 * 2/3 = 1/4 + 1/3 = 7/12, whichever order the tie is in
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(7 / 12, abs=1e-15)
    assert average_precision([0, 1, 1], [0.5, 0.5, 0.2]) == pytest.approx(7 / 12, abs=1e-15)


def test_average_precision_without_positives_is_nan_and_scores_must_be_finite():
    assert np.isnan(average_precision([0, 0], [0.1, 0.2]))
    with pytest.raises(ValueError, match="finite"):
        average_precision([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="2 targets but 3 scores"):
        average_precision([1, 0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("seed", range(20))
def test_average_precision_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    targets = rng.random(n) < rng.uniform(0.02, 0.6)
    targets[rng.integers(n)] = True
    scores = rng.random(n) + 0.3 * targets
    if seed % 2:  # many ties
        scores = np.round(scores, 1)
    assert average_precision(targets, scores) == pytest.approx(
        average_precision_score(targets, scores), abs=1e-12
    )


# ---------------------------------------------------------------------------- calibrated AP
def test_calibrated_average_precision_by_hand():
    # 2 positives, 4 negatives: w = 4 / 2 = 2. Ranked P N P N N N.
    # rank 1: TP=1 FP=0 cPrec = 1 / (1 + 0/2) = 1; rank 3: TP=2 FP=1 cPrec = 2 / (2 + 1/2) = 4/5
    # cAP = (1 + 4/5) / 2 = 9/10 (plain AP: (1 + 2/3) / 2 = 5/6)
    targets, scores = [1, 0, 1, 0, 0, 0], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    assert calibrated_average_precision(targets, scores) == pytest.approx(0.9, abs=1e-15)
    assert average_precision(targets, scores) == pytest.approx(5 / 6, abs=1e-15)


def test_calibrated_average_precision_edge_cases():
    assert calibrated_average_precision([1, 1], [0.1, 0.2]) == 1.0  # no negative
    assert np.isnan(calibrated_average_precision([0, 0], [0.1, 0.2]))
    # a tie counts at its last rank: P and N tied first, w = 1: cPrec = 1 / (1 + 1) = 1/2
    assert calibrated_average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(10))
def test_calibrated_average_precision_equals_lstr(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    targets = rng.random(n) < rng.uniform(0.02, 0.6)
    targets[0], targets[-1] = True, False
    scores = rng.random(n) + 0.3 * targets  # continuous: no ties, LSTR's order is defined
    assert calibrated_average_precision(targets, scores) == pytest.approx(
        lstr_calibrated_average_precision_score(targets, scores), abs=1e-9
    )


# ---------------------------------------------------------------------------- frame mAP
def test_frame_map_by_hand_ignores_background_ambiguous_frames_and_classes_without_positives():
    # columns: Background, A, B, C (C never positive)
    targets = np.array(
        [
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 0],
            [1, 0, 0, 0],  # ignored
        ]
    )
    scores = np.array(
        [
            [0.9, 0.1, 0.4, 0.5],
            [0.1, 0.8, 0.3, 0.1],
            [0.0, 0.3, 0.6, 0.2],
            [0.2, 0.5, 0.2, 0.1],
            [0.9, 0.9, 0.9, 0.9],
        ]
    )
    ignore = [False, False, False, False, True]
    result = frame_map(scores, targets, ignore)
    # A on frames 0-3: ranked 0.8 (P) 0.5 (N) 0.3 (P) 0.1 (N): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    # B: ranked 0.6 (P) 0.4 (N) 0.3 (N) 0.2 (P): AP = 1/2 * 1 + 1/2 * 2/4 = 3/4
    # C: no positive frame: skipped. Background: excluded. mAP = (5/6 + 3/4) / 2 = 19/24
    assert result.per_class == pytest.approx({1: 5 / 6, 2: 3 / 4})
    assert result.mean == pytest.approx(19 / 24)
    assert result.frames == 4
    # the ignored frame would have been a false positive ranked first for A and B
    assert frame_map(scores, targets).per_class[1] < 5 / 6


def test_frame_map_without_any_positive_is_none():
    result = frame_map(np.ones((3, 2)), np.array([[1, 0]] * 3))
    assert result.mean is None and result.per_class == {}


@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_frame_map_equals_lstr_evaluation(seed, calibrated):
    rng = np.random.default_rng(seed)
    n, k = 600, 6  # Background, 4 actions, Ambiguous (the ignore column, LSTR's index 21)
    targets = np.zeros((n, k), dtype=int)
    labels = rng.integers(0, 5, n)
    targets[np.arange(n), labels] = 1
    targets[:, 3] = 0  # a class without any positive frame
    targets[:, 2] |= targets[:, 1] & (rng.random(n) < 0.5)  # nested classes: multi-hot
    targets[:, 0] = 1 - targets[:, 1:5].max(axis=1)
    targets[:, 5] = rng.random(n) < 0.1
    scores = rng.random((n, k)) + 0.5 * targets
    mean, per_class = lstr_perframe_average_precision(
        targets, scores, ["bg", "a", "b", "c", "d", "amb"], 5, "cAP" if calibrated else "AP"
    )
    ours = frame_map(scores[:, :5], targets[:, :5], targets[:, 5] == 1, calibrated=calibrated)
    assert sorted(ours.per_class) == [1, 2, 4]
    assert [ours.per_class[c] for c in (1, 2, 4)] == pytest.approx(
        [per_class[c] for c in ("a", "b", "d")], abs=1e-9
    )
    assert ours.mean == pytest.approx(mean, abs=1e-9)


# ---------------------------------------------------------------------------- segment mAP
def test_segment_iou_and_interpolated_ap_match_activitynet():
    candidates = np.array([[0.0, 10.0], [5.0, 15.0], [20.0, 30.0], [3.0, 3.0]])
    assert segment_iou((0.0, 10.0), candidates).tolist() == pytest.approx([1, 5 / 15, 0, 0])
    prec, rec = np.array([1, 0.5, 2 / 3, 0.5]), np.array([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert interpolated_ap(prec, rec) == anet_interpolated_prec_rec(prec, rec)


def test_segment_ap_by_hand():
    truth = [Segment("a", 1, 0, 10), Segment("a", 1, 20, 30), Segment("b", 1, 0, 10)]
    predictions = [
        Segment("a", 1, 0, 10, 0.9),  # tIoU 1 with a[0, 10]: TP
        Segment("a", 1, 1, 10, 0.8),  # tIoU 0.9 with a[0, 10], already taken; 0 with a[20, 30]: FP
        Segment("b", 1, 5, 15, 0.7),  # tIoU 5/15 with b[0, 10]: TP at 0.3, FP from 0.4
        Segment("c", 1, 0, 1, 0.6),  # no ground truth in video c: FP
    ]
    ap = segment_ap(truth, predictions, (0.3, 0.5))
    # tIoU 0.3: TP FP TP FP, precision 1, 1/2, 2/3, 1/2, recall 1/3, 1/3, 2/3, 2/3; made monotone
    # 1, 2/3, 2/3, 1/2: AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 (recall 2/3 -> 1 never reached) = 5/9
    # tIoU 0.5: TP FP FP FP: AP = 1/3 * 1 = 1/3
    assert ap.tolist() == pytest.approx([5 / 9, 1 / 3], abs=1e-15)
    assert segment_ap(truth, [], (0.3, 0.5)).tolist() == [0, 0]


def test_thumos_ambiguous_rule_drops_only_false_positives_that_overlap_an_ambiguous_stretch():
    truth = [Segment("a", 1, 0, 10)]
    predictions = [
        Segment("a", 1, 40, 45, 0.9),  # FP inside the ambiguous stretch: dropped
        Segment("a", 1, 0, 10, 0.8),  # TP
        Segment("a", 1, 60, 70, 0.7),  # FP elsewhere: kept
    ]
    ambiguous = [Segment("a", -1, 42, 50), Segment("b", -1, 60, 70)]  # b's is another video
    # ActivityNet's rule: FP TP FP: precision 0, 1/2, 1/3 at recall 0, 1, 1: AP = 1 * 1/2
    assert segment_ap(truth, predictions, (0.5,)).tolist() == [0.5]
    # THUMOS'14's: TP FP: AP = 1 * 1
    assert segment_ap(truth, predictions, (0.5,), ambiguous).tolist() == [1.0]


def test_segment_map_averages_classes_with_ground_truth_only():
    truth = [Segment("a", 1, 0, 10), Segment("a", 2, 20, 30)]
    predictions = [
        Segment("a", 1, 0, 10, 0.9),  # class 1: AP 1
        Segment("a", 3, 0, 10, 0.9),  # class 3 has no ground truth: not scored
        Segment("a", 0, 0, 10, 0.9),  # Background: not scored
    ]  # class 2 has no prediction: AP 0
    result = segment_map(truth, predictions, (0.5,))
    assert sorted(result.per_class) == [1, 2]
    assert result.per_threshold == {0.5: 0.5}
    assert segment_map([], predictions, (0.5,)).per_threshold == {0.5: None}


def random_segments(rng, videos, classes, count, jitter_of=()):
    out = []
    for _ in range(count):
        if jitter_of and rng.random() < 0.7:  # near a ground-truth segment
            g = jitter_of[rng.integers(len(jitter_of))]
            start = g.start + rng.normal(0, 2)
            end = max(start + 0.1, g.end + rng.normal(0, 2))
            out.append(Segment(g.video, g.label, start, end, float(rng.random())))
        else:
            start = rng.uniform(0, 100)
            out.append(
                Segment(
                    str(rng.integers(videos)),
                    int(rng.integers(1, classes + 1)),
                    start,
                    start + rng.uniform(0.5, 20),
                    float(rng.random()),
                )
            )
    return out


@pytest.mark.parametrize("seed", range(12))
def test_segment_map_equals_activitynets_reference(seed):
    rng = np.random.default_rng(seed)
    truth = random_segments(rng, videos=4, classes=3, count=int(rng.integers(3, 25)))
    predictions = random_segments(rng, 5, 3, int(rng.integers(0, 60)), jitter_of=truth)
    ours = segment_map(truth, predictions, THRESHOLDS)
    reference = {
        c: anet_compute_average_precision_detection(
            anet_records([s for s in truth if s.label == c]),
            anet_records([s for s in predictions if s.label == c]),
            np.array(THRESHOLDS),
        )
        for c in sorted({s.label for s in truth})
    }
    assert sorted(ours.per_class) == sorted(reference)
    for c in reference:
        assert ours.per_class[c].tolist() == pytest.approx(reference[c].tolist(), abs=1e-12)
    mean = np.mean([reference[c] for c in reference], axis=0)  # ANETdetection.evaluate's mAP
    assert list(ours.per_threshold.values()) == pytest.approx(mean.tolist(), abs=1e-12)


# ---------------------------------------------------------------------------- delay
def test_detection_delay_by_hand():
    truth = [
        Segment("a", 1, 10, 20),  # detected 1.5 s late (the later 14 s segment does not count)
        Segment("a", 1, 30, 40),  # a segment open since 28 s: 0 s
        Segment("a", 2, 50, 60),  # only a class-1 segment and one that ended at 50: missed
        Segment("b", 1, 10, 20),  # a segment starting exactly at its end: 10 s
    ]
    predictions = [
        Segment("a", 1, 11.5, 13),
        Segment("a", 1, 14, 18),
        Segment("a", 1, 28, 31),
        Segment("a", 1, 50, 55),
        Segment("a", 2, 45, 50),
        Segment("b", 1, 20, 21),
        Segment("b", 1, 2, 5),  # ended before the action: does not count
    ]
    result = detection_delay(truth, predictions)
    assert result.delays == {0: 1.5, 1: 0.0, 3: 10.0}
    assert result.median == 1.5
    assert result.missed == 1 / 4
    nothing = detection_delay(truth, [])
    assert (nothing.median, nothing.missed) == (None, 1.0)
    assert detection_delay([], predictions).missed is None


# ---------------------------------------------------------------------------- all of them
def test_evaluate_detection_reports_every_metric_with_its_protocol():
    classes = ["Background", "Run", "Jump", "Swim"]
    # 8 frames: Run on 1-3, Jump on 5-6, frame 7 ambiguous; Swim never happens
    targets = np.zeros((8, 4), dtype=bool)
    targets[1:4, 1] = targets[5:7, 2] = True
    targets[:, 0] = ~targets[:, 1:].any(axis=1)
    ignore = np.zeros(8, dtype=bool)
    ignore[7] = True
    scores = targets * 0.8 + 0.1  # perfect ranking
    truth = [Segment("v", 1, 0.25, 1.0), Segment("v", 2, 1.25, 1.75)]
    predictions = [Segment("v", 1, 0.5, 1.0, 0.8)]
    out = evaluate_detection(
        scores,
        targets,
        ignore,
        classes=classes,
        truth=truth,
        predictions=predictions,
        sampling="4 frames/s",
    )
    assert out["task"] == "detection"
    assert (out["frame_map"], out["frame_mcap"]) == (1.0, 1.0)
    # Run: tIoU 0.5 / 0.75 = 2/3: AP 1 up to 0.6, 0 at 0.7; Jump: no prediction, AP 0
    assert out["segment_map"] == {"0.3": 0.5, "0.4": 0.5, "0.5": 0.5, "0.6": 0.5, "0.7": 0.0}
    assert out["segment_map_avg"] == pytest.approx(0.4)
    assert (out["delay_s_median"], out["missed"]) == (0.25, 0.5)
    assert out["per_class_ap"]["Run"] == {
        "frame_ap": 1.0,
        "frame_cap": 1.0,
        "segment_ap": {"0.3": 1.0, "0.4": 1.0, "0.5": 1.0, "0.6": 1.0, "0.7": 0.0},
        "positive_frames": 3,
        "actions": 1,
    }
    assert out["per_class_ap"]["Swim"]["frame_ap"] is None
    assert out["per_class_ap"]["Swim"]["segment_ap"] is None
    assert (out["num_frames"], out["num_scored_frames"], out["num_actions"]) == (8, 7, 2)
    protocol = out["protocol"]
    assert "sampled at 4 frames/s" in protocol
    assert "1 frames inside Ambiguous intervals removed" in protocol
    assert "classes without a positive frame skipped (Swim)" in protocol
    assert "tIoU 0.3, 0.4, 0.5, 0.6, 0.7" in protocol
    assert "THUMOS'14's rule" not in protocol
    json_text(out)  # strict JSON: nothing NaN, every key a string


def test_evaluate_detection_needs_background_first():
    with pytest.raises(ValueError, match="Background"):
        evaluate_detection(
            np.ones((1, 2)),
            np.ones((1, 2)),
            classes=["Run", "Background"],
            truth=[],
            predictions=[],
            sampling="4 frames/s",
        )


def test_predictions_with_equal_scores_rank_latest_first():
    # ActivityNet ranks by argsort()[::-1], whose order of equal scores numpy leaves to the
    # platform; rrn fixes it: the later prediction first. Here FP then TP: precision 0, 1/2 at
    # recall 0, 1: AP = 1/2 (the other order would give 1).
    truth = [Segment("a", 1, 0, 10)]
    tp, fp = Segment("a", 1, 0, 10, 0.5), Segment("a", 1, 50, 60, 0.5)
    assert segment_ap(truth, [tp, fp], (0.5,)).tolist() == [0.5]
    assert segment_ap(truth, [fp, tp], (0.5,)).tolist() == [1.0]
