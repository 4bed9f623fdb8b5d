"""Preprocessing on real RRUFF spectra, checked against pybaselines and scipy directly."""

import numpy as np
import pytest
from pybaselines import Baseline
from scipy.signal import find_peaks, savgol_filter

from ramanid.datasets.rruff import build_rruff
from ramanid.evaluation.degradation import conditions, degrade
from ramanid.preprocessing import BaselineCorrection, Despike, make_pipeline, output_shifts
from ramanid.preprocessing.baseline import fitted_input
from ramanid.spectra import Spectrum


@pytest.fixture(scope="module")
def raw(rruff_zip):
    """Raw 780 nm RRUFF spectra on 1024 points, unscaled."""
    return build_rruff(rruff_zip, kind="raw", preprocess="max").spectra.subset(range(0, 600, 20))


@pytest.mark.parametrize(
    "method, params",
    [("arpls", {"lam": 1e5}), ("snip", {"max_half_window": 40}), ("modpoly", {"poly_order": 3}), ("rubberband", {})],
)
def test_baselines_on_real_raw_spectra_equal_pybaselines(raw, method, params):
    step = BaselineCorrection(method, shifts=raw.shifts.tolist(), **params)
    X = raw.intensities.astype(np.float64)
    fit = getattr(Baseline(raw.shifts), method)
    expected = np.stack([row - fit(fitted_input(method, row), **params)[0] for row in X])
    np.testing.assert_allclose(step.fit_transform(X), expected, rtol=1e-7, atol=1e-9)


def test_robust_preset_on_real_raw_spectra_equals_the_libraries_step_by_step(raw):
    X = raw.intensities.astype(np.float64)
    out = make_pipeline("robust", raw.shifts).fit_transform(X)
    expected = Despike().fit_transform(X)
    expected = np.stack([row - Baseline(raw.shifts).arpls(fitted_input("arpls", row))[0] for row in expected])
    expected = savgol_filter(expected, 11, 3, axis=1, mode="interp")
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_arpls_removes_a_strong_background_from_spectra_without_noise(rruff_780):
    """Processed RRUFF spectra (smoothed, no noise) under a background 5 times their strongest
    band: arPLS fitted to the spectrum itself leaves much of the background in place (its weights,
    scaled by the noise, collapse); fitted against its noise floor, it recovers the spectrum."""
    X = rruff_780.spectra.intensities[:120].astype(np.float64)
    shifts = rruff_780.spectra.shifts
    rng = np.random.default_rng(0)
    background = next(c for c in conditions() if c.name == "fluorescence 5x")
    Y = np.stack([degrade(Spectrum(shifts, x, {}), background, rng).intensities for x in X])

    def cosine(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    step = BaselineCorrection("arpls", lam=1e5)
    recovered = cosine(step.fit_transform(Y), step.fit_transform(X))
    plain = np.stack([y - Baseline(np.arange(len(y))).arpls(y, lam=1e5)[0] for y in Y])
    assert np.mean(cosine(plain, step.fit_transform(X)) < 0.9) > 0.1  # the failure mended
    assert np.mean(recovered < 0.9) < 0.03
    assert np.median(recovered) > 0.99


def test_despiking_real_spectra_keeps_peaks_within_one_point(rruff_780):
    X = rruff_780.spectra.intensities[:200].astype(np.float64)
    rng = np.random.default_rng(1)
    spiked = X.copy()
    where = rng.integers(20, X.shape[1] - 20, size=len(X))
    spiked[np.arange(len(X)), where] += rng.uniform(1.0, 3.0, size=len(X))
    out = Despike().fit_transform(spiked)
    # the planted spikes are gone ...
    assert np.all(np.abs(out[np.arange(len(X)), where] - X[np.arange(len(X)), where]) < 0.3)
    # ... and every real band (at least 3 points wide) above 0.2 is still there, within one point;
    # one-point "peaks" in the real data are spikes themselves and may go
    moved = 0
    for clean, despiked in zip(X, out, strict=False):
        before, _ = find_peaks(clean, height=0.2, prominence=0.1, width=3)
        after, _ = find_peaks(despiked, height=0.15, prominence=0.05)
        moved += sum(np.min(np.abs(after - p)) > 1 if len(after) else 1 for p in before)
    assert moved == 0
    assert Despike().spike_mask(X).mean() < 0.002  # clean spectra are left (almost) alone


def test_presets_and_step_strings(rruff_780):
    shifts = rruff_780.spectra.shifts
    pipeline = make_pipeline(
        "despike, arpls(lam=1e5), savgol(window_length=15), crop(start=200, stop=1200), snv", shifts
    )
    out = pipeline.fit_transform(rruff_780.spectra.intensities[:5])
    axis = output_shifts(pipeline, shifts)
    assert out.shape == (5, len(axis)) and axis[0] >= 200 and axis[-1] <= 1200
    assert pipeline.steps[1][1].lam == 1e5 and pipeline.steps[2][1].window_length == 15
    reference = make_pipeline("reference", shifts)
    np.testing.assert_allclose(
        reference.fit_transform(rruff_780.spectra.intensities[:3]), rruff_780.spectra.intensities[:3], atol=1e-6
    )


@pytest.mark.parametrize("bad", ["nonsense", "arpls(lam)", "arpls(lam=1e5", "minmax, ,", "arpls(colour=1)"])
def test_bad_step_strings_are_clear(bad):
    from ramanid.errors import RamanIdError

    with pytest.raises(RamanIdError, match="preprocessing"):
        make_pipeline(bad)


def test_build_with_a_preset(rruff_zip):
    result = build_rruff(rruff_zip, kind="raw", preprocess="robust", min_per_mineral=10)
    norms = np.linalg.norm(result.spectra.intensities, axis=1)
    assert len(result.spectra) == 43 and np.allclose(norms, 1, atol=1e-5)


def test_despiking_filters_only_the_candidate_steps_and_finds_what_filtering_everything_found(raw):
    """The local medians are taken at candidate spike steps only (map speed); on real raw spectra
    with planted spikes, the mask equals that of median filters over the whole spectrum.
    """
    from scipy.ndimage import median_filter

    from ramanid.preprocessing.despike import LOCAL_HALF_WIDTH, modified_z_scores

    X = raw.intensities.astype(np.float64)
    rng = np.random.default_rng(3)
    X[np.arange(len(X)), rng.integers(0, X.shape[1], len(X))] += rng.uniform(1, 5, len(X)) * X.max(axis=1)
    X[::3, 0] += X[::3].max(axis=1)  # a spike at the very edge: the windows repeat the edge value
    step = Despike()
    size = (1, 2 * LOCAL_HALF_WIDTH + 1)
    delta = np.abs(np.diff(X, axis=1))
    steps = (np.abs(modified_z_scores(X)) > step.threshold) & (
        delta > step.ratio * median_filter(delta, size=size, mode="nearest")
    )
    deviation = np.abs(X - median_filter(X, size=size, mode="nearest"))
    right = deviation[:, 1:] >= deviation[:, :-1]
    expected = np.zeros(X.shape, dtype=bool)
    expected[:, 1:] |= steps & right
    expected[:, :-1] |= steps & ~right
    found = step.spike_mask(X)
    assert found.sum() >= len(X) and np.array_equal(found, expected)


@pytest.mark.parametrize("options", [{}, {"lam": 1e4}, {"lam": 1e6, "max_iter": 3}])
def test_arpls_of_a_batch_equals_pybaselines_row_by_row(raw, options):
    """arpls_rows solves every unfinished row at once; rows under no, a weak and a strong
    background (so stopping at different iterations, or not converging within the cap), a flat
    row and a straight line give pybaselines' own baselines within rounding (which the
    unconverged rows' 50 iterations amplify to some 1e-8 of their range).
    """
    import warnings

    from ramanid.preprocessing.baseline import arpls_rows

    rng = np.random.default_rng(0)
    rows = []
    for name in ("clean", "fluorescence 1x", "fluorescence 20x"):
        condition = next(c for c in conditions() if c.name == name)
        rows += [degrade(Spectrum(raw.shifts, x, {}), condition, rng).intensities for x in raw.intensities[:10]]
    Y = np.stack([*rows, np.ones(len(raw.shifts)), np.linspace(0, 1, len(raw.shifts))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pybaselines warns where a row stops early
        expected = np.stack([Baseline(raw.shifts).arpls(y, **options)[0] for y in Y])
        found = arpls_rows(Y, **options)
    scale = np.ptp(Y, axis=1, keepdims=True) + 1
    np.testing.assert_allclose(found / scale, expected / scale, rtol=0, atol=1e-7)
