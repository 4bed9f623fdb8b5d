"""Neural networks for Raman spectra, one module per architecture, and their registry.

Every builder takes ``(n_points, n_outputs, **hyper_parameters)`` and returns a module whose
``forward`` maps ``(batch, n_points)`` spectra to ``(batch, n_outputs)`` logits. Importing this
package registers them all; :data:`MODELS` maps each name to its :class:`ModelSpec`.
"""

from __future__ import annotations

from ramanid.models.attention import attention_resnet, seed_attention
from ramanid.models.cnn import liu2017_cnn
from ramanid.models.mlp import mlp
from ramanid.models.ramannet import ramannet, ramannet_loop
from ramanid.models.registry import MODELS, ModelSpec, build_model, count_parameters, get_model_spec, user_models
from ramanid.models.resnet import ho2019_resnet
from ramanid.models.rezero import rezero_cnn

__all__ = [
    "MODELS",
    "ModelSpec",
    "attention_resnet",
    "build_model",
    "count_parameters",
    "get_model_spec",
    "ho2019_resnet",
    "liu2017_cnn",
    "mlp",
    "ramannet",
    "ramannet_loop",
    "rezero_cnn",
    "seed_attention",
    "user_models",
]
