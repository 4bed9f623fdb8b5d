"""Neural networks for Raman spectra, one module per architecture, and a registry of factories.

Every factory takes ``(n_points, n_outputs, **hyper_parameters)`` and returns a module whose
``forward`` maps ``(batch, n_points)`` spectra to ``(batch, n_outputs)`` logits.
"""
from __future__ import annotations

from torch import nn

from ramanid.errors import ModelError
from ramanid.models.attention import attention_resnet, seed_attention
from ramanid.models.cnn import liu2017_cnn
from ramanid.models.mlp import mlp
from ramanid.models.ramannet import ramannet, ramannet_loop
from ramanid.models.resnet import ho2019_resnet

MODELS = {
    "ramannet": ramannet,
    "ramannet_loop": ramannet_loop,
    "attention_resnet": attention_resnet,
    "seed_attention": seed_attention,
    "liu2017_cnn": liu2017_cnn,
    "ho2019_resnet": ho2019_resnet,
    "mlp": mlp,
}


def build_model(name: str, n_points: int, n_outputs: int, **params) -> nn.Module:
    """The network ``name`` for spectra of ``n_points`` and ``n_outputs`` outputs."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}: expected one of {sorted(MODELS)}")
    return MODELS[name](n_points, n_outputs, **params)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "build_model", "count_parameters", *MODELS]
