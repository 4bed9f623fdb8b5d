import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.spectra import SpectraSet
from tests.conftest import rruff_text


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,)
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [()] + list(_commands(main)))
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_build_rruff_from_a_folder(tmp_path):
    for i in range(3):
        (tmp_path / f"Calcite__R0{i}__Raman__780__0__unoriented__Raman_Data_Processed__{i}.txt").write_text(
            rruff_text(chemistry="CaCO_3_", name="Calcite")
        )
    out = tmp_path / "set.npz"
    result = CliRunner().invoke(
        main, ["build", "rruff", "--source", str(tmp_path), "--grid", "120:280:64", "--jobs", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "spectra: 3" in result.output and len(SpectraSet.load(out)) == 3


def test_build_errors_are_one_clear_line(tmp_path):
    (tmp_path / "x.txt").write_text("")
    result = CliRunner().invoke(
        main, ["build", "rruff", "--source", str(tmp_path), "--wavelength", "all", "--strict", "--out", "o.npz"]
    )
    assert result.exit_code == 1 and "error:" in result.output and "x.txt" in result.output
    assert "Traceback" not in result.output


def test_build_covid(covid_dir, tmp_path):
    out = tmp_path / "covid.npz"
    result = CliRunner().invoke(main, ["build", "covid", "--source", str(covid_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    spectra = SpectraSet.load(out)
    assert len(spectra) == 465 and spectra.meta["label"].value_counts().to_dict() == {
        "COVID-19": 159,
        "Suspected": 156,
        "Healthy": 150,
    }
