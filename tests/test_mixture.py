"""Mixtures: every mineral of a spectrum with its share, on synthetic references and through
predict --mixture on a saved library identifier."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.evaluation.mixtures import make_mix, score_sets
from ramanid.mixture import cone, forward_path, stop, unmix
from ramanid.search import shifted
from ramanid.spectra import Spectrum

OLD = Path(__file__).parent / "data" / "bundles_v2"
X = np.linspace(100, 1400, 512)


def _band(*centres):
    return sum(1 / (1 + ((X - c) / 6) ** 2) for c in centres)


REFERENCES = np.stack([_band(300, 700), _band(450, 1100), _band(460, 1110), _band(900, 1300)])
CONES = {"A": cone(REFERENCES[0]), "B": cone(REFERENCES[1:3]), "C": cone(REFERENCES[3])}  # B: two references


def test_a_two_mineral_mixture_is_unmixed_with_its_shares():
    query = 0.7 * REFERENCES[0] + 0.3 * REFERENCES[3] + 0.05 * np.linspace(0, 1, X.size)
    fit, explained, residual = unmix(query, dict(CONES), max_components=3, min_gain=0.1)
    assert sorted(m for m, _ in fit) == ["A", "C"] and explained > 0.999 and residual < 1e-6
    shares = dict(fit)
    area = REFERENCES.sum(axis=1)
    truth = 0.7 * area[0] / (0.7 * area[0] + 0.3 * area[3])
    assert shares["A"] == pytest.approx(truth, abs=1e-3) and shares["C"] == pytest.approx(1 - truth, abs=1e-3)


def test_a_single_mineral_gets_one_component_and_a_mineral_is_one_component():
    query = REFERENCES[1] + 0.2 * REFERENCES[2]  # one mineral, measured between its two references
    fit, _, _ = unmix(query, dict(CONES), max_components=3, min_gain=0.1)
    assert [m for m, _ in fit] == ["B"]
    fit, _, _ = unmix(REFERENCES[0], dict(CONES), max_components=3, min_gain=0.1)
    assert [m for m, _ in fit] == ["A"]


def test_a_mineral_measured_a_little_off_is_still_one_component():
    # two points off, as another specimen or calibration leaves it: the cone's shifted copies fit it
    query = shifted(REFERENCES[0], 2) + 0.5 * REFERENCES[3]
    fit, explained, _ = unmix(query, dict(CONES), max_components=3, min_gain=0.1)
    assert sorted(m for m, _ in fit) == ["A", "C"] and explained > 0.99


def test_the_stopping_rule_keeps_components_while_each_takes_enough_away():
    query = 0.5 * REFERENCES[0] + 0.3 * REFERENCES[3] + 0.2 * REFERENCES[1]
    path, residuals = forward_path(query, dict(CONES), 3)
    assert sorted(path) == ["A", "B", "C"] and all(a >= b for a, b in zip(residuals, residuals[1:], strict=False))
    assert stop(residuals, 0.1) == 3 and stop(residuals, 1.0) == 1 and stop([1.0], 0.1) == 0


def test_candidates_found_in_what_the_fit_leaves_are_considered():
    query = 0.8 * REFERENCES[0] + 0.2 * REFERENCES[3]
    asked = []

    def more(chosen):
        asked.append(list(chosen))
        return {"C": CONES["C"]} if chosen == ["A"] else {}

    path, _ = forward_path(query, {"A": CONES["A"], "B": CONES["B"]}, 2, more)
    assert path == ["A", "C"] and asked == [["A"]]


def _spectrum(y, mineral):
    return Spectrum(X, y, {"file": mineral, "mineral": mineral})


def test_mixtures_are_scored_by_their_area_shares():
    mix = make_mix([_spectrum(REFERENCES[0], "A"), _spectrum(REFERENCES[3], "C")], (0.3, 0.7), "m")
    assert mix.minerals == ("A", "C") and sum(mix.shares) == pytest.approx(1)
    assert score_sets(mix, ["A", "C"], [0.3, 0.7])["exact"] == 1
    partial = score_sets(mix, ["A", "B"], [0.5, 0.5])
    assert partial["recall"] == 0.5 and partial["precision"] == 0.5 and partial["extra"] == 1
    assert partial["share_mae"] == pytest.approx((abs(0.5 - mix.shares[0]) + mix.shares[1]) / 2)


def _csv(tmp_path: Path, name: str, shifts, y) -> Path:
    path = tmp_path / f"{name}.csv"
    np.savetxt(path, np.column_stack([shifts, y]), delimiter=",")
    return path


@pytest.mark.parametrize("components", ["0", "9"])
def test_max_components_out_of_range_is_one_line(tmp_path, components):
    path = _csv(tmp_path, "s", X, _band(500))
    result = CliRunner().invoke(
        main, ["predict", str(OLD / "identifier"), str(path), "--mixture", "--max-components", components]
    )
    assert result.exit_code == 2 and "is not in the range 1<=x<=5" in result.output and "Traceback" not in result.output


def test_mixture_on_a_model_that_is_not_a_library_identifier_is_refused(tmp_path):
    path = _csv(tmp_path, "s", np.linspace(90, 1420, 300), np.random.default_rng(0).random(300))
    result = CliRunner().invoke(main, ["predict", str(OLD / "classifier"), str(path), "--mixture"])
    assert result.exit_code == 1 and "--mixture needs a library identifier" in result.output
    assert len(result.output.strip().splitlines()) == 1
