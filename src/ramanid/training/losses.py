"""Losses: online semi-hard triplet loss.

Schroff F, Kalenichenko D, Philbin J (2015), *FaceNet: a unified embedding for face recognition
and clustering*, CVPR. Mining as in TensorFlow Addons' ``triplet_semihard_loss``, which the
RamanNet code uses: for every anchor-positive pair, the negative is the closest one that is
farther than the positive; where there is none, the farthest negative.
"""

from __future__ import annotations

import torch


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances, with a floor under the square root so gradients stay finite at 0."""
    squared = (embeddings**2).sum(1)
    d2 = squared[:, None] + squared[None, :] - 2 * embeddings @ embeddings.T
    return d2.clamp_min(1e-12).sqrt()


def semi_hard_negatives(distances: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Index of the chosen negative for every (anchor, positive) pair, shape ``(batch, batch)``.

    Each anchor's negatives are sorted once; a binary search then finds, for every positive,
    the first negative strictly farther than it: O(B² log B) instead of a (B, B, B) tensor.
    Entries for pairs that are not anchor-positive pairs are meaningless.
    """
    d = distances.detach()
    negative = labels[:, None] != labels[None, :]
    inf = torch.finfo(d.dtype).max
    sorted_d, order = torch.where(negative, d, torch.full_like(d, inf)).sort(dim=1)
    count = negative.sum(dim=1, keepdim=True)
    first_farther = torch.searchsorted(sorted_d.contiguous(), d.contiguous(), right=True)
    farthest = (count - 1).clamp_min(0).expand_as(first_farther)
    return order.gather(1, torch.where(first_farther < count, first_farther, farthest))


def semi_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean of ``max(d(a, p) - d(a, n) + margin, 0)`` over all anchor-positive pairs in the batch.

    Returns 0 (with a gradient) when the batch has no anchor-positive pair or no negative.
    """
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    if not positive.any() or same.all():
        return embeddings.sum() * 0.0
    chosen = semi_hard_negatives(distances, labels)
    d_an = distances.gather(1, chosen)  # d_an[a, p] = d(a, chosen negative of (a, p))
    losses = torch.relu(distances - d_an + margin)
    return losses[positive].mean()
