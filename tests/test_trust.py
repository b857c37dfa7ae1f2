"""Predictions a person can trust: model cards and out-of-distribution warnings.

Bundles are trained here with the library's own functions on a few short synthetic tracks
(see ``test_predict.build_tiny_bundle``), so no test depends on ``data/model``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_predict import SR, _music, build_tiny_bundle

from genrelab.evaluate import evaluate_bundle
from genrelab.models import load_bundle
from genrelab.models.card import (
    SYNTHETIC_WARNING,
    bundle_digest,
    card_command,
    evaluation_summary,
    load_card,
    provenance,
    write_card,
)
from genrelab.models.novelty import FrameSummary, TooFewTracksError, fit_novelty, load_novelty, signal_warnings
from genrelab.predict import predict_command, predict_file


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model, features = build_tiny_bundle(root)
    return root, model, features


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """30 tracks (enough for an out-of-distribution detector), MFCC frames, logistic regression."""
    root = tmp_path_factory.mktemp("medium")
    model, features = build_tiny_bundle(root, n_tracks_per_genre=10)
    return root, model, features


# ------------------------------------------------------------------------------------ cards
def test_the_train_stage_records_the_training_card(tiny):
    _, model, _ = tiny
    card = json.loads((model / "bundle.json").read_text())["card"]
    assert card["dataset"]["name"] == "synthetic" and card["dataset"]["synthetic"] is True
    assert card["dataset"]["tracks"] == {"train": 6, "valid": 3, "test": 3}
    assert card["dataset"]["slices"] == {"train": 18, "valid": 9, "test": 9}
    assert card["split"] == {"method": "grouped"} and card["genres"] == ["classical", "metal", "reggae"]
    assert (card["features"], card["variant"], card["model"], card["seeds"]) == ("mfcc", "normal", "logreg", [0])
    assert card["genrelab_version"]
    assert not {"date", "revision", "commit"} & set(card)  # nothing volatile in a DVC output


def test_identical_runs_give_byte_identical_cards_and_detectors(medium, tmp_path):
    from genrelab.models import train_bundle

    _, model, features = medium
    params = json.loads((model / "bundle.json").read_text())["params"]
    params.update(train={"seeds": [0]}, dataset={"name": "synthetic"}, split={"method": "grouped"})
    split = features.parent / "split.csv"
    train_bundle(params, features, tmp_path / "a", split_table=split, progress=False)
    train_bundle(params, features, tmp_path / "b", split_table=split, progress=False)
    for rel in ("bundle.json", "novelty/detector.json", "novelty/reference.npy", "novelty/projection.npy",
                "novelty/mean.npy", "novelty/scale.npy"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_the_evaluated_card_belongs_to_its_bundle_only(tiny, tmp_path):
    _, model, features = tiny
    bundle = load_bundle(model, trust=True)
    metrics, _, _ = evaluate_bundle(bundle, features, split_table=features.parent / "split.csv")
    summary = evaluation_summary(metrics, split="test")
    assert summary["split"] == "test" and summary["n_tracks"] == 3 and not summary["leaky"]
    assert summary["track_accuracy"] == metrics["track_mean"]["accuracy"]
    assert summary["track_accuracy_ci95"] == [metrics["track_mean"]["accuracy_ci95"]["low"],
                                              metrics["track_mean"]["accuracy_ci95"]["high"]]
    write_card(tmp_path / "card.json", model, summary)
    card = load_card(bundle, tmp_path / "card.json")
    assert card.evaluation == summary and card.synthetic and card.warning == SYNTHETIC_WARNING
    line = card.line()
    assert line.startswith("model: logreg on mfcc features (normal variant), 3 genres, trained on SYNTHETIC data")
    assert "test accuracy" in line and "on 3 tracks" in line
    # another bundle (one changed byte) does not borrow the card's metrics
    other = tmp_path / "other"
    shutil.copytree(model, other)
    meta = json.loads((other / "bundle.json").read_text())
    meta["seeds"] = [0]
    (other / "bundle.json").write_text(json.dumps(meta, indent=2))
    assert bundle_digest(other) != bundle_digest(model)
    assert load_card(load_bundle(other, trust=True), tmp_path / "card.json").evaluation is None
    assert bundle_digest(shutil.copytree(model, tmp_path / "copy")) == bundle_digest(model)  # where it lies: no matter


def test_leaky_metrics_are_marked_in_the_card():
    summary = evaluation_summary({"leaky": {"track_mean": {"accuracy": 0.9}, "n_tracks": 5}}, split="test")
    assert summary == {"split": "test", "leaky": True, "n_tracks": 5, "track_accuracy": 0.9}


def test_a_bundle_without_a_card_still_loads_and_says_so(tiny, tmp_path, capsys):
    _, model, _ = tiny
    old = shutil.copytree(model, tmp_path / "old")
    meta = json.loads((old / "bundle.json").read_text())
    del meta["card"], meta["novelty"]
    shutil.rmtree(old / "novelty", ignore_errors=True)
    (old / "bundle.json").write_text(json.dumps(meta))
    bundle = load_bundle(old, trust=True)
    card = load_card(bundle)
    assert card.missing and not card.synthetic and "no model card" in card.warning
    sf.write(tmp_path / "a.wav", _music(3.0), SR)
    assert predict_file(bundle, tmp_path / "a.wav").ok
    assert predict_command([str(tmp_path / "a.wav"), "--model", str(old), "--trust", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model card missing: logreg with 3 genres; this bundle has no model card")
    assert "no out-of-distribution check (this bundle was made before" in out[1]
    assert card_command([str(old)]) == 0
    assert "card      missing" in capsys.readouterr().out


def test_card_command_prints_the_whole_card_without_trust(tiny, tmp_path, capsys):
    _, model, features = tiny
    elsewhere = shutil.copytree(model, tmp_path / "elsewhere")  # outside data/: loading its models needs --trust
    bundle = load_bundle(elsewhere, trust=True)
    metrics, _, _ = evaluate_bundle(bundle, features, split_table=features.parent / "split.csv")
    write_card(tmp_path / "card.json", elsewhere, evaluation_summary(metrics, split="test"))
    assert card_command([str(elsewhere), "--card", str(tmp_path / "card.json")]) == 0
    text = capsys.readouterr().out
    for fact in ("model     logreg (seeds 0)", "features  mfcc, variant normal", "dataset   synthetic:",
                 "tracks    train 6, valid 3, test 3", "split     method=grouped", "genres    classical, metal, reggae",
                 "test      test accuracy", "revision  genrelab", "WARNING   trained on genrelab's built-in SYNTHETIC"):
        assert fact in text, fact
    assert card_command([str(elsewhere), "--json", "--card", str(tmp_path / "card.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["synthetic"] and doc["evaluation"]["n_tracks"] == 3 and doc["training"]["model"] == "logreg"
    assert card_command([str(tmp_path)]) == 2
    assert "not a model bundle" in capsys.readouterr().err


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_revision_and_date_come_from_the_commit_that_recorded_the_card(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "repo"
    (repo / "data" / "eval").mkdir(parents=True)
    card = repo / "data" / "eval" / "card.json"
    card.write_text('{"bundle_digest": "sha256:0"}\n')
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "dvc.yaml", "dvc.lock")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline")
    p = provenance(card)
    assert p["how"] == "working tree" and p["revision"].endswith("(not committed yet)")
    md5 = hashlib.md5(card.read_bytes()).hexdigest()
    (repo / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  evaluate:\n    outs:\n    - path: data/eval/card.json\n"
                                   f"      md5: {md5}\n")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "results")
    recorded = _git(repo, "log", "-1", "--format=%h %cI")
    p = provenance(card)
    assert p["how"] == "committed" and f"{p['revision']} {p['date']}" == recorded
    assert provenance(None)["how"] == "unknown"


# ---------------------------------------------------------------------------- novelty
def _clusters(rng, n_tracks, *, shift=0.0, d=12, slices=6):
    centres = rng.normal(0, 1, (n_tracks, d)) + shift
    X = np.concatenate([c + 0.3 * rng.normal(0, 1, (slices, d)) for c in centres])
    return X, np.repeat([f"t{shift}_{i}" for i in range(n_tracks)], slices)


def test_detector_flags_what_lies_off_the_training_data(tmp_path):
    rng = np.random.default_rng(0)
    X, tid = _clusters(rng, 60)
    Xv, tv = _clusters(rng, 30)
    det = fit_novelty(X, tid, valid=(Xv, None, tv))
    assert det.calibration == "valid-split tracks" and det.n_calibration == 30
    inside = [det.assess(_clusters(rng, 1)[0]).flagged for _ in range(40)]
    assert sum(inside) <= 2  # at the 99th percentile of held-out tracks, few in-domain tracks are flagged
    far = det.assess(_clusters(rng, 1, shift=4.0)[0])
    assert far.flagged and far.ratio > 1 and far.fraction == 1.0 and "unlike anything" in far.message()
    # off the training data's correlations, though within every feature's range
    corr = rng.normal(0, 1, (600, 1)) @ np.ones((1, 12)) + 0.05 * rng.normal(0, 1, (600, 12))
    det2 = fit_novelty(corr, np.repeat(np.arange(100), 6))
    anti = np.tile(np.r_[1.0, -1.0], 6)[None] * np.ones((6, 1))
    assert det2.assess(anti).flagged and not det2.assess(corr[:6] * 0.5).flagged
    det.save(tmp_path / "novelty")
    back = load_novelty(tmp_path)  # npy + json only: loads with allow_pickle=False
    np.testing.assert_array_equal(back.scores(Xv), det.scores(Xv))
    assert load_novelty(tmp_path / "nowhere") is None


def test_too_few_tracks_give_no_detector():
    rng = np.random.default_rng(1)
    X, tid = _clusters(rng, 8)
    with pytest.raises(TooFewTracksError, match="8 training tracks"):
        fit_novelty(X, tid)
    with pytest.raises(ValueError, match="quantile"):
        fit_novelty(X, tid, quantile=1.0)


def test_frame_summary_tells_speech_rhythm_from_steady_sound():
    summary = FrameSummary.for_features({"name": "mel", "hop_length": 512}, 22050)
    t = np.arange(130) * summary.hop_s
    steady = np.full((1, 8, 130), -20.0)
    syllables = -35.0 + 15.0 * np.sin(2 * np.pi * 4.5 * t)[None, None, :] * np.ones((1, 8, 1))
    a, b = summary(steady), summary(syllables)
    assert a.shape == (1, 7) and b[0, 6] > 0.9 and b[0, 4] == pytest.approx(15 / np.sqrt(2), rel=0.02)
    assert b[0, 0] > a[0, 0] == 0 and 0.4 < b[0, 5] < 0.8
    two = summary(np.stack([syllables[:, None][:, 0]] * 2, axis=1))
    assert two.shape == (1, 14)
    assert FrameSummary.for_features({"name": "classic"}, 22050) is None
    mfcc = FrameSummary.for_features({"name": "mfcc", "n_mels": 64, "hop_length": 256}, 16000)
    assert mfcc.energy == "c0" and mfcc.db_per_unit == pytest.approx(1 / 8) and mfcc.hop_s == 0.016


@pytest.mark.parametrize("make, expected", [
    (lambda t, rng: 0.4 + 0.01 * np.sin(2 * np.pi * 440 * t), "DC offset"),
    (lambda t, rng: 0.005 * np.sin(2 * np.pi * 440 * t), "very low level: peak -46 dBFS"),
    (lambda t, rng: np.clip(rng.normal(0, 1, t.size), -0.5, 0.5) / 0.5, "clipped"),
    (lambda t, rng: rng.uniform(-0.5, 0.5, t.size), "noise-like"),
])
def test_signal_warnings(make, expected):
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    warnings = signal_warnings(make(t, rng), SR)
    assert any(w.startswith(expected) for w in warnings), warnings


def test_ordinary_music_gets_no_signal_warning():
    assert signal_warnings(_music(4.0, genre="reggae"), SR) == []
    assert signal_warnings(np.zeros(0), SR) == []


def test_predictions_carry_the_warnings(medium, tmp_path):
    root, model, features = medium
    bundle = load_bundle(model, trust=True)
    assert bundle.novelty is not None and bundle.novelty.frames is not None
    assert bundle.novelty.calibration == "training tracks, each against the others"  # 3 valid tracks: too few
    from genrelab.features import load_feature_split

    test = load_feature_split(features, "test", split_table=features.parent / "split.csv")
    tid = test.meta["track_id"].iloc[0]  # a track the model never saw
    own = predict_file(bundle, root / "dataset" / "audio" / tid.split(".")[0] / f"{tid}.flac")
    assert own.warnings == [] and not own.novelty["flagged"]
    t = np.arange(4 * SR) / SR
    bursts = np.random.default_rng(0).uniform(-0.5, 0.5, t.size) * (np.sin(2 * np.pi * 4 * t) > 0)  # 4 Hz noise
    sf.write(tmp_path / "bursts.wav", bursts, SR)
    noise = predict_file(bundle, tmp_path / "bursts.wav")
    assert noise.ok and noise.novelty["flagged"] and noise.novelty["ratio"] > 1
    assert [w.split(":")[0].split(" (")[0] for w in noise.warnings] == ["noise-like",
                                                                        "unlike anything the model was trained on"]
    d = noise.to_dict()
    assert d["warnings"] == noise.warnings and d["novelty"]["flagged"] is True
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), SR)  # clean, but unlike any training slice
    assert predict_file(bundle, tmp_path / "tone.wav").warnings[0].startswith("unlike anything the model was")
