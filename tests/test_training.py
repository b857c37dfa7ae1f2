"""Training: ``genrelab.models.train.train_bundle`` (the train stage) and the deep training loop
``genrelab.deep.loop`` (seeds, early stopping, non-finite losses).

Tiny data only: the bundle tests reuse the synthetic MFCC features of ``test_predict.build_tiny_bundle``;
the loop tests train on random spectrograms with a class-dependent band (``test_deep.band_data``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_deep import N_CLASSES, _one_thread, band_data  # noqa: F401 (_one_thread: autouse fixture)
from test_predict import GENRES, HPSS, SLICE_S, SR, build_tiny_bundle

from genrelab.deep import loop
from genrelab.deep.estimator import TorchClassifier
from genrelab.deep.loop import TrainSettings, fit, predict_proba
from genrelab.deep.nets import build_net
from genrelab.features import load_feature_split
from genrelab.models import load_bundle, train_bundle

# ------------------------------------------------------------------------------------------
# train_bundle


def _params(model: dict, seeds: list[int]) -> dict:
    """The composed parameters of test_predict.build_tiny_bundle's features, another model and seeds."""
    return {
        "features": {"name": "mfcc", "n_mfcc": 13, "n_mels": 64, "n_fft": 1024, "hop_length": 512, "deltas": False,
                     "stats": ["mean", "std"]},
        "variant": {"name": "normal", "separator": "none", "channels": [["mix"]]},
        "slicing": {"length_s": SLICE_S, "overlap": 0.0}, "audio": {"sample_rate": SR},
        "separation": {"hpss": HPSS}, "model": model, "train": {"seeds": seeds},
        "dataset": {"name": "synthetic", "n_tracks_per_genre": 4, "duration_s": 3.0}, "split": {"method": "grouped"},
    }


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The tiny features folder and its split table (one valid and one test track per genre)."""
    root = tmp_path_factory.mktemp("training")
    _, features = build_tiny_bundle(root)
    return features, pd.read_csv(root / "split.csv", dtype={"track_id": str})


MLP = {"name": "mlp", "hidden": [16], "max_iter": 30}  # seeded weights and batches: seeds matter


def test_same_seed_same_model_files_and_other_seed_other_model(features, tmp_path):
    folder, split = features
    for name, seeds in (("a", [0]), ("b", [0]), ("c", [1])):
        train_bundle(_params(MLP, seeds), folder, tmp_path / name, split_table=split, progress=False)
    files = {name: {p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
                    for p in sorted((tmp_path / name).rglob("*")) if p.is_file() and p.suffix != ".json"}
             for name in "abc"}
    assert files["a"] and files["a"] == files["b"]          # byte-identical model files for one seed
    test = load_feature_split(folder, "test", split_table=split)
    pa, pc = (load_bundle(tmp_path / n, trust=True).predict_proba(test) for n in "ac")
    assert not np.allclose(pa, pc)                          # the seed reaches the model


def test_each_seed_is_a_member_and_the_bundle_averages_them(features, tmp_path):
    folder, split = features
    report = train_bundle(_params(MLP, [0, 1, 2]), folder, tmp_path / "m", split_table=split, progress=False)
    assert report["n_train_tracks"] == 2 * len(GENRES)
    meta = json.loads((tmp_path / "m" / "bundle.json").read_text())
    assert [(m["path"], m["seed"]) for m in meta["members"]] == [("seed_0", 0), ("seed_1", 1), ("seed_2", 2)]
    bundle = load_bundle(tmp_path / "m", trust=True)
    test = load_feature_split(folder, "test", split_table=split)
    each = [m.predict_proba(test) for m in bundle.members().values()]
    assert len(each) == 3 and not np.allclose(each[0], each[1])
    np.testing.assert_allclose(bundle.predict_proba(test), np.mean(each, axis=0))


# ------------------------------------------------------------------------------------------
# the deep training loop


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
    val_loss, val_acc = loop._evaluate(
        model, loop.IndexBatchDataset(S_val, y_val), batch_size=64, device=torch.device("cpu")
    )
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


@pytest.mark.parametrize("where", ["train", "valid"])
def test_non_finite_loss_fails_the_run(where):
    """A NaN loss stops training with a clear error instead of returning NaN weights."""
    S, y = band_data(64, seed=0)
    S_bad = S.copy()
    S_bad[3, 0, 0] = np.nan
    train, valid = ((S_bad, y), (S, y)) if where == "train" else ((S, y), (S_bad, y))
    model = loop.seeded_init(lambda: build_net("cnn", n_classes=N_CLASSES, input_shape=(32, 32)), seed=0)
    with pytest.raises(
        loop.NonFiniteLossError, match=f"epoch 1: the {'training' if where == 'train' else 'validation'} loss"
    ):
        fit(model, train, valid, settings=TrainSettings(max_epochs=3, batch_size=16), device="cpu", progress=False)


def test_restored_best_weights_are_those_the_classifier_predicts_with():
    """TorchClassifier hands back the best epoch's weights: its predictions score the best val_loss."""
    S, y = band_data(128, seed=0)
    S_val, _ = band_data(64, seed=1)
    y_val = np.random.default_rng(5).integers(0, N_CLASSES, 64)   # unrelated labels: val loss soon rises
    clf = TorchClassifier("cnn", n_classes=N_CLASSES, input_shape=(32, 32), device="cpu", seed=0,
                          train={"max_epochs": 12, "patience": 2, "batch_size": 32, "lr": 3e-3})
    clf.fit(S, y, S_valid=S_val, y_valid=y_val, progress=False)
    result = clf.result_
    assert result.best_epoch < result.epochs_run
    proba = clf.predict_proba(S_val)
    nll = -np.mean(np.log(proba[np.arange(len(y_val)), y_val]))
    assert nll == pytest.approx(result.best_score, rel=1e-4)
    assert nll != pytest.approx(result.history[-1]["val_loss"], rel=1e-4)


# ------------------------------------------------------------------------------------------
# the allocator

_FAULTS_PER_BATCH = """
import resource, sys
import numpy as np, torch
from genrelab.deep import loop
from genrelab.deep.nets import build_net
if sys.argv[1] == "defaults":
    loop.keep_freed_memory = lambda: False  # leave glibc's allocator as it is
torch.set_num_threads(1)
rng = np.random.default_rng(0)
S, y = rng.standard_normal((128, 96, 130)).astype(np.float32), rng.integers(0, 4, 128)
model = loop.seeded_init(lambda: build_net("cnn", n_classes=4, input_shape=(96, 130)), seed=0)
settings = loop.TrainSettings(batch_size=32, max_epochs=1, patience=None)
def faults_per_batch():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    loop.fit(model, (S, y), settings=settings, device="cpu", progress=False)
    loop.predict_proba(model, S, batch_size=32, device="cpu")
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 8  # 4 training, 4 prediction batches
faults_per_batch()  # the heap grows to its peak once
print(" ".join(str(faults_per_batch()) for _ in range(3)))
"""


def test_training_and_prediction_batches_reuse_freed_memory():
    """With glibc's defaults each batch's activations (MB) are unmapped when freed and faulted in
    again: CPU training was 1.4x slower and its speed varied from run to run."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the C library is not glibc: its allocator is left as it is")

    def faults(mode: str) -> list[int]:
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_BATCH, mode], capture_output=True, text=True,
                             check=True).stdout
        return [int(v) for v in out.split()]

    defaults, ours = faults("defaults"), faults("ours")
    assert max(defaults) >= 200, f"glibc's defaults faulted {defaults} pages per batch: the check cannot tell"
    assert min(ours) <= 20, f"fit/predict_proba faulted {ours} pages per batch (glibc's defaults: {defaults})"
