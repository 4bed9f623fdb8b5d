import torch

from ramanid.training.losses import pairwise_distances, semi_hard_negatives, semi_hard_triplet_loss


def test_semi_hard_negative_is_the_closest_one_farther_than_the_positive():
    # on a line: anchor 0 at 0.0, its positive 1 at 1.0; negatives at 0.5 (hard), 1.5 and 3.0
    points = torch.tensor([[0.0], [1.0], [0.5], [1.5], [3.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    chosen = semi_hard_negatives(pairwise_distances(points), labels)
    assert chosen[0, 1] == 3  # 1.5 is farther than the positive (1.0) and the closest such
    # anchor 1 (at 1.0), positive 0 at distance 1: negatives at 0.5, 0.5 and 2.0 -> the one at 2.0 (index 4)
    assert chosen[1, 0] == 4


def test_without_a_farther_negative_the_farthest_is_taken():
    points = torch.tensor([[0.0], [5.0], [1.0], [2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    chosen = semi_hard_negatives(pairwise_distances(points), labels)
    assert chosen[0, 1] == 3  # no negative beyond 5.0: take the farthest, 2.0


def test_loss_value_on_a_hand_made_batch():
    points = torch.tensor([[0.0], [1.0], [0.5], [1.5], [3.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1])
    loss = semi_hard_triplet_loss(points, labels, margin=1.0)
    loss.backward()
    assert torch.isfinite(points.grad).all()
    # pairs (a, p, chosen n): (0,1,3): 1-1.5+1=0.5; (1,0,4): 1-2+1=0; (2,3,0 or 1): d(2,3)=1, negatives of 2 at 0.5, 0.5
    # -> none farther -> farthest 0.5: 1-0.5+1=1.5; (3,2): d=1, negatives at 1.5, 0.5 -> 1.5: 0.5;
    # (2,4): d=2.5, none farther -> 0.5: 3.0; (4,2): d=2.5, negatives 3.0, 2.0 -> 3.0: 0.5;
    # (3,4): d=1.5, negs 1.5, 0.5 -> none strictly farther -> 1.5: 1.0; (4,3): d=1.5, negs 3.0, 2.0 -> 2.0: 0.5
    expected = (0.5 + 0 + 1.5 + 0.5 + 3.0 + 0.5 + 1.0 + 0.5) / 8
    assert abs(loss.item() - expected) < 1e-4


def test_no_positive_pair_gives_zero():
    emb = torch.randn(3, 4, requires_grad=True)
    assert semi_hard_triplet_loss(emb, torch.tensor([0, 1, 2])).item() == 0
