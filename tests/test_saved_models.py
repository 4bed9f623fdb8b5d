"""One saved-model interface: every kind of model folder loads through the registry, old folders
included, answers as it did, and inference imports no training-side code."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ramanid.bundle import Bundle, load_bundle, save_bundle
from ramanid.predict import predict_spectra
from ramanid.preprocessing import baseline
from ramanid.spectra import Spectrum
from ramanid.training.blend import NetworkAndVote
from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier
from ramanid.training.identifier import LibraryIdentifier

#: tiny model folders of every kind written by the previous ramanid (bundle version 2), with
#: what its predict answered for queries.npz
OLD = Path(__file__).parent / "data" / "bundles_v2"
KINDS = {
    "classifier": SpectrumClassifier,
    "elements": ElementIdentifier,
    "blend": NetworkAndVote,
    "identifier": LibraryIdentifier,
}


def _queries() -> list[Spectrum]:
    with np.load(OLD / "queries.npz") as data:
        return [Spectrum(data["shifts"], row, {"file": f"q{i}"}) for i, row in enumerate(data["intensities"])]


def _assert_same_answers(old: list[dict], new: list[dict]) -> None:
    """Names and flags equal; similarities within 1e-6, probabilities within 1e-4 (float32 sums in
    another order, as the identifier's one product of both parts takes them, move a similarity by
    about 1e-7, and the calibration's temperature multiplies that).
    """
    assert len(old) == len(new)
    for o, n in zip(old, new, strict=True):
        assert (o["file"], o["unknown"], o["answer_set"]) == (n["file"], n["unknown"], n["answer_set"])
        assert [name for name, _ in o["top"]] == [name for name, _ in n["top"]]
        np.testing.assert_allclose([p for _, p in o["top"]], [p for _, p in n["top"]], atol=1e-4)
        np.testing.assert_allclose(
            [o["similarity"], o["unknown_score"]], [n["similarity"], n["unknown_score"]], atol=1e-6
        )
        assert [r["label"] for r in o["nearest"]] == [r["label"] for r in n["nearest"]]
        np.testing.assert_allclose(
            [r["similarity"] for r in o["nearest"]], [r["similarity"] for r in n["nearest"]], atol=1e-6
        )
        for element, answer in o["elements"].items():  # a class model may now also list its formulas' elements
            assert n["elements"][element]["present"] == answer["present"]
            assert n["elements"][element]["probability"] == pytest.approx(answer["probability"], abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_of_the_previous_version_loads_as_its_kind_and_answers_as_before(kind, monkeypatch):
    # its answers were recorded before arPLS fitted against a noise floor (a change of the
    # preprocessing, tested in tests/preprocessing): without the floor they must be the same
    monkeypatch.setattr(baseline, "ARPLS_NOISE_FLOOR", 0.0)
    bundle = load_bundle(OLD / kind)
    assert type(bundle.estimator) is KINDS[kind] and bundle.header["version"] == 2
    expected = json.loads((OLD / "expected.json").read_text())[kind]
    results, skipped = predict_spectra(bundle, _queries(), top=5)
    assert not skipped
    _assert_same_answers(expected, [p.as_json() for p in results])


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_saved_again_is_version_3_and_answers_the_same(kind, tmp_path):
    bundle = load_bundle(OLD / kind)
    save_bundle(tmp_path / kind, bundle.estimator, bundle.header, bundle.references)
    header = json.loads((tmp_path / kind / "bundle.json").read_text())
    assert header["version"] == 3 and header["estimator"] == KINDS[kind].__name__
    assert header["preprocess"] == [["despike", {}], ["arpls", {"lam": 100000.0}], ["minmax", {}]]
    again = load_bundle(tmp_path / kind)
    queries = _queries()
    _assert_same_answers(
        [p.as_json() for p in predict_spectra(bundle, queries)[0]],
        [p.as_json() for p in predict_spectra(again, queries)[0]],
    )


def test_a_library_identifier_describes_its_library_not_its_network(tmp_path):
    from ramanid.bundle import add_references
    from ramanid.serve import describe

    model = tmp_path / "identifier"
    shutil.copytree(OLD / "identifier", model)
    bundle = load_bundle(model)
    network = len(bundle.estimator.network_.classes_)
    described = describe(bundle)
    assert described["classes"] == bundle.minerals == len(bundle.estimator.classes_)
    meta = bundle.library_meta.iloc[:2].assign(label=["Newite", "Newite"])
    added = add_references(bundle, bundle.library[:2], meta, log=lambda _: None)
    described = describe(added)
    assert described["classes"] == bundle.minerals + 1 and described["references"] == len(bundle.library) + 2
    assert described["training_data"]["added_references"] == 2 and network == len(added.estimator.network_.classes_)


def test_the_preprocessing_is_fitted_once_at_load_never_on_a_query(monkeypatch):
    from sklearn.pipeline import Pipeline

    bundle = load_bundle(OLD / "classifier")
    assert bundle.pipeline is not None
    expected = bundle.prepare(_queries())[0]

    def refit(*args, **kwargs):
        raise AssertionError("a query refitted the pipeline")

    monkeypatch.setattr(Pipeline, "fit", refit)
    monkeypatch.setattr(Pipeline, "fit_transform", refit)
    np.testing.assert_array_equal(bundle.prepare(_queries())[0], expected)


def test_a_batch_is_prepared_as_each_spectrum_alone():
    bundle = load_bundle(OLD / "classifier")
    queries = _queries()
    batch = bundle.prepare(queries)[0]
    alone = np.vstack([bundle.prepare([q])[0] for q in queries])
    np.testing.assert_allclose(batch, alone, atol=1e-6)


def test_a_spectrum_the_preprocessing_fails_on_is_skipped_and_the_others_answered(monkeypatch):
    from ramanid.errors import PreprocessingError
    from ramanid.preprocessing.resample import resample_spectrum

    bundle = load_bundle(OLD / "classifier")
    queries = _queries()[:3]
    real = bundle.pipeline.transform
    second = resample_spectrum(queries[1].shifts, queries[1].intensities, bundle.shifts).astype(np.float32)

    def fails_on_the_second(X):
        if any(np.array_equal(row, second) for row in X):
            raise PreprocessingError("arpls did not converge")
        return real(X)

    monkeypatch.setattr(bundle.pipeline, "transform", fails_on_the_second)
    X, kept, skipped, _ = bundle.prepare(queries)
    assert [s.source for s in kept] == ["q0", "q2"] and len(X) == 2
    assert [s.file for s in skipped] == ["q1"] and "arpls did not converge" in skipped[0].reason


def test_a_tampered_preprocessing_is_refused_at_load(tmp_path):
    from ramanid.bundle import BundleError

    model = tmp_path / "model"
    shutil.copytree(OLD / "classifier", model)
    header = json.loads((model / "bundle.json").read_text())
    header["preprocess"] = "savgol(window_length=99999999)"
    (model / "bundle.json").write_text(json.dumps(header))
    with pytest.raises(BundleError, match="'preprocess' cannot run on 128 points.*longer than the spectra"):
        load_bundle(model)


def test_the_unknown_score_reads_only_what_it_needs():
    from ramanid import confidence as conf

    def never():
        raise AssertionError("computed an input the score does not read")

    evidence = conf.Evidence(logits=np.array([[2.0, 0.0]]), embeddings=never, reference_embeddings=never)
    assert conf.unknown_score("max softmax", evidence)[0] == pytest.approx(1 - 1 / (1 + np.exp(-2)))
    assert set(conf.unknown_candidates(conf.Evidence(logits=np.zeros((1, 2))))) == {"max softmax", "energy"}
    with pytest.raises(conf.ModelError, match="unknown score 'cosine'"):
        conf.unknown_score("cosine", evidence)


def test_predict_imports_no_training_side_code(tmp_path):
    """``ramanid predict`` loads the model and answers without the tuning, recipe, deployment or
    evaluation code."""
    sample = tmp_path / "q.csv"
    with np.load(OLD / "queries.npz") as data:
        np.savetxt(sample, np.column_stack([data["shifts"], data["intensities"][0]]), delimiter=",")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ramanid.cli import main\n"
        f"result = CliRunner().invoke(main, ['predict', {str(OLD / 'blend')!r}, {str(sample)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ramanid'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "ramanid.predict" in loaded and "ramanid.bundle" in loaded
    forbidden = {"ramanid.training.selection", "ramanid.training.recipe", "ramanid.deploy", "ramanid.training.factory"}
    assert not loaded & forbidden and not {m for m in loaded if m.startswith("ramanid.evaluation")}


def test_serve_with_details_prepares_and_searches_once_per_spectrum(monkeypatch, tmp_path):
    """What a server's worker does for one request (the worker runs ``serve._answer``)."""
    from ramanid.serve import Reading, _answer

    calls = {"prepare": 0, "similarity": 0}
    real_prepare = Bundle.prepare

    def counted_prepare(self, spectra):
        calls["prepare"] += len(spectra)
        return real_prepare(self, spectra)

    monkeypatch.setattr(Bundle, "prepare", counted_prepare)
    real_similarity = LibraryIdentifier.similarity_and_offsets  # what similarity() runs too

    def counted_similarity(self, X, *args, **kwargs):
        calls["similarity"] += len(X)
        return real_similarity(self, X, *args, **kwargs)

    monkeypatch.setattr(LibraryIdentifier, "similarity_and_offsets", counted_similarity)
    bundle = load_bundle(OLD / "identifier")
    paths = []
    for i, q in enumerate(_queries()[:4]):
        paths.append(tmp_path / f"q{i}.csv")
        paths[-1].write_text("\n".join(f"{x},{y}" for x, y in zip(q.shifts, q.intensities, strict=True)))
    calls.update(prepare=0, similarity=0)
    results, skipped = _answer(bundle, paths, True, 0.95, Reading())
    assert len(results) == 4 and not skipped and all(r["plot"]["references"] for r in results)
    # the card's references are the answer's nearest references
    assert all(
        [ref["similarity"] for ref in r["plot"]["references"]] == [round(n["similarity"], 4) for n in r["nearest"]]
        for r in results
    )
    # each spectrum prepared once and searched once: the card reuses the answer's search
    assert calls == {"prepare": 4, "similarity": 4}
