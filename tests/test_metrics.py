"""Retrieval / classification metrics against small hand-computed matrices."""

import numpy as np
import pytest
import torch

from transformers_internvideo2.tasks.metrics import ground_truth_ranks, retrieval_metrics, topk_accuracy


# 3 videos x 3 captions, caption i describes video i.
#            t0    t1    t2
SIM = np.array(
    [
        [0.9, 0.1, 0.3],  # v0: t0 best (rank 1)
        [0.2, 0.4, 0.8],  # v1: t2 > t1 -> gt t1 at rank 2
        [0.5, 0.6, 0.1],  # v2: t1 > t0 > t2 -> gt t2 at rank 3
    ]
)


def test_ranks_square_identity():
    # video -> text ranks: v0:1, v1:2, v2:3
    np.testing.assert_array_equal(ground_truth_ranks(SIM, [[0], [1], [2]]), [1, 2, 3])
    # text -> video (columns): t0: v0 0.9 best -> 1; t1: v2 0.6 > v1 0.4 -> 2; t2: v1 0.8 > v0 0.3 > v2 0.1 -> 3
    np.testing.assert_array_equal(ground_truth_ranks(SIM.T, [[0], [1], [2]]), [1, 2, 3])


def test_retrieval_metrics_hand_computed():
    m = retrieval_metrics(SIM, ks=(1, 2, 10))
    assert m["v2t_r1"] == pytest.approx(100 / 3)
    assert m["v2t_r2"] == pytest.approx(200 / 3)
    assert m["v2t_r10"] == 100.0
    assert m["v2t_medr"] == 2.0 and m["v2t_meanr"] == 2.0
    assert m["t2v_r1"] == pytest.approx(100 / 3)
    assert m["t2v_medr"] == 2.0 and m["t2v_meanr"] == 2.0
    assert m["r_mean"] == pytest.approx(np.mean([100 / 3, 200 / 3, 100] * 2))


def test_several_captions_per_video_takes_best_rank():
    # 2 videos, 4 captions: captions 0,1 -> video 0; captions 2,3 -> video 1.
    sim = np.array(
        [
            [0.1, 0.7, 0.9, 0.2],  # v0: order t2, t1, t3, t0 -> best gt (t1) at rank 2
            [0.3, 0.2, 0.1, 0.8],  # v1: order t3, t0, t1, t2 -> best gt (t3) at rank 1
        ]
    )
    m = retrieval_metrics(sim, text_to_video=[0, 0, 1, 1], ks=(1, 5))
    assert m["v2t_r1"] == 50.0 and m["v2t_medr"] == 1.5 and m["v2t_meanr"] == 1.5
    # t2v: t0 -> v1 0.3 > v0 0.1: rank 2; t1: v0 0.7 > 0.2: 1; t2: v0 0.9 > v1 0.1: gt v1 rank 2; t3: v1: 1
    assert m["t2v_r1"] == 50.0 and m["t2v_meanr"] == 1.5
    # A caption with two valid videos counts its best one.
    m2 = retrieval_metrics(sim, text_to_video=[[0, 1], 0, 1, 1], ks=(1,))
    assert m2["t2v_r1"] == 75.0


def test_separate_t2v_matrix_is_used():
    sim_t2v = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # every caption picks video 1
    m = retrieval_metrics(SIM, sim_t2v=sim_t2v, ks=(1,))
    assert m["t2v_r1"] == pytest.approx(100 / 3)
    assert m["v2t_r1"] == pytest.approx(100 / 3)  # unchanged


@pytest.mark.parametrize(
    "ties, expected", [("pessimistic", [3.0, 3.0]), ("optimistic", [1.0, 1.0]), ("average", [2.0, 2.0])]
)
def test_ties_policies(ties, expected):
    scores = np.array([[5.0, 5.0, 5.0], [-100.0, -100.0, -100.0]])
    np.testing.assert_array_equal(ground_truth_ranks(scores, [[1], [2]], ties=ties), expected)


def test_ties_with_rerank_filler():
    # re-ranked row: candidates scored, the rest -100; gt outside the candidates
    row = np.array([[2.0, 1.0, -100.0, -100.0, -100.0]])
    assert ground_truth_ranks(row, [[3]])[0] == 5.0  # pessimistic: after all -100 items
    assert ground_truth_ranks(row, [[3]], ties="optimistic")[0] == 3.0
    assert ground_truth_ranks(row, [[3]], ties="average")[0] == 4.0


def test_constant_matrix_is_not_credited():
    m = retrieval_metrics(np.zeros((4, 4)), ks=(1,))
    assert m["t2v_r1"] == 0.0 and m["v2t_r1"] == 0.0 and m["t2v_medr"] == 4.0


def test_torch_input_and_errors():
    m = retrieval_metrics(torch.tensor(SIM, dtype=torch.bfloat16), ks=(1,))
    assert m["v2t_r1"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no ground-truth caption"):
        retrieval_metrics(np.zeros((3, 2)), text_to_video=[0, 1])
    with pytest.raises(ValueError, match="out of range"):
        retrieval_metrics(np.zeros((2, 2)), text_to_video=[0, 2])
    with pytest.raises(ValueError, match="2-D"):
        retrieval_metrics(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="ties"):
        ground_truth_ranks(SIM, [[0], [1], [2]], ties="random")


def test_topk_accuracy():
    logits = np.array(
        [
            [0.1, 0.5, 0.2, 0.9],  # label 3 -> rank 1
            [0.8, 0.1, 0.7, 0.0],  # label 2 -> rank 2
            [0.3, 0.3, 0.1, 0.2],  # label 1 tied with class 0 -> pessimistic rank 2
            [0.0, 0.1, 0.2, 0.3],  # label 0 -> rank 4
        ]
    )
    labels = [3, 2, 1, 0]
    assert topk_accuracy(logits, labels, ks=(1, 2, 3, 5)) == {"top1": 25.0, "top2": 75.0, "top3": 75.0, "top5": 100.0}
    assert topk_accuracy(logits, labels, ks=(1,), ties="optimistic") == {"top1": 50.0}
    with pytest.raises(ValueError, match="ground-truth entries"):
        topk_accuracy(logits, [0, 1])
