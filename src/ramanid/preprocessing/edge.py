"""A long-pass edge filter's cut, found on a spectrum as read.

An edge filter blocks the laser line and everything below a few hundred cm-1. Under a
fluorescence background the measured spectrum then steps from dark to the background's height
within a few tens of cm-1 at the filter's edge. No baseline follows such a step (arPLS, asymmetric
least squares and an opening all round it off), so what is left of it outweighs the bands once
the spectrum is scaled. The part up to just past the edge is not a measurement of the sample:
:func:`filter_edges` finds it, and the spectrum is read from there on, as a spectrum measured over
a narrower range (the model's inputs repeat its first value below it).

The step is told from a background's own rise, from broad bands and from noise by four things
together, on the spectrum's lower envelope (a morphological opening wider than a band, after
smoothing): everywhere below the edge it is dark (at most :data:`DARK` of its height past it);
the rise is steep (most of the rise over :data:`WIDE_CM1` either side happens within
:data:`STEEP_CM1`); it is large against the bands and the noise; and it persists (the envelope
stays up :data:`PERSIST_CM1` past the edge).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import savgol_filter

from ramanid.preprocessing.base import noise_sd

#: a filter's edge is looked for below this Raman shift (cm-1)
SEARCH_CM1 = 400.0
#: the lower envelope's opening, wider than a band (cm-1)
ENVELOPE_CM1 = 60.0
#: below the edge the envelope is at most this share of its height past it ...
DARK = 0.1
#: ... read this far either side of the steepest rise (cm-1)
SIDE_CM1 = 50.0
#: the rise within STEEP_CM1 either side is at least STEEP of the rise within WIDE_CM1 either side
STEEP_CM1, WIDE_CM1, STEEP = 25.0, 100.0, 0.6
#: the step is at least this share of the strongest band above the envelope ...
MIN_STEP = 0.2
#: ... and this many times the noise's standard deviation (below, noise alone made such steps)
MIN_STEP_NOISE = 10.0
#: this far past the edge the envelope is still at least half its height past it (cm-1)
PERSIST_CM1 = 200.0
#: the spectrum is read from this far past the steepest rise, where an edge filter passes nearly all (cm-1)
CLEAR_CM1 = 40.0
#: the fewest points searched for an edge
MIN_SEARCHED = 5


def filter_edges(shifts: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The Raman shift from which each row of ``Y`` (spectra as read on the increasing axis
    ``shifts``) is measured past an edge filter's cut, NaN where no cut is found.
    """
    x = np.asarray(shifts, dtype=np.float64)
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    edges = np.full(len(Y), np.nan)
    search = np.flatnonzero(x <= SEARCH_CM1)
    if len(search) < MIN_SEARCHED or len(x) < 2 * MIN_SEARCHED:
        return edges
    step = float(np.median(np.diff(x)))
    smooth = savgol_filter(Y, min(11, len(x) // 2 * 2 - 1), 2, axis=-1)
    Z = smooth - np.percentile(smooth, 1, axis=-1, keepdims=True)
    size = max(3, int(ENVELOPE_CM1 / max(step, 1e-9)) | 1)
    envelope = maximum_filter1d(minimum_filter1d(Z, size, axis=-1, mode="nearest"), size, axis=-1, mode="nearest")
    steepest = search[np.argmax(np.gradient(envelope, x, axis=-1)[:, search], axis=1)]
    centre, rows = x[steepest], np.arange(len(Y))

    def at(distance: float) -> np.ndarray:
        return envelope[rows, np.clip(np.searchsorted(x, centre + distance), 0, len(x) - 1)]

    # below the edge the envelope is dark throughout: its running maximum from the first point
    below = np.maximum.accumulate(envelope, axis=-1)[
        rows, np.clip(np.searchsorted(x, centre - SIDE_CM1), 0, len(x) - 1)
    ]
    before, after = at(-SIDE_CM1), at(SIDE_CM1)
    bands = (Z - envelope).max(axis=-1)
    found = (
        (steepest >= 3)  # something measured below it
        & (after > 0)
        & (below <= DARK * after)
        & (at(STEEP_CM1) - at(-STEEP_CM1) >= STEEP * (at(WIDE_CM1) - at(-WIDE_CM1)))
        & (after - before >= MIN_STEP * bands)
        & (after - before >= MIN_STEP_NOISE * noise_sd(Y))
        & (at(PERSIST_CM1) >= 0.5 * after)
    )
    edges[found] = centre[found] + CLEAR_CM1
    return edges
