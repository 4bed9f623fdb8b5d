import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils import estimator_checks as checks

from ramanid.classical import LibrarySearch, classical_model
from ramanid.training.augment import Augment
from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier
from ramanid.training.trainer import TrainConfig, resolve_device, train

TINY = dict(model="mlp", model_params={"hidden": (16,)}, epochs=3, batch_size=16, random_state=0)


def blobs(n=60, p=64, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, p))
    return (centres[y] + 0.3 * rng.normal(size=(n, p))).astype(np.float32), y


@pytest.fixture(scope="module")
def minerals(rruff_raw10):
    """The RamanNet protocol's set: 1,061 raw spectra of 67 minerals."""
    spectra = rruff_raw10.spectra
    return spectra.intensities, spectra.meta["mineral"].to_numpy()


@pytest.mark.parametrize(
    "check",
    [checks.check_no_attributes_set_in_init, checks.check_get_params_invariance, checks.check_set_params,
     checks.check_estimators_fit_returns_self, checks.check_dont_overwrite_parameters, checks.check_n_features_in,
     checks.check_fit2d_predict1d, checks.check_estimators_dtypes, checks.check_classifiers_classes,
     checks.check_estimators_unfitted, checks.check_fit_score_takes_y, checks.check_estimators_empty_data_messages,
     checks.check_estimators_nan_inf],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("estimator", [SpectrumClassifier(**TINY), LibrarySearch()], ids=["neural", "library"])
def test_sklearn_contract(estimator, check):
    check(type(estimator).__name__, clone(estimator))


def test_a_few_steps_on_real_rruff_lower_the_loss(minerals):
    X, y = minerals
    model = SpectrumClassifier(epochs=8, random_state=0, val_fraction=0.0).fit(X, y)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < 0.8 * losses[0]


def test_same_seed_same_result():
    X, y = blobs()
    a = SpectrumClassifier(**TINY).fit(X, y).predict_proba(X)
    b = SpectrumClassifier(**TINY).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_ramannet_classifier_learns_and_embeds():
    X, y = blobs(120, 128)
    model = SpectrumClassifier(epochs=30, batch_size=32, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9
    emb = model.transform(X[:5])
    assert emb.shape == (5, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert list(model.classes_) == [0, 1, 2]


def test_early_stopping_restores_the_best_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    X, y = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32), np.zeros((40, 1), np.float32)
    # the validation target is unreachable by design, so validation loss rises as training fits y
    history = train(model, lambda m, xb, yb: ((m(xb) - yb) ** 2).mean(), X, y,
                    TrainConfig(epochs=50, lr=0.05, batch_size=8, patience=3), X[:10], y[:10] + 5)
    best = min(h["val_loss"] for h in history)
    final = ((model(torch.as_tensor(X[:10])) - torch.as_tensor(y[:10] + 5)) ** 2).mean().item()
    assert len(history) < 50 and abs(final - best) < 1e-5


def test_element_thresholds_come_from_validation_only():
    X, _ = blobs(200, 64)
    Y = (X[:, :2] > 0).astype(int)
    model = ElementIdentifier(elements=["A", "B"], model="mlp", epochs=20, batch_size=32, random_state=0,
                              val_fraction=0.25).fit(X, Y)
    assert model.thresholds_.shape == (2,) and np.all((model.thresholds_ > 0) & (model.thresholds_ <= 1))
    assert model.predict_proba(X).shape == (200, 2)
    # the thresholds do not depend on what is scored later
    before = model.thresholds_.copy()
    model.predict(X[:7])
    np.testing.assert_array_equal(before, model.thresholds_)
    assert (model.predict(X) == Y).mean() > 0.8


def test_seed_attention_trains_one_model_per_element():
    X, _ = blobs(80, 64)
    Y = (X[:, :3] > 0).astype(int)
    model = ElementIdentifier(elements=["A", "B", "C"], model="seed_attention", epochs=10, random_state=0).fit(X, Y)
    assert len(model.models_) == 3 and model.predict(X).shape == (80, 3)


def test_augmentation_changes_batches_and_keeps_shape():
    x = torch.rand(8, 100)
    out = Augment(shift=3, scale=0.1, noise=0.01, baseline=0.1, spikes=1.0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert not Augment().active


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize("name", ["lr", "svm", "knn", "rf", "pca_lr", "library"])
def test_classical_baselines(name):
    X, y = blobs(90, 64)
    model = classical_model(name, n_components=10).fit(X[::2], y[::2]) if name == "pca_lr" else \
        classical_model(name).fit(X[::2], y[::2])
    assert model.score(X[1::2], y[1::2]) > 0.9
    assert model.predict_proba(X[:3]).shape == (3, 3)


@pytest.mark.parametrize("metric", ["cosine", "pearson", "hqi"])
def test_library_search_returns_the_top_matches_with_metadata(minerals, metric):
    import pandas as pd

    X, y = minerals
    meta = pd.DataFrame({"mineral": y, "row": np.arange(len(y))})
    library = LibrarySearch(metric).fit(X[1:], y[1:], meta=meta.iloc[1:])
    hits = library.search(X[:1], k=5)[0]
    assert len(hits) == 5 and list(hits.columns[:3]) == ["library_index", "label", "similarity"]
    assert hits["similarity"].is_monotonic_decreasing and "row" in hits
    query = X[5:6]
    assert library.search(query, k=1)[0]["row"][0] == 5  # a spectrum finds itself first


def test_warm_start_fine_tunes_the_pretrained_network(minerals):
    X, y = minerals
    first = np.isin(y, np.unique(y)[:10])
    pretrain, finetune = np.flatnonzero(first)[::2], np.flatnonzero(first)[1::2]
    model = SpectrumClassifier(epochs=3, random_state=0).fit(X[pretrain], y[pretrain])
    pretrained = model.predict_proba(X[finetune])
    # no epochs of fine-tuning: the pretrained network is kept, not a new one
    model.set_params(warm_start=True, epochs=0).fit(X[finetune], y[finetune])
    np.testing.assert_array_equal(model.predict_proba(X[finetune]), pretrained)
    # fine-tuning on fewer classes keeps every class of the first fit
    few = finetune[np.isin(y[finetune], np.unique(y)[:3])]
    model.set_params(epochs=2).fit(X[few], y[few])
    assert len(model.classes_) == 10 and not np.allclose(model.predict_proba(X[finetune]), pretrained)
    with pytest.raises(ValueError, match="were not among the 10 classes"):
        model.fit(X[~first][:20], y[~first][:20])


def test_bfloat16_training_learns():
    X, y = blobs(120, 128)
    model = SpectrumClassifier(model="liu2017_cnn", epochs=15, batch_size=32, random_state=0, precision="bfloat16")
    assert model.fit(X, y).score(X, y) > 0.9
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        SpectrumClassifier(**TINY, precision="half").fit(X, y)
