"""Tests of the torch networks, the training loop, TorchClassifier and the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrelab.deep import loop
from genrelab.deep.estimator import TorchClassifier
from genrelab.deep.loop import TrainSettings, fit, predict_proba
from genrelab.deep.nets import NETS, build_net, net_hparams
from genrelab.deep.registry import DEEP_MODELS, load_deep_model, make_deep_model

N_CLASSES = 4
TORCH_NETS = sorted(NETS)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: faster on the shared 2-core machines, and a fixed thread count
    is what CPU bit-determinism is defined for."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def band_data(n: int, *, seed: int, n_bins: int = 32, n_frames: int = 32, two: bool = False):
    """Random spectrograms with a class-dependent bright band of bins (trivially separable).

    Returns S [shape=(n, n_bins, n_frames)] (or (n, 2, n_bins, n_frames) when ``two``:
    channel 1 is the frequency-flipped channel 0, so both branches see the band) and y.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    S = rng.normal(size=(n, n_bins, n_frames)).astype(np.float32)
    width = n_bins // N_CLASSES
    for i, c in enumerate(y):
        S[i, c * width : (c + 1) * width] += 1.5
    if two:
        S = np.ascontiguousarray(np.stack([S, S[:, ::-1]], axis=1))
    return S, y.astype(np.int64)


def shape_for(net: str, n_bins: int, n_frames: int) -> tuple[int, ...]:
    return (2, n_bins, n_frames) if net == "two_branch" else (n_bins, n_frames)


FAST = {"max_epochs": 4, "batch_size": 32, "lr": 3e-3, "patience": None}


# ------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("net", TORCH_NETS)
@pytest.mark.parametrize(("n_bins", "n_frames"), [(13, 1), (20, 43), (64, 7), (64, 130)])
def test_forward_output_shape(net, n_bins, n_frames):
    model = build_net(net, n_classes=N_CLASSES, input_shape=shape_for(net, n_bins, 43)).eval()
    with torch.no_grad():
        out = model(torch.randn(3, *shape_for(net, n_bins, n_frames)))
    assert out.shape == (3, N_CLASSES)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("net", TORCH_NETS)
def test_forward_rejects_wrong_bins(net):
    model = build_net(net, n_classes=N_CLASSES, input_shape=shape_for(net, 32, 20))
    with pytest.raises(ValueError, match="expected input of shape"):
        model(torch.randn(2, *shape_for(net, 31, 20)))


def test_build_net_validates_names_and_shapes():
    with pytest.raises(ValueError, match="valid choices"):
        build_net("transformer", n_classes=4, input_shape=(32, 20))
    with pytest.raises(ValueError, match="unknown hyperparameters.*'chanels'.*valid"):
        build_net("cnn", n_classes=4, input_shape=(32, 20), params={"chanels": [8]})
    with pytest.raises(ValueError, match="input_shape"):
        build_net("cnn", n_classes=4, input_shape=(2, 32, 20))
    with pytest.raises(ValueError, match="input_shape"):
        build_net("two_branch", n_classes=4, input_shape=(32, 20))
    with pytest.raises(ValueError, match="rnn must be one of"):
        build_net("rnn", n_classes=4, input_shape=(32, 20), params={"rnn": "elman"})
    with pytest.raises(ValueError, match="dropout"):
        build_net("cnn", n_classes=4, input_shape=(32, 20), params={"dropout": 1.0})
    with pytest.raises(ValueError, match="percussive: unknown settings"):
        build_net("two_branch", n_classes=4, input_shape=(2, 32, 20), params={"percussive": {"lstm": 1}})
    assert "channels" in net_hparams("cnn")


# ------------------------------------------------------------------------------------------
# training loop


@pytest.mark.parametrize("net", TORCH_NETS)
def test_loop_learns_separable_task(net):
    two = net == "two_branch"
    S, y = band_data(256, seed=0, two=two)
    S_val, y_val = band_data(128, seed=1, two=two)
    clf = TorchClassifier(net, n_classes=N_CLASSES, input_shape=S.shape[1:], train=FAST, device="cpu", seed=0)
    clf.fit(S, y, S_valid=S_val, y_valid=y_val, progress=False)
    assert (clf.predict(S_val) == y_val).mean() > 0.9
    result = clf.result_
    assert result.epochs_run == len(result.history) == FAST["max_epochs"]
    assert result.slices_per_second > 0
    assert 0.0 <= result.data_fraction < 1.0
    assert result.device == "cpu"


def test_fit_is_deterministic_and_leaves_global_rng_alone():
    S, y = band_data(96, seed=0)
    settings = TrainSettings(max_epochs=2, batch_size=16)

    def run(seed):
        model = loop.seeded_init(lambda: build_net("crnn2d", n_classes=N_CLASSES, input_shape=(32, 32)), seed=seed)
        fit(model, (S, y), (S, y), settings=settings, device="cpu", seed=seed, progress=False)
        return model.state_dict(), predict_proba(model, S, device="cpu")

    torch.manual_seed(123)
    state_before = torch.get_rng_state()
    w1, p1 = run(7)
    assert torch.equal(torch.get_rng_state(), state_before), "fit() changed the global torch RNG"
    w2, p2 = run(7)
    w3, p3 = run(8)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    np.testing.assert_array_equal(p1, p2)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_dropout_is_seeded_too():
    """Two fits with the same seed agree even with heavy dropout (dropout uses fork_rng)."""
    S, y = band_data(64, seed=0)
    preds = []
    for _ in range(2):
        clf = TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32), net_params={"dropout": 0.8},
                              train={"max_epochs": 1, "batch_size": 16}, device="cpu", seed=3)
        preds.append(clf.fit(S, y, progress=False).predict_proba(S))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_early_stopping_stops_and_restores_best():
    S, y = band_data(128, seed=0)
    S_val, y_val = band_data(64, seed=1)
    # val_accuracy can never beat the first epoch by min_delta=2, so training stops after
    # epoch 1 + patience and must hand back the weights of epoch 1.
    settings = TrainSettings(max_epochs=20, patience=2, monitor="val_accuracy", min_delta=2.0, batch_size=32, lr=3e-3)
    model = loop.seeded_init(lambda: build_net("cnn", n_classes=N_CLASSES, input_shape=(32, 32)), seed=0)
    result = fit(model, (S, y), (S_val, y_val), settings=settings, device="cpu", seed=0, progress=False)
    assert result.stopped_early
    assert result.best_epoch == 1
    assert result.epochs_run == 3
    val_loss, val_acc = loop._evaluate(model, loop.IndexBatchDataset(S_val, y_val), batch_size=64, device=torch.device("cpu"))
    assert val_loss == pytest.approx(result.history[0]["val_loss"], rel=1e-6)
    assert val_loss != pytest.approx(result.history[-1]["val_loss"], rel=1e-6)


def test_early_stopping_on_val_loss_with_noise_labels():
    """Validation labels unrelated to the inputs: the val loss stops improving, training stops."""
    S, y = band_data(128, seed=0)
    S_val, _ = band_data(64, seed=1)
    y_val = np.random.default_rng(5).integers(0, N_CLASSES, 64)
    settings = TrainSettings(max_epochs=30, patience=2, batch_size=32, lr=3e-3)
    model = loop.seeded_init(lambda: build_net("crnn1d", n_classes=N_CLASSES, input_shape=(32, 32)), seed=0)
    result = fit(model, (S, y), (S_val, y_val), settings=settings, device="cpu", seed=0, progress=False)
    assert result.stopped_early and result.epochs_run < 30
    losses = [h["val_loss"] for h in result.history]
    assert result.best_score == min(losses) == losses[result.best_epoch - 1]


def test_fit_reads_memmap_in_batches(tmp_path):
    S, y = band_data(64, seed=0)
    np.save(tmp_path / "S.npy", S)
    S_mm = np.load(tmp_path / "S.npy", mmap_mode="r")
    clf = TorchClassifier("crnn1d", n_classes=N_CLASSES, input_shape=(32, 32), train={"max_epochs": 1}, device="cpu")
    clf.fit(S_mm, y, progress=False)
    proba = clf.predict_proba(S_mm)
    assert proba.shape == (64, N_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba, clf.predict_proba(S))


@pytest.mark.parametrize("where", ["train", "valid"])
def test_non_finite_loss_fails_the_run(where):
    """A NaN loss stops training with a clear error instead of returning NaN weights."""
    S, y = band_data(64, seed=0)
    S_bad = S.copy()
    S_bad[3, 0, 0] = np.nan
    train, valid = ((S_bad, y), (S, y)) if where == "train" else ((S, y), (S_bad, y))
    model = loop.seeded_init(lambda: build_net("cnn", n_classes=N_CLASSES, input_shape=(32, 32)), seed=0)
    with pytest.raises(loop.NonFiniteLossError, match=f"epoch 1: the {'training' if where == 'train' else 'validation'} loss"):
        fit(model, train, valid, settings=TrainSettings(max_epochs=3, batch_size=16), device="cpu", progress=False)


def test_batches_come_from_torch_aligned_buffers(tmp_path):
    S, y = band_data(40, seed=0)
    np.save(tmp_path / "S.npy", S)
    data = loop.IndexBatchDataset(np.load(tmp_path / "S.npy", mmap_mode="r"), y)
    x, yy = data[np.array([7, 2, 30])]
    assert x.data_ptr() % 64 == 0 and x.is_contiguous()
    np.testing.assert_array_equal(x.numpy(), S[[2, 7, 30]])
    np.testing.assert_array_equal(yy.numpy(), y[[2, 7, 30]])
    x, _ = data[slice(5, 9)]
    np.testing.assert_array_equal(x.numpy(), S[5:9])
    with pytest.raises(IndexError):
        data[np.array([0, 40])]


def test_fit_rejects_bad_labels_and_shapes():
    S, y = band_data(32, seed=0)
    clf = TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32), train={"max_epochs": 1}, device="cpu")
    with pytest.raises(ValueError, match="labels must be in"):
        clf.fit(S, np.full(32, N_CLASSES), progress=False)
    with pytest.raises(ValueError, match="y must have shape"):
        clf.fit(S, y[:-1], progress=False)
    with pytest.raises(ValueError, match="S must have shape"):
        clf.fit(S[:, :16], y, progress=False)
    with pytest.raises(ValueError, match="both S_valid and y_valid"):
        clf.fit(S, y, S_valid=S, progress=False)


def test_predict_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    clf = TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32))
    with pytest.raises(NotFittedError):
        clf.predict_proba(np.zeros((2, 32, 32), np.float32))


# ------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0.0), ("lr", -1e-3), ("lr", "fast"), ("lr", float("nan")), ("batch_size", 0),
        ("batch_size", 1.5), ("batch_size", True), ("max_epochs", 0), ("patience", 0),
        ("weight_decay", -1.0), ("min_delta", -0.1), ("grad_clip", 0.0), ("monitor", "accuracy"),
        ("eval_batch_size", -2),
    ],
)
def test_invalid_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"TrainSettings\.{field}\b"):
        TrainSettings(**{field: value})
    with pytest.raises(ValueError, match=rf"TrainSettings\.{field}\b"):
        TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32), train={field: value})


def test_settings_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown training settings \['epochs'\].*max_epochs"):
        TrainSettings.from_dict({"epochs": 3})
    assert TrainSettings.from_dict({"lr": 1, "patience": None}).lr == 1.0


def test_device_validation():
    assert loop.resolve_device("cpu").type == "cpu"
    assert loop.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        loop.resolve_device("tpu:banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            loop.resolve_device("cuda")


# ------------------------------------------------------------------------------------------
# persistence


@pytest.mark.parametrize("net", ["cnn", "two_branch"])
def test_save_load_round_trip_weights_only(net, tmp_path, monkeypatch):
    two = net == "two_branch"
    S, y = band_data(64, seed=0, two=two)
    clf = TorchClassifier(net, n_classes=N_CLASSES, input_shape=S.shape[1:], net_params={"dropout": 0.1},
                          train={"max_epochs": 1, "batch_size": 16}, device="cpu", seed=2,
                          augment={"time_shift": {"p": 0.5}})
    clf.fit(S, y, progress=False)
    clf.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "weights.pt"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["net"] == net and config["result"]["epochs_run"] == 1

    calls = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy_load)
    loaded = load_deep_model(tmp_path / "model", device="cpu")
    assert calls == [True]
    assert isinstance(loaded, TorchClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(S), clf.predict_proba(S))
    assert loaded.result_.epochs_run == 1


def test_load_rejects_other_folders(tmp_path):
    (tmp_path / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="does not hold"):
        TorchClassifier.load(tmp_path)
    with pytest.raises(ValueError, match="does not hold a saved deep model"):
        load_deep_model(tmp_path)


# ------------------------------------------------------------------------------------------
# registry


def test_registry_lists_choices_on_unknown_name():
    assert set(DEEP_MODELS) == {"cnn", "crnn1d", "crnn2d", "rnn", "two_branch", "hmm"}
    with pytest.raises(ValueError, match=r"valid choices: \['cnn', 'crnn1d', 'crnn2d', 'hmm', 'rnn', 'two_branch'\]"):
        make_deep_model("resnet", {}, n_classes=4, input_shape=(32, 32), seed=0, device="cpu")


@pytest.mark.parametrize("name", sorted(DEEP_MODELS))
def test_registry_builds_every_model(name):
    params = {"name": name}
    if name != "hmm":
        params |= {"net": {}, "train": {"max_epochs": 2}, "augment": None}
    else:
        params |= {"n_components": 2}
    model = make_deep_model(name, params, n_classes=4, input_shape=shape_for(name, 32, 20), seed=1, device="cpu")
    assert hasattr(model, "fit") and hasattr(model, "predict_proba") and hasattr(model, "save")


def test_registry_rejects_unknown_sections_and_name_mismatch():
    with pytest.raises(ValueError, match=r"unknown config sections \['optim'\]"):
        make_deep_model("cnn", {"optim": {}}, n_classes=4, input_shape=(32, 20), seed=0)
    with pytest.raises(ValueError, match="not 'cnn'"):
        make_deep_model("cnn", {"name": "rnn"}, n_classes=4, input_shape=(32, 20), seed=0)
    with pytest.raises(ValueError, match=r"hmm: unknown options \['n_states'\]"):
        make_deep_model("hmm", {"n_states": 3}, n_classes=4, input_shape=(13, 20), seed=0)


# ------------------------------------------------------------------------------------------
# GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none is present")
def test_fit_on_cuda():
    S, y = band_data(128, seed=0)
    clf = TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32), train=FAST, device="cuda",
                          augment={"noise": {"p": 0.5}, "time_shift": {"p": 0.5}})
    clf.fit(S, y, S_valid=S, y_valid=y, progress=False)
    assert clf.result_.device.startswith("cuda")
    assert (clf.predict(S) == y).mean() > 0.9
