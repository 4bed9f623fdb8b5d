import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from ramanid.errors import ModelError
from ramanid.holdout import choose_thresholds
from ramanid.search import LibrarySearch
from ramanid.training.augment import Augment
from ramanid.training.baselines import ClassicalElementIdentifier, classical_model
from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier
from ramanid.training.trainer import TrainConfig, resolve_device, train

TINY = {"model": "mlp", "model_params": {"hidden": (16,)}, "epochs": 3, "batch_size": 16, "random_state": 0}
#: scikit-learn's checks ask for a fitted classifier to score well on easy data: a few more epochs
CHECKED = {**TINY, "epochs": 20}


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


#: scikit-learn's generic checks pass multiclass or continuous targets; an element identifier takes a
#: 0/1 matrix and refuses anything else with a ModelError, so those checks cannot apply to it
_MULTICLASS_TARGETS = "generic multiclass targets: an element identifier takes 0/1 per element and says so"


def _expected_failures(estimator):
    if isinstance(estimator, (ElementIdentifier, ClassicalElementIdentifier)):
        return dict.fromkeys(
            (
                "check_fit_score_takes_y",
                "check_estimators_overwrite_params",
                "check_dont_overwrite_parameters",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit",
                "check_estimators_dtypes",
                "check_dtype_object",
                "check_f_contiguous_array_estimator",
                "check_methods_sample_order_invariance",
                "check_methods_subset_invariance",
                "check_fit2d_1feature",
                "check_dict_unchanged",
                "check_fit2d_predict1d",
            ),
            _MULTICLASS_TARGETS,
        )
    if isinstance(estimator, SpectrumClassifier):
        return {"check_class_weight_classifiers": "a 16-unit network trained 20 epochs misses the check's accuracy bar"}
    return {}


@parametrize_with_checks(
    [
        SpectrumClassifier(**CHECKED),
        ElementIdentifier(elements=["A"], **CHECKED),
        LibrarySearch(),
        ClassicalElementIdentifier(elements=["A"]),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_element_identifiers_refuse_targets_that_are_not_presence():
    X, y = blobs()
    for estimator in (ElementIdentifier(elements=["A"], **TINY), ClassicalElementIdentifier(elements=["A"])):
        with pytest.raises(ModelError, match="0/1"):
            estimator.fit(X, y)  # three classes, not absent/present
        with pytest.raises(ModelError, match="2 columns for 1 elements"):
            estimator.fit(X, np.zeros((len(X), 2)))


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
    history = train(
        model,
        lambda m, xb, yb: ((m(xb) - yb) ** 2).mean(),
        X,
        y,
        TrainConfig(epochs=50, lr=0.05, batch_size=8, patience=3),
        X[:10],
        y[:10] + 5,
    )
    best = min(h["val_loss"] for h in history)
    final = ((model(torch.as_tensor(X[:10])) - torch.as_tensor(y[:10] + 5)) ** 2).mean().item()
    assert len(history) < 50 and abs(final - best) < 1e-5


def test_element_thresholds_come_from_validation_only():
    X, _ = blobs(200, 64)
    Y = (X[:, :2] > 0).astype(int)
    model = ElementIdentifier(
        elements=["A", "B"], model="mlp", epochs=20, batch_size=32, random_state=0, val_fraction=0.25
    ).fit(X, Y)
    scores = model.predict_proba(X)
    val = model.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    # the thresholds are the default rule's on the validation rows, for the whole training set's share ...
    share = Y.mean(axis=0)
    np.testing.assert_array_equal(model.thresholds_, choose_thresholds(Y[val], scores[val], share=share))
    # ... and would be other numbers had they been chosen on the training rows, so the line above can fail
    assert not np.allclose(choose_thresholds(Y[train], scores[train], share=share), model.thresholds_)
    before = model.thresholds_.copy()
    model.predict(X[:7])  # scoring does not move them
    np.testing.assert_array_equal(before, model.thresholds_)
    assert (model.predict(X) == Y).mean() > 0.75


def test_grouped_validation_holds_out_whole_groups():
    X, y = blobs(120, 32)
    groups = np.repeat(np.arange(12), 10)
    model = SpectrumClassifier(**TINY, val_fraction=0.25).fit(X, y, groups=groups)
    val = model.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    assert len(val) and not set(groups[val]) & set(groups[train])
    elements = ClassicalElementIdentifier(elements=["A"], val_fraction=0.25).fit(
        X, (y == 1).astype(int)[:, None], groups=groups
    )
    assert elements.thresholds_.shape == (1,)


def test_a_score_threshold_is_clipped_to_the_score_range_not_to_one():
    # regression scores (seed_attention's) can exceed 1; scikit-learn's first ROC threshold is infinite
    Y = np.array([[0], [0], [1], [1]])
    scores = np.array([[2.0], [3.0], [1.0], [1.5]])  # inverted: the best cut predicts nothing positive
    assert choose_thresholds(Y, scores, "youden")[0] == 3.0


def test_seed_attention_trains_one_model_per_element():
    X, _ = blobs(80, 64)
    Y = (X[:, :3] > 0).astype(int)
    model = ElementIdentifier(elements=["A", "B", "C"], model="seed_attention", epochs=10, random_state=0).fit(X, Y)
    assert len(model.models_) == 3 and model.predict(X).shape == (80, 3)


def _peaks(n=64, p=200):
    x = torch.zeros(n, p)
    x[:, 100] = 1.0
    return x


def test_augmentation_shift_moves_a_band_by_at_most_the_shift():
    out = Augment(shift=3)(_peaks(), torch.Generator().manual_seed(0))
    moved = out.argmax(1) - 100
    assert moved.abs().max() <= 3 and len(moved.unique()) > 3 and torch.allclose(out.sum(1), torch.ones(64))


def test_augmentation_scale_multiplies_within_its_range():
    x = _peaks()
    factor = Augment(scale=0.1)(x, torch.Generator().manual_seed(0))[:, 100]
    assert factor.min() >= 0.9 and factor.max() <= 1.1 and factor.std() > 0.02


def test_augmentation_noise_has_the_stated_spread():
    out = Augment(noise=0.01)(_peaks(256), torch.Generator().manual_seed(0)) - _peaks(256)
    assert abs(out.std().item() - 0.01) < 0.001  # relative to each spectrum's range, which is 1


def test_augmentation_baseline_is_smooth_and_bounded():
    drift = Augment(baseline=0.1)(_peaks(), torch.Generator().manual_seed(0)) - _peaks()
    assert drift.abs().max() <= 0.2 + 1e-6 and drift.abs().max() > 0.05
    assert drift.diff(dim=1).abs().max() < 0.01  # a quadratic, not noise


def test_augmentation_spikes_add_one_point_each():
    x = _peaks()
    added = Augment(spikes=1.0)(x, torch.Generator().manual_seed(0)) - x
    assert ((added > 0).sum(1) <= 1).all() and (added > 0).sum() > 50 and added.max() <= 1.0
    assert not Augment().active


def test_bfloat16_falls_back_to_float32_where_the_cpu_lacks_it(monkeypatch):
    from ramanid.training import trainer

    monkeypatch.setattr(trainer, "native_bfloat16", lambda device: False)
    X, y = blobs()
    with pytest.warns(RuntimeWarning, match="not native"):
        fallback = SpectrumClassifier(**{**TINY, "precision": "bfloat16"}).fit(X, y).predict_proba(X)
    # the fallback trains exactly as float32 does
    np.testing.assert_array_equal(
        fallback, SpectrumClassifier(**{**TINY, "precision": "float32"}).fit(X, y).predict_proba(X)
    )


def test_warmup_cosine_rises_over_the_warmup_then_anneals():
    model = torch.nn.Linear(4, 1)
    X, y = np.zeros((8, 4), np.float32), np.zeros((8, 1), np.float32)
    config = TrainConfig(epochs=20, lr=0.1, batch_size=8, patience=None, scheduler="warmup_cosine", warmup=5)
    history = train(model, lambda m, xb, yb: ((m(xb) - yb) ** 2).mean(), X, y, config)
    rates = [h["lr"] for h in history]  # the rate each epoch trained with
    np.testing.assert_allclose(rates[:5], [0.02, 0.04, 0.06, 0.08, 0.1])
    assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False)) and rates[-1] < 0.01 < rates[10] < 0.1


def test_rezero_cnn_trains_with_its_published_recipe():
    config = SpectrumClassifier(model="rezero_cnn")._config()
    assert (config.scheduler, config.clip_grad, config.batch_size, config.patience) == ("warmup_cosine", 1.0, 128, 15)
    X, y = blobs(90, 128)
    model = SpectrumClassifier(model="rezero_cnn", epochs=15, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9


def test_estimators_read_the_registry(monkeypatch):
    from ramanid.models import registry

    spec = registry.MODELS["mlp"]
    monkeypatch.setitem(
        registry.MODELS,
        "mlp_fast",
        registry.ModelSpec(
            "mlp_fast", spec.builder, "a test entry", defaults={"lr": 0.123, "patience": 7}, transductive=True
        ),
    )
    model = SpectrumClassifier(**{**TINY, "model": "mlp_fast"})
    config = model._config()
    assert config.lr == 0.123 and config.patience == 7 and model._predict_batch() is None
    assert SpectrumClassifier(**{**TINY, "model": "mlp_fast", "lr": 0.5})._config().lr == 0.5


def test_get_state_and_from_state_restore_a_model_that_can_fine_tune():
    X, y = blobs()
    labels = np.array(["a", "b", "c"])[y]
    model = SpectrumClassifier(**TINY).fit(X, labels)
    header, tensors = model.get_state()
    restored = SpectrumClassifier.from_state(header, tensors)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    # the label encoder comes back too, so a warm start (fine-tuning) on the restored model works
    restored.set_params(warm_start=True, epochs=2).fit(X[:30], labels[:30])
    assert list(restored.classes_) == ["a", "b", "c"]
    elements = ElementIdentifier(elements=["A", "B"], **TINY).fit(X, np.column_stack([y == 0, y == 1]).astype(int))
    again = ElementIdentifier.from_state(*elements.get_state())
    np.testing.assert_array_equal(again.predict(X), elements.predict(X))
    np.testing.assert_array_equal(again.thresholds_, elements.thresholds_)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda h: h["params"].update(nosuch=1), "unknown parameters \\['nosuch'\\]"),
        (lambda h: h.update(outputs=[10**9]), "do not fit 'mlp'"),
        (lambda h: h.update(n_features=10**9), "do not fit 'mlp'"),
        (lambda h: h["params"].update(model="transformer9000"), "unknown model"),
    ],
)
def test_from_state_refuses_a_header_that_does_not_fit_without_allocating(change, message):
    X, y = blobs()
    header, tensors = SpectrumClassifier(**TINY).fit(X, y).get_state()
    change(header)
    with pytest.raises(ModelError, match=message):
        SpectrumClassifier.from_state(header, tensors)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize("name", ["lr", "svm", "knn", "rf", "pca_lr", "gbm_pca", "vote", "auto", "library"])
def test_classical_baselines(name):
    X, y = blobs(90, 64)
    model = (
        classical_model(name, n_components=10).fit(X[::2], y[::2])
        if name == "pca_lr"
        else classical_model(name).fit(X[::2], y[::2])
    )
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
