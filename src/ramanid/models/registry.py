"""The model registry: each network's facts live beside its builder (after torchvision's
``register_model``), and the rest of ramanid asks the registry instead of testing names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ramanid.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """What ramanid knows about a registered network.

    Attributes
    ----------
    name : str
        The name users give (``--model``).
    builder : callable
        ``builder(n_points, n_outputs, **hyper_parameters)`` returns the ``nn.Module``.
    description : str
        One line for help texts.
    defaults : dict
        Training defaults of the paper (``lr``, ``weight_decay``, ``batch_size``, ``patience``,
        ``scheduler``, ``triplet_weight``, ``augment``), used where the user gives none.
    width : str, optional
        The builder's one-integer width parameter, set by ``--hidden``.
    transductive : bool
        Its output for one spectrum depends on the other spectra in the batch.
    per_element : bool
        For element identification, one network per element instead of one with an output each.
    element_loss : {"bce", "mse"}
        Binary cross-entropy on logits, or (the element reference's way) MSE on 0/1 labels, whose
        outputs are scores rather than probabilities.
    benchmark_only : bool
        An equivalent form kept for tests and benchmarks, not offered to users.
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    defaults: dict = field(default_factory=dict)
    width: str | None = None
    transductive: bool = False
    per_element: bool = False
    element_loss: str = "bce"
    benchmark_only: bool = False


#: every registered network, by name
MODELS: dict[str, ModelSpec] = {}


def register_model(description: str, **facts):
    """Decorator: register a builder under its function name with ``facts`` (see :class:`ModelSpec`)."""

    def register(builder):
        MODELS[builder.__name__] = ModelSpec(builder.__name__, builder, description, **facts)
        return builder

    return register


def get_model_spec(name: str) -> ModelSpec:
    """The spec of the network ``name``, or a :class:`ModelError` listing the known ones."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}: expected one of {user_models()}")
    return MODELS[name]


def user_models() -> list[str]:
    """The names offered to users, sorted."""
    return sorted(name for name, spec in MODELS.items() if not spec.benchmark_only)


def build_model(name: str, n_points: int, n_outputs: int, **params) -> nn.Module:
    """The network ``name`` for spectra of ``n_points`` and ``n_outputs`` outputs."""
    try:
        return get_model_spec(name).builder(n_points, n_outputs, **params)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ModelError(f"model {name!r}: {exc}") from exc


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
