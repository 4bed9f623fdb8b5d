"""Quality estimates of measured spectra, and the degradation protocol's factors."""

import numpy as np
import pytest

from ramanid.evaluation.degradation import COMBINATIONS, LEVELS, Condition, conditions, degrade, random_condition
from ramanid.quality import SNR_BINS, estimate, noise_sd, snr_bin
from ramanid.spectra import Spectrum

X = np.linspace(100, 1400, 1300)


def _bands() -> Spectrum:
    y = sum(h / (1 + ((X - c) / 4) ** 2) for c, h in ((300, 0.4), (520, 1.0), (1085, 0.7)))
    return Spectrum(X, 1000 * y, {"file": "bands", "mineral": "Testite"})


def test_noise_and_snr_estimates_follow_the_noise_added():
    rng = np.random.default_rng(0)
    clean = _bands()
    for snr in (100, 30, 10):
        noisy = clean.intensities + rng.normal(size=X.size) * 1000 / snr
        assert noise_sd(noisy)[0] == pytest.approx(1000 / snr, rel=0.15)
        (q,) = estimate(X, noisy)
        assert q.snr == pytest.approx(snr, rel=0.35) and not q.poor
    (q,) = estimate(X, clean.intensities + rng.normal(size=X.size) * 1000 / 2)
    assert q.poor and q.bin == 0


def test_a_fluorescence_background_is_most_of_the_signal():
    background = 20_000 * np.exp(-0.5 * ((X - 1200) / 600) ** 2)
    (q,) = estimate(X, _bands().intensities + background, coverage=0.8)
    assert q.background_share > 0.9 and q.coverage == 0.8 and not q.poor  # arPLS removes it: not poor alone
    (clean,) = estimate(X, _bands().intensities)
    assert clean.background_share < 0.1  # the Lorentzian tails lift the envelope a little


def test_snr_bins_are_ordered():
    assert [snr_bin(v) for v in (0.5, 5, 9.9, 10, 49, 50, 1e9)] == [0, 1, 1, 2, 3, 4, 4]
    assert len(SNR_BINS) == 5


def test_the_protocol_lists_every_factor_level_and_the_combinations():
    names = [c.name for c in conditions()]
    assert names[0] == "clean" and len(names) == 1 + sum(len(v) for v in LEVELS.values()) + len(COMBINATIONS)
    assert "noise SNR 5" in names and "offset +-2.5 cm-1" in names and "poor sample" in names


def test_each_factor_does_what_it_says():
    clean = _bands()
    rng = lambda: np.random.default_rng(1)  # noqa: E731
    assert degrade(clean, Condition("clean"), rng()).intensities is clean.intensities
    noisy = degrade(clean, Condition("n", (("noise", 10),)), rng())
    floor = noise_sd(noisy.intensities[(X > 600) & (X < 1000)])[0]
    assert floor == pytest.approx(1000 / 10 / np.sqrt(2), rel=0.2)  # half the variance at the band is read noise
    fluorescent = degrade(clean, Condition("f", (("fluorescence", 20),)), rng())
    assert fluorescent.intensities.min() > 1000 and fluorescent.intensities.max() < 1000 * 22
    shifted = degrade(clean, Condition("o", (("offset", 5),)), rng())
    assert abs(shifted.shifts[0] - X[0]) == pytest.approx(5)
    cut = degrade(clean, Condition("r", (("range", (250, 1100)),)), rng())
    assert cut.shifts[0] >= 250 and cut.shifts[-1] <= 1100
    spiked = degrade(clean, Condition("s", (("spikes", 3),)), rng())
    assert np.sum(spiked.intensities - clean.intensities > 500) == 3
    broad = degrade(clean, Condition("b", (("resolution", 15),)), rng())
    assert broad.intensities.max() < 0.6 * clean.intensities.max()  # a 8 cm-1 band under a 15 cm-1 instrument
    hump = degrade(clean, Condition("e", (("edge", "hump"),)), rng())
    assert hump.intensities[0] > 2 * clean.intensities.max() and hump.intensities[-1] < 50
    assert degrade(clean, Condition("n", (("noise", 10),)), rng()).intensities.tolist() == noisy.intensities.tolist()


def test_random_conditions_are_the_protocols():
    rng = np.random.default_rng(0)
    seen = {random_condition(rng).name for _ in range(500)}
    assert seen == {c.name for c in conditions()}
    assert {dict(random_condition(rng).factors).get("noise") for _ in range(500)} >= {None, *LEVELS["noise"]}


def test_the_snr_of_real_spectra_under_a_strong_background_and_a_filter_cut_is_read_as_measured(rruff_780):
    """Under a background 20 times the strongest band, cut by an edge filter, the envelope cannot
    follow the shoulder of the cut; what it leaves there was read as the strongest band, so noisy
    spectra (ratio 5) measured 3 times that and were not flagged poor (``bench_quality.py``)."""
    X = rruff_780.spectra.intensities[:120].astype(np.float64)
    shifts = rruff_780.spectra.shifts
    rng = np.random.default_rng(0)
    poor = Condition("poor", (("noise", 5), ("fluorescence", 20), ("edge", "cut")))
    copies = [degrade(Spectrum(shifts, x, {}), poor, rng) for x in X]
    Y = np.stack([np.interp(shifts, c.shifts, c.intensities) for c in copies])
    measured = np.array([q.snr for q in estimate(shifts, Y)])
    assert 0.67 < np.median(measured) / 5 < 1.5 and np.mean(measured < 5) > 0.3
    noisy = np.stack([degrade(Spectrum(shifts, x, {}), Condition("n", (("noise", 20),)), rng).intensities for x in X])
    assert not any(q.poor for q in estimate(shifts, noisy))


def test_under_a_strong_background_a_spectrum_is_poor_below_snr_10():
    """Read at SNR 5-10 under a background over 80% of the signal, a spectrum is named right about
    as often as one below SNR 5 (validation copies, ``benchmarks/RESULTS.md``): both are poor."""
    from ramanid.quality import POOR_SNR_UNDER_BACKGROUND, STRONG_BACKGROUND, Quality

    assert Quality(snr=7.0, background_share=0.9, coverage=1.0).poor
    assert not Quality(snr=7.0, background_share=0.5, coverage=1.0).poor  # noise alone: poor below 5 only
    assert not Quality(snr=POOR_SNR_UNDER_BACKGROUND, background_share=0.9, coverage=1.0).poor
    assert Quality(snr=4.0, background_share=0.0, coverage=1.0).poor
    background = 20_000 * np.exp(-0.5 * ((X - 1200) / 600) ** 2)
    rng = np.random.default_rng(1)
    (q,) = estimate(X, _bands().intensities + background + rng.normal(size=X.size) * 1000 / 7)
    assert q.background_share > STRONG_BACKGROUND and 5 <= q.snr < 10 and q.poor
