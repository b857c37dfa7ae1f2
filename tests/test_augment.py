"""Tests of the spectrogram-domain training augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrelab.deep.augment import AUGMENTATIONS, Augmenter
from genrelab.deep.estimator import TorchClassifier
from genrelab.deep.loop import TrainSettings, fit, seeded_init
from genrelab.deep.nets import build_net

ALL_ON = {
    "time_shift": {"p": 1.0, "max_fraction": 0.3},
    "pitch_shift": {"p": 1.0, "max_bins": 3.0},
    "time_stretch": {"p": 1.0, "max_rate": 0.2},
    "noise": {"p": 1.0, "snr_db": [10, 20]},
}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: faster on the shared 2-core machines."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(shape=(8, 16, 40), seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("shape", [(8, 16, 40), (4, 2, 16, 40), (3, 13, 1)])
def test_shape_dtype_preserved_and_input_untouched(name, shape):
    x = batch(shape)
    x_before = x.clone()
    out = Augmenter({name: ALL_ON[name]})(x, generator=gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    assert torch.equal(x, x_before)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        None,
        {"time_shift": {"p": 1.0, "max_fraction": 0.0}},
        {"pitch_shift": {"p": 1.0, "max_bins": 0.0}},
        {"time_stretch": {"p": 1.0, "max_rate": 0.0}},
        {"noise": {"p": 1.0, "snr_db": float("inf")}},
        {name: {**opts, "p": 0.0} for name, opts in ALL_ON.items()},
        {name: None for name in ALL_ON},
        {name: False for name in ALL_ON},
    ],
)
def test_zero_amounts_are_exact_noops(settings):
    aug = Augmenter(settings)
    x = batch()
    assert torch.equal(aug(x, generator=gen()), x)
    assert not aug.active


def test_zero_amount_transforms_are_identity_even_when_run():
    """Bypass the 'inactive' shortcut: identity parameters must give exact copies."""
    x = batch()
    for name, cls in AUGMENTATIONS.items():
        kwargs = {"time_shift": {"max_fraction": 0.0}, "pitch_shift": {"max_bins": 0.0},
                  "time_stretch": {"max_rate": 0.0}, "noise": {"snr_db": float("inf")}}[name]
        assert torch.equal(cls(p=1.0, **kwargs)(x, gen()), x), name


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_enabled_augmentation_changes_batch_and_is_seeded(name):
    aug = Augmenter({name: ALL_ON[name]})
    x = batch()
    a, b, c = aug(x, generator=gen(1)), aug(x, generator=gen(1)), aug(x, generator=gen(2))
    assert not torch.equal(a, x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_probability_selects_a_fraction_of_slices():
    aug = Augmenter({"noise": {"p": 0.5, "snr_db": 10}})
    x = batch((400, 4, 8))
    changed = (aug(x, generator=gen()) != x).flatten(1).any(dim=1).float().mean()
    assert 0.4 < float(changed) < 0.6


def test_time_shift_roll_is_a_circular_shift_within_bounds():
    x = batch((16, 4, 20))
    out = Augmenter({"time_shift": {"p": 1.0, "max_fraction": 0.25, "mode": "roll"}})(x, generator=gen())
    for xi, oi in zip(x, out, strict=True):
        shifts = [s for s in range(-5, 6) if torch.equal(torch.roll(xi, s, dims=-1), oi)]
        assert shifts, "output is not a roll of the input by at most 5 frames"


def test_time_shift_pad_fills_with_slice_minimum():
    x = (torch.arange(20.0) + 1).repeat(16, 3, 1)  # (16, 3, 20): ramp over time, minimum 1

    def shifted(row, s):
        out = torch.full_like(row, 1.0)
        if s >= 0:
            out[..., s:] = row[..., : 20 - s]
        else:
            out[..., :s] = row[..., -s:]
        return out

    out = Augmenter({"time_shift": {"p": 1.0, "max_fraction": 0.5, "mode": "pad"}})(x, generator=gen(4))
    found = []
    for xi, oi in zip(x, out, strict=True):
        matches = [s for s in range(-10, 11) if torch.equal(shifted(xi, s), oi)]
        assert matches, "output is not the input shifted by at most 10 frames, padded with its minimum"
        found.append(matches[0])
    assert any(s != 0 for s in found)


def test_pitch_shift_moves_a_bright_bin_by_at_most_max_bins():
    x = torch.zeros(32, 1, 24, 10)
    x[..., 12, :] = 1.0
    out = Augmenter({"pitch_shift": {"p": 1.0, "max_bins": 2.0}})(x, generator=gen())
    centre = (out[:, 0, :, 0] * torch.arange(24.0)).sum(dim=1) / out[:, 0, :, 0].sum(dim=1)
    assert (centre - 12).abs().max() <= 2.0 + 1e-5
    assert (centre - 12).abs().max() > 0.5
    np.testing.assert_allclose(out.sum(dim=2).numpy(), 1.0, atol=1e-5)  # energy kept away from edges


def test_time_stretch_resamples_time_by_a_bounded_rate():
    t = torch.arange(40.0)
    x = t.repeat(8, 5, 1)  # (8, 5, 40)
    out = Augmenter({"time_stretch": {"p": 1.0, "max_rate": 0.2}})(x, generator=gen())
    # inside the source range, out[..., t] == rate * t
    rates = out[:, 0, 10] / 10.0
    assert ((rates >= 0.8 - 1e-6) & (rates <= 1.2 + 1e-6)).all()
    assert (rates - 1).abs().max() > 0.01
    for r, o in zip(rates, out[:, 0], strict=True):
        inside = t * r <= 39
        torch.testing.assert_close(o[inside], t[inside] * r, rtol=1e-4, atol=1e-4)
        assert (o[t * r >= 40] == 0).all()  # past the end (and one blended frame): slice minimum


def test_noise_has_the_requested_snr():
    x = batch((64, 16, 50)) * 3.0 + 5.0
    out = Augmenter({"noise": {"p": 1.0, "snr_db": 20}})(x, generator=gen())
    ratio = (out - x).flatten(1).std(dim=1) / x.flatten(1).std(dim=1)
    assert float(ratio.mean()) == pytest.approx(0.1, rel=0.05)


def test_channels_of_a_slice_get_the_same_geometric_transform():
    x = batch((6, 16, 30)).unsqueeze(1).repeat(1, 2, 1, 1)  # (6, 2, 16, 30), identical channels
    settings = {k: v for k, v in ALL_ON.items() if k != "noise"}
    out = Augmenter(settings)(x, generator=gen())
    assert torch.equal(out[:, 0], out[:, 1])
    assert not torch.equal(out, x)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"reverb": {}}, r"unknown augmentations \['reverb'\]; valid choices"),
        ({"noise": {"level": 1}}, r"noise: unknown options \['level'\]"),
        ({"noise": {"p": 1.5}}, r"noise\.p must be in \[0, 1\]"),
        ({"time_shift": {"max_fraction": -0.1}}, "time_shift.max_fraction"),
        ({"time_shift": {"mode": "wrap"}}, "time_shift.mode"),
        ({"pitch_shift": {"max_bins": -1}}, "pitch_shift.max_bins"),
        ({"time_stretch": {"max_rate": 1.0}}, "time_stretch.max_rate"),
        ({"noise": {"snr_db": [30, 10]}}, "noise.snr_db"),
        ({"noise": 0.5}, "noise must be a mapping"),
    ],
)
def test_invalid_settings_raise(settings, match):
    with pytest.raises(ValueError, match=match):
        Augmenter(settings)


def test_call_rejects_bad_batches():
    aug = Augmenter(ALL_ON)
    with pytest.raises(ValueError, match="expected a batch"):
        aug(torch.zeros(16, 40), generator=gen())
    with pytest.raises(ValueError, match="floating-point"):
        aug(torch.zeros(2, 16, 40, dtype=torch.long), generator=gen())


def test_loop_augments_training_batches_only():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(50, 16, 20)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    seen = []

    def spy(x, *, generator):
        seen.append(x.shape[0])
        return x

    model = seeded_init(lambda: build_net("crnn1d", n_classes=3, input_shape=(16, 20)), seed=0)
    settings = TrainSettings(max_epochs=2, batch_size=16, patience=None)
    fit(model, (S, y), (S, y), settings=settings, device="cpu", seed=0, augment=spy, progress=False)
    assert seen == [16, 16, 16, 2] * 2  # training batches of both epochs, no validation batches


def test_classifier_predictions_do_not_depend_on_augmentation_settings():
    """Augmentation is a training-time option only: the same weights predict identically."""
    rng = np.random.default_rng(0)
    S = rng.normal(size=(20, 16, 20)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    a = TorchClassifier("cnn", n_classes=3, input_shape=(16, 20), train={"max_epochs": 1}, device="cpu",
                        augment=ALL_ON).fit(S, y, progress=False)
    b = TorchClassifier("cnn", n_classes=3, input_shape=(16, 20), train={"max_epochs": 1}, device="cpu")
    b.model_.load_state_dict(a.model_.state_dict())
    b._fitted = True
    assert a.result_.augment_fraction > 0 and not b._augmenter.active  # a trained with augmentation, b has none
    np.testing.assert_array_equal(a.predict_proba(S), b.predict_proba(S))
    # and augmenting the inputs would have changed the predictions: the comparison above can tell
    x = a._augmenter(torch.from_numpy(S), generator=gen())
    assert not np.allclose(b.predict_proba(x.numpy()), b.predict_proba(S))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none is present")
def test_augment_on_cuda_with_cuda_generator():
    x = batch().cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    out = Augmenter(ALL_ON)(x, generator=g)
    assert out.device == x.device and out.shape == x.shape
