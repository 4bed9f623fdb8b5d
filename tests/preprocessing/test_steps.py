"""Every step inherits the generic checks of :class:`StepChecks` (after pybaselines' tests)."""

from __future__ import annotations

import numpy as np
import pytest
from pybaselines import Baseline
from scipy.signal import savgol_filter
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ramanid.errors import PreprocessingError, SpectrumFormatError
from ramanid.preprocessing import (
    BaselineCorrection,
    Crop,
    Derivative,
    Despike,
    Normalize,
    OpeningBaseline,
    Resample,
    SavitzkyGolay,
    make_pipeline,
)
from ramanid.preprocessing.baseline import fitted_input

AXIS = np.linspace(100, 1400, 300)


def synthetic(n=5, seed=0):
    """Gaussian peaks on a sloped baseline, with noise; read-only (as pybaselines' BaseTester does),
    so a step that writes into its input fails loudly."""
    rng = np.random.default_rng(seed)
    peaks = sum(a * np.exp(-0.5 * ((AXIS - c) / 8) ** 2) for a, c in [(5, 400), (3, 700), (8, 1100)])
    rows = np.array([peaks * rng.uniform(0.5, 2) + 0.002 * AXIS + rng.normal(0, 0.05, AXIS.size) for _ in range(n)])
    rows.setflags(write=False)
    return rows


class StepChecks:
    """Generic checks every preprocessing step must pass. Subclasses set ``make``."""

    make = None

    @pytest.fixture
    def step(self):
        return self.make()

    def test_batch_equals_loop(self, step):
        X = synthetic()
        batch = clone(step).fit_transform(X)
        loop = np.vstack([clone(step).fit_transform(row[None]) for row in X])
        np.testing.assert_allclose(batch, loop, rtol=1e-10, atol=1e-10)

    def test_input_left_unchanged(self, step):
        X = synthetic()
        before = X.copy()
        step.fit_transform(X)
        np.testing.assert_array_equal(X, before)

    def test_float32_in_float32_out(self, step):
        out = step.fit_transform(synthetic().astype(np.float32))
        assert out.dtype == np.float32

    def test_float64_and_lists_accepted(self, step):
        X = synthetic(2)
        out = step.fit_transform(X.tolist())
        assert out.dtype == np.float64 and out.shape[0] == 2

    def test_read_only_float32_input(self, step):
        X = synthetic().astype(np.float32)
        X.setflags(write=False)
        assert np.all(np.isfinite(step.fit_transform(X)))

    def test_nan_is_a_clear_error(self, step):
        X = synthetic(3).copy()
        X[1, 10] = np.nan
        with pytest.raises(SpectrumFormatError, match="spectrum 1 holds NaN"):
            step.fit_transform(X)

    def test_in_a_pipeline_with_params(self, step):
        pipeline = Pipeline([("step", step), ("norm", Normalize("vector"))])
        out = pipeline.fit_transform(synthetic(2))
        assert np.all(np.isfinite(out))
        assert clone(pipeline).get_params()["step"].get_params() == step.get_params()


class TestResample(StepChecks):
    make = staticmethod(lambda: Resample(shifts=AXIS.tolist(), grid="150:1350:256", method="cubic"))

    def test_output_axis(self, step):
        assert step.fit_transform(synthetic(1)).shape == (1, 256)
        assert step.output_shifts()[0] == 150


class TestCrop(StepChecks):
    make = staticmethod(lambda: Crop(shifts=AXIS.tolist(), start=300, stop=1200))

    def test_keeps_the_range(self, step):
        np.testing.assert_array_equal(
            step.fit_transform(synthetic(1))[0], synthetic(1)[0][(AXIS >= 300) & (AXIS <= 1200)]
        )


class TestDespike(StepChecks):
    make = Despike


class TestSavitzkyGolay(StepChecks):
    make = staticmethod(lambda: SavitzkyGolay(11, 3))

    def test_equals_scipy(self, step):
        X = synthetic(2)
        np.testing.assert_allclose(step.fit_transform(X), savgol_filter(X, 11, 3, axis=1, mode="interp"))


class TestDerivative(StepChecks):
    make = staticmethod(lambda: Derivative(2))


@pytest.mark.parametrize("method", ["minmax", "max", "area", "vector", "snv"])
class TestNormalize(StepChecks):
    @pytest.fixture
    def step(self, method):
        return Normalize(method)

    def test_scale(self, step, method):
        out = step.fit_transform(synthetic(3))
        expected = {
            "minmax": lambda o: np.allclose(o.min(1), 0) and np.allclose(o.max(1), 1),
            "max": lambda o: np.allclose(np.abs(o).max(1), 1),
            "area": lambda o: np.allclose(np.abs(o).sum(1), 1),
            "vector": lambda o: np.allclose(np.linalg.norm(o, axis=1), 1),
            "snv": lambda o: np.allclose(o.mean(1), 0) and np.allclose(o.std(1), 1),
        }[method]
        assert expected(out)

    def test_zero_spectrum_gives_zeros_not_nan(self, step):
        assert np.all(step.fit_transform(np.zeros((1, 10))) == 0)


@pytest.mark.parametrize(
    "method, params",
    [
        ("asls", {"lam": 1e5, "p": 0.01}),
        ("arpls", {"lam": 1e5}),
        ("airpls", {"lam": 1e5}),
        ("modpoly", {"poly_order": 3}),
        ("imodpoly", {"poly_order": 3}),
        ("snip", {"max_half_window": 40}),
        ("rubberband", {}),
    ],
)
class TestBaseline(StepChecks):
    @pytest.fixture
    def step(self, method, params):
        return BaselineCorrection(method, shifts=AXIS.tolist(), **params)

    def test_equals_pybaselines(self, step, method, params):
        X = synthetic(2)
        expected = [row - getattr(Baseline(AXIS), method)(fitted_input(method, row), **params)[0] for row in X]
        np.testing.assert_allclose(step.fit_transform(X), expected)

    def test_removes_a_slope(self, step, method):
        peak = np.exp(-0.5 * ((AXIS - 700) / 10) ** 2)
        out = step.fit_transform((0.01 * AXIS + 3 + peak)[None, :])[0]
        assert np.abs(out - peak).max() < 0.25 and out[AXIS > 900].std() < 0.1


class TestOpeningBaseline(StepChecks):
    @staticmethod
    def make():
        return OpeningBaseline(width=120, shifts=AXIS.tolist())

    def test_removes_a_slope_and_a_broad_background_and_keeps_bands(self):
        peak = np.exp(-0.5 * ((AXIS - 700) / 6) ** 2)
        background = 3 + 0.01 * AXIS + 2 * np.exp(-0.5 * ((AXIS - 900) / 400) ** 2)
        out = self.make().fit_transform((background + peak)[None, :])[0]
        assert abs(out.max() - 1) < 0.2 and np.abs(out[np.abs(AXIS - 700) > 80]).max() < 0.1


def test_rubberband_of_a_straight_line_is_the_line():
    out = BaselineCorrection("rubberband", shifts=AXIS.tolist()).fit_transform(0.01 * AXIS[None, :] + 3)
    np.testing.assert_allclose(out, 0, atol=1e-9)


@pytest.mark.parametrize(
    "step, message",
    [
        (BaselineCorrection("snip", lam=10), "takes"),
        (BaselineCorrection("nosuch"), "unknown baseline"),
        (Normalize("l3"), "unknown normalisation"),
        (SavitzkyGolay(4, 5), "polyorder < window_length"),
        (Derivative(3), "derivative order"),
        (Resample(method="spline"), "unknown resampling"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_a_bad_parameter_fails_in_fit_with_a_clear_error(step, message):
    with pytest.raises(PreprocessingError, match=message):
        step.fit(synthetic(1))


def test_a_failing_algorithm_is_reported_with_the_step():
    # a window longer than the spectrum passes the parameter check but cannot run on 5 points
    with pytest.raises(PreprocessingError, match="Savitzky-Golay window_length=11.*5 points"):
        SavitzkyGolay(11, 3).fit_transform(synthetic(1)[:, :5])


def test_a_bad_preprocessing_string_is_refused_before_any_work():
    with pytest.raises(PreprocessingError, match="arpls.*not \\['p'\\]"):
        make_pipeline("arpls(p=0.1)")


@pytest.mark.parametrize(
    "step",
    [
        Resample(grid="0:2:5"),
        Crop(start=0, stop=2),
        Despike(),
        SavitzkyGolay(3, 1),
        Derivative(1, 3, 2),
        Normalize(),
        BaselineCorrection("snip"),
        OpeningBaseline(),
    ],
    ids=lambda s: type(s).__name__,
)
def test_scikit_learn_contract(step):
    """scikit-learn's own estimator checks, on every step (the NaN check is ours: we raise our error)."""
    from sklearn.utils.estimator_checks import check_estimator

    expected = {}
    if isinstance(step, (BaselineCorrection, SavitzkyGolay, Derivative)):
        # this check fits 2-point data: a window of 3 cannot run on it, and the step says so
        expected["check_fit_idempotent"] = "a window wider than 2-point spectra: a clear PreprocessingError"
    if isinstance(step, BaselineCorrection):
        expected["check_transformer_n_iter"] = "max_iter goes to pybaselines, which reports no n_iter_"
    results = check_estimator(step, expected_failed_checks=expected, on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed, failed


def test_baseline_parallel_equals_serial():
    X = np.repeat(synthetic(3), 200, axis=0)
    serial = BaselineCorrection("arpls", lam=1e5, n_jobs=1).fit_transform(X)
    parallel = BaselineCorrection("arpls", lam=1e5, n_jobs=2).fit_transform(X)
    np.testing.assert_array_equal(serial, parallel)


def test_despike_removes_planted_spikes_and_keeps_peaks():
    X = synthetic(1)[0]
    spiked = X.copy()
    spiked[[50, 150, 260]] += [40, 25, 60]
    out = Despike().fit_transform(spiked[None])[0]
    assert np.abs(out - X).max() < 0.5
    assert Despike().spike_mask(X).sum() == 0


def test_arpls_batches_side_by_side_in_threads_give_what_each_gives_alone():
    """A map runs a chunk per core in threads, and numpy releases the interpreter's lock in a
    batch's arithmetic: two batches at once interleave and must not disturb each other.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ramanid.preprocessing.baseline import arpls_rows

    X = synthetic(40, seed=3) + np.linspace(0, 30, AXIS.size)  # a background many times the bands
    batches = [X[:20], X[20:]] * 4
    alone = [arpls_rows(b) for b in batches[:2]]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(arpls_rows, batches))
    for k, found in enumerate(together):
        np.testing.assert_array_equal(found, alone[k % 2])


@pytest.mark.parametrize("points", [3, 4, 5, 8])
def test_arpls_of_a_batch_of_very_short_spectra_equals_pybaselines(points):
    """The second-difference penalty's ends differ below 5 points (3 points: 1, 4, 1 on the diagonal)."""
    from ramanid.preprocessing.baseline import arpls_rows

    rng = np.random.default_rng(points)
    Y = rng.normal(0, 1, (6, points)) + np.linspace(0, 5, points)
    for lam in (1.0, 1e5):
        expected = [Baseline(np.arange(points)).arpls(y, lam=lam)[0] for y in Y]
        np.testing.assert_allclose(arpls_rows(Y, lam=lam), expected, rtol=1e-7, atol=1e-9)
