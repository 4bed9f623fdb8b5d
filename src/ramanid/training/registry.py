"""The estimators a model folder can hold, by the class name its ``bundle.json`` stores.

Every saved model loads through :data:`SAVED`: ``SAVED[name].check_state(header)`` first, then
``SAVED[name].from_state(header, tensors, references, source)``.
"""

from __future__ import annotations

from ramanid.training.blend import NetworkAndVote
from ramanid.training.classical import SavedClassifier, SavedElements
from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier
from ramanid.training.identifier import LibraryIdentifier

#: every estimator a model folder can hold, by class name
SAVED = {
    cls.__name__: cls
    for cls in (
        SpectrumClassifier,
        ElementIdentifier,
        NetworkAndVote,
        LibraryIdentifier,
        SavedClassifier,
        SavedElements,
    )
}
