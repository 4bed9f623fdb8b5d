"""Splitters, named by strings so that a report can say exactly which split was used.

- ``kfold``: shuffled k-fold (the element reference's 5-fold).
- ``stratified``: stratified k-fold.
- ``grouped:COLUMN``: spectra sharing a COLUMN value (mineral, rruff_id, patient) stay together;
  stratified as well where the target is one class per spectrum.
- ``repeated-holdout``: repeated random 70/30 splits (the COVID protocol: 50 repeats),
  stratified where the target is one class per spectrum.
- ``logo:COLUMN``: leave one group out.
- ``predefined:COLUMN``: COLUMN says each row's role: ``train`` and ``test``, or ``pretrain``,
  ``finetune`` and ``test`` for the Bacteria-ID protocol (Ho et al. 2019): pretrain on the
  reference set, fine-tune the same network on the fine-tuning set, test on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from ramanid.errors import DatasetError
from ramanid.spectra import SpectraSet

#: the roles a ``predefined:COLUMN`` split reads from its column
ROLES = ("pretrain", "finetune", "train", "test")


@dataclass(frozen=True)
class Split:
    """A named split: ``folds`` splits (or repeats), seeded, optionally grouped by a column."""

    kind: str
    folds: int = 5
    seed: int = 0
    group: str | None = None
    test_size: float = 0.3

    @classmethod
    def parse(cls, spec: str, folds: int | None = None, seed: int = 0) -> Split:
        """``kind[:COLUMN]``; ``folds`` defaults to 5, or 50 repeats for ``repeated-holdout``."""
        kind, _, group = spec.partition(":")
        if kind not in ("kfold", "stratified", "grouped", "repeated-holdout", "logo", "predefined"):
            raise DatasetError(
                f"unknown split {spec!r}: expected kfold, stratified, grouped:COLUMN, repeated-holdout, "
                "logo:COLUMN or predefined:COLUMN"
            )
        if kind in ("grouped", "logo", "predefined") and not group:
            raise DatasetError(f"split {spec!r} needs a column, e.g. {kind}:mineral")
        if folds is None:
            folds = 50 if kind == "repeated-holdout" else 5  # the COVID protocol's 50 repeats
        return cls(kind, folds, seed, group or None)

    @property
    def leaks_groups(self) -> bool:
        """True where spectra of one specimen or mineral may fall on both sides."""
        return self.group is None and self.kind != "predefined"

    def describe(self) -> str:
        base = {
            "kfold": f"{self.folds}-fold shuffled k-fold",
            "stratified": f"{self.folds}-fold stratified k-fold",
            "grouped": f"{self.folds}-fold grouped by {self.group} (stratified where possible)",
            "repeated-holdout": f"{self.folds} x random {1 - self.test_size:.0%}/{self.test_size:.0%} hold-out",
            "logo": f"leave one {self.group} out",
            "predefined": f"predefined by column {self.group} (pretrain -> fine-tune -> test where marked)",
        }[self.kind]
        groups = "groups NOT kept together" if self.leaks_groups else f"groups kept together ({self.group})"
        return f"{base}, seed {self.seed}; {groups}"

    def groups(self, spectra: SpectraSet) -> np.ndarray | None:
        """Each spectrum's value of the group column, as text; None for an ungrouped split."""
        if self.group is None:
            return None
        if self.group not in spectra.meta:
            raise DatasetError(f"split by {self.group!r}: no such column, have {list(spectra.meta.columns)}")
        return spectra.meta[self.group].astype(str).to_numpy()

    def indices(self, spectra: SpectraSet, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (train, test) index pairs for this set and target."""
        n = len(spectra)
        single = np.ndim(y) == 1
        groups = self.groups(spectra)
        X = np.zeros((n, 1))
        if self.kind == "kfold":
            splitter = KFold(self.folds, shuffle=True, random_state=self.seed)
        elif self.kind == "stratified":
            splitter = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        elif self.kind == "grouped":
            splitter = (
                StratifiedGroupKFold(self.folds, shuffle=True, random_state=self.seed)
                if single
                else GroupKFold(self.folds, shuffle=True, random_state=self.seed)
            )
        elif self.kind == "repeated-holdout":
            splitter = (
                StratifiedShuffleSplit(self.folds, test_size=self.test_size, random_state=self.seed)
                if single
                else ShuffleSplit(self.folds, test_size=self.test_size, random_state=self.seed)
            )
        elif self.kind == "logo":
            splitter = LeaveOneGroupOut()
        else:
            roles = self._roles(groups)
            train = np.isin(roles, ("train", "finetune"))
            if not train.any():
                train = roles == "pretrain"  # pretraining alone is plain training
            if not train.any() or not (roles == "test").any():
                raise DatasetError(
                    f"predefined split: column {self.group!r} needs rows marked 'test' and rows to "
                    "train on ('train', or 'pretrain' and 'finetune')"
                )
            return [(np.flatnonzero(train), np.flatnonzero(roles == "test"))]
        target = y if single else None
        try:
            return [(tr, te) for tr, te in splitter.split(X, target, groups)]
        except ValueError as exc:  # e.g. more folds than a class or than the groups
            raise DatasetError(f"split {self.describe()}: {exc}") from exc

    def pretrain_indices(self, spectra: SpectraSet) -> np.ndarray | None:
        """Rows to pretrain on before each fold's training rows are fitted (the Bacteria-ID
        protocol), or None where the split has no separate pretraining stage.
        """
        if self.kind != "predefined" or self.group not in spectra.meta:
            return None
        roles = self._roles(spectra.meta[self.group].astype(str).to_numpy())
        if not (roles == "pretrain").any() or not np.isin(roles, ("train", "finetune")).any():
            return None
        return np.flatnonzero(roles == "pretrain")

    def _roles(self, values: np.ndarray) -> np.ndarray:
        roles = np.char.lower(np.char.strip(values.astype(str)))
        unknown = sorted(set(roles.tolist()) - set(ROLES))
        if unknown:
            rows = np.flatnonzero(~np.isin(roles, ROLES))[:3].tolist()
            raise DatasetError(
                f"predefined split: column {self.group!r} has values {unknown[:5]} (rows {rows}); "
                f"expected one of {', '.join(ROLES)}"
            )
        return roles


def specimen_holdout(
    meta, fold: int = 0, folds: int = 5, seed: int = 0, unknown_share: float = 0.08
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(reference rows, held-out specimen rows, unknown-mineral rows)`` of a RRUFF set: a seeded
    ``unknown_share`` of the minerals is held out whole (spectra of minerals a library lacks),
    then fold ``fold`` of a grouped ``folds``-fold split of the specimens (``rruff_id``), so that
    no query's specimen is among the references. The protocol of the degradation and mixture
    benchmarks.
    """
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(seed)
    minerals = np.unique(meta["mineral"].astype(str))
    unknown = set(rng.choice(minerals, int(unknown_share * len(minerals)), replace=False))
    is_unknown = meta["mineral"].astype(str).isin(unknown).to_numpy()
    specimens = meta["rruff_id"].astype(str).to_numpy()
    order = rng.permutation(len(meta))  # GroupKFold is deterministic: shuffle the rows first
    held = np.zeros(len(meta), dtype=bool)
    held[order[list(GroupKFold(folds).split(order, groups=specimens[order]))[fold][1]]] = True
    return np.flatnonzero(~held & ~is_unknown), np.flatnonzero(held & ~is_unknown), np.flatnonzero(is_unknown)
