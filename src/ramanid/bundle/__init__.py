"""A saved model: one folder, one estimator.

- :mod:`~ramanid.bundle.folder`: the folder format (which files, written whole, their SHA-256);
- :mod:`~ramanid.bundle.header`: the schema of ``bundle.json`` and its typed view, :class:`ModelInfo`;
- :mod:`~ramanid.bundle.loading`: :func:`load_bundle` and :func:`save_bundle`; every model loads
  through the registry of saved estimators (:data:`ramanid.training.registry.SAVED`);
- :mod:`~ramanid.bundle.inputs`: a user's spectra as the model's inputs (resampled, preprocessed);
- :mod:`~ramanid.bundle.references`: adding references to a library.

Training a model for a folder is :mod:`ramanid.deploy`'s job; this package is all inference
needs, and imports neither the tuning code nor evaluation.
"""

from ramanid.bundle.folder import BundleError
from ramanid.bundle.header import ModelInfo
from ramanid.bundle.loading import Bundle, load_bundle, save_bundle
from ramanid.bundle.references import add_references, add_spectra

__all__ = ["Bundle", "BundleError", "ModelInfo", "add_references", "add_spectra", "load_bundle", "save_bundle"]
