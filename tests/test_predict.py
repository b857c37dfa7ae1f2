"""``genrelab predict``: any audio file through the same steps as the training data.

A tiny bundle is trained here with the library's own functions (synthetic tracks, MFCC,
logistic regression), so the tests never depend on ``data/model``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import SHARED

from genrelab.config import ConfigError
from genrelab.features import SliceSettings, extract_dataset, load_feature_split, make_extractor
from genrelab.models import Bundle, UntrustedBundleError, load_bundle, train_bundle
from genrelab.predict import AudioInputError, predict_command, predict_file, predict_paths
from genrelab.separation import separate_dataset
from genrelab.store import Store
from genrelab.synth import SynthSettings, generate_dataset, render_track
from genrelab.variants import VariantSettings

GENRES = ("classical", "metal", "reggae")
SR = 22050
SLICE_S = 1.0
HPSS = {"kernel_size": 31, "margin": 1.0, "n_fft": 2048, "hop_length": 512}


def build_tiny_bundle(root: Path, *, variant: dict | None = None, n_tracks_per_genre: int = 4) -> tuple[Path, Path]:
    """Render 4 (or ``n_tracks_per_genre``) tracks of 3 s per genre, extract MFCC statistics per 1 s
    slice, fit a logreg; one track per genre is valid, one test, the others train.

    Returns the bundle folder and the features folder.
    """
    variant = variant or {"name": "normal", "separator": "none", "channels": [["mix"]]}
    index = generate_dataset(root / "dataset", SynthSettings(n_tracks_per_genre=n_tracks_per_genre, duration_s=3.0,
                                                             genres=GENRES, tracks_per_artist=1),
                             progress=False, write_stems=False)
    per_genre = ["train"] * (n_tracks_per_genre - 2) + ["valid", "test"]
    split = index.assign(split=np.tile(per_genre, len(GENRES)), method="grouped")
    params = {
        "features": {"name": "mfcc", "n_mfcc": 13, "n_mels": 64, "n_fft": 1024, "hop_length": 512, "deltas": False,
                     "stats": ["mean", "std"]},
        "variant": variant, "slicing": {"length_s": SLICE_S, "overlap": 0.0}, "audio": {"sample_rate": SR},
        "separation": {"hpss": HPSS}, "model": {"name": "logreg", "C": 1.0}, "train": {"seeds": [0]},
        "dataset": {"name": "synthetic", "n_tracks_per_genre": 4, "duration_s": 3.0}, "split": {"method": "grouped"},
    }
    v = VariantSettings(**{**variant, "channels": tuple(map(tuple, variant["channels"]))})
    store = Store(root / "store")
    if v.separator == "hpss":
        separate_dataset(index, separator="hpss", settings=HPSS, dataset_dir=root / "dataset", store=store,
                         sample_rate=SR, progress=False)
    extract_dataset(index, extractor=make_extractor(params["features"]), variant=v,
                    slicing=SliceSettings(SLICE_S), sample_rate=SR, dataset_dir=root / "dataset",
                    out_dir=root / "features", store=store, separation=params["separation"], progress=False)
    split.to_csv(root / "split.csv", index=False)
    train_bundle(params, root / "features", root / "model", split_table=root / "split.csv", progress=False)
    return root / "model", root / "features"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Bundle, Path]:
    root = tmp_path_factory.mktemp("tiny")
    model, features = build_tiny_bundle(root)
    return load_bundle(model, trust=True), root


def _music(seconds: float, *, genre: str = "metal", index: int = 7) -> np.ndarray:
    return render_track(genre, seed=1, track_index=index, settings=SynthSettings(duration_s=seconds))["mix"]


# ------------------------------------------------------------------- same as the training data
def test_predictions_equal_the_pipelines_on_its_own_test_tracks(tiny):
    bundle, root = tiny
    fs = load_feature_split(root / "features", "test", split_table=root / "split.csv")
    expected = bundle.predict_proba(fs)
    for tid in fs.meta["track_id"].unique():
        genre = tid.split(".")[0]
        pred = predict_file(bundle, root / "dataset" / "audio" / genre / f"{tid}.flac", top_k=2)
        rows = (fs.meta["track_id"] == tid).to_numpy()
        np.testing.assert_allclose(pred.starts_s, fs.meta.loc[rows, "start_s"], atol=1e-9)
        np.testing.assert_allclose(pred.slice_proba, expected[rows], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(pred.proba, expected[rows].mean(axis=0), rtol=1e-5, atol=1e-7)
        assert [g for g, _ in pred.top] == [bundle.labels[i] for i in np.argsort(-pred.proba)[:2]]


def test_hpss_pair_variant_separates_in_memory_like_the_separate_stage(tmp_path):
    variant = {"name": "hpss_pair", "separator": "hpss", "channels": [["harmonic"], ["percussive"]]}
    model, features = build_tiny_bundle(tmp_path, variant=variant)
    bundle = load_bundle(model, trust=True)
    fs = load_feature_split(features, "test", split_table=tmp_path / "split.csv")
    tid = fs.meta["track_id"].iloc[0]
    pred = predict_file(bundle, tmp_path / "dataset" / "audio" / tid.split(".")[0] / f"{tid}.flac")
    rows = (fs.meta["track_id"] == tid).to_numpy()
    # the stage stores stems as 16-bit FLAC; in memory they stay float: tiny differences only
    np.testing.assert_allclose(pred.slice_proba, bundle.predict_proba(fs)[rows], atol=0.02)
    assert fs.X.shape[1] == 2 * 13 * 2  # two channels of 13 MFCC x (mean, std)


def test_oracle_variant_cannot_classify_new_audio(tiny, tmp_path):
    bundle, root = tiny
    meta = json.loads(json.dumps(bundle.meta))
    meta["params"]["variant"] = {"name": "oracle_percussive", "separator": "oracle", "channels": [["drums", "bass"]]}
    oracle = Bundle(folder=bundle.folder, meta=meta, models=bundle.models)
    sf.write(tmp_path / "a.wav", _music(2.0), SR)
    with pytest.raises(ConfigError, match="oracle.*true stems.*variant=normal"):
        predict_file(oracle, tmp_path / "a.wav")
    with pytest.raises(ConfigError, match="oracle"):
        predict_paths(oracle, [tmp_path], progress=False)


# ---------------------------------------------------------------------------------- edge cases
@pytest.fixture(scope="module")
def edge_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("edge")
    y = _music(4.0)
    sf.write(d / "ok.wav", y, SR)
    sf.write(d / "ok.flac", y, SR)
    sf.write(d / "ok.ogg", y, SR, format="OGG", subtype="VORBIS")
    sf.write(d / "ok.au", y, SR, format="AU", subtype="PCM_16")
    (d / "sub").mkdir()
    sf.write(d / "sub" / "ok.mp3", y, SR, format="MP3")
    import librosa

    y96 = librosa.resample(y, orig_sr=SR, target_sr=96000)
    sf.write(d / "stereo96k.wav", np.stack([y96, 0.5 * y96], axis=1), 96000, subtype="PCM_24")
    sf.write(d / "eightbit.wav", y, SR, subtype="PCM_U8")
    sf.write(d / "short.wav", y[: SR // 2], SR)
    sf.write(d / "silence.wav", np.zeros(4 * SR, dtype=np.float32), SR)
    sf.write(d / "hiss.wav", np.random.default_rng(0).normal(0, 1e-4, 4 * SR), SR)  # -70 dBFS peak or so
    (d / "text.wav").write_text("this is not audio\n" * 50)
    (d / "empty.flac").write_bytes(b"")
    (d / "notes.txt").write_text("ignored: not an audio extension")
    (d / ".hidden.wav").write_text("hidden files are skipped")
    return d


def test_any_format_rate_and_layout_gives_the_same_genre(tiny, edge_dir):
    bundle, _ = tiny
    ref = predict_file(bundle, edge_dir / "ok.wav")
    assert ref.ok and ref.duration_s == pytest.approx(4.0) and len(ref.starts_s) == 4
    for name in ("ok.flac", "ok.au"):
        np.testing.assert_allclose(predict_file(bundle, edge_dir / name).proba, ref.proba, atol=1e-4)
    for name, tol in [("ok.ogg", 0.1), ("sub/ok.mp3", 0.1), ("stereo96k.wav", 0.05), ("eightbit.wav", 0.2)]:
        pred = predict_file(bundle, edge_dir / name)
        assert pred.duration_s == pytest.approx(4.0, abs=0.06), name  # mp3 adds encoder padding
        np.testing.assert_allclose(pred.proba, ref.proba, atol=tol, err_msg=name)


@pytest.mark.parametrize("name, reason", [
    ("short.wav", r"too short: 0\.50 s of audio, the model needs at least one slice of 1 s"),
    ("silence.wav", r"silent: peak level -inf dBFS is below the -60 dBFS threshold"),
    ("hiss.wav", r"silent: peak level -\d+ dBFS"),
    ("text.wav", r"not a readable audio file .*supported formats: wav"),
    ("empty.flac", r"not a readable audio file|holds no audio"),
    ("missing.wav", r"no such file"),
])
def test_unusable_files_get_a_one_line_reason(tiny, edge_dir, name, reason):
    bundle, _ = tiny
    with pytest.raises(AudioInputError, match=reason) as info:
        predict_file(bundle, edge_dir / name)
    assert "\n" not in str(info.value) and str(edge_dir) not in str(info.value)


def test_too_long_recordings_are_refused_without_decoding_them_whole(tiny, edge_dir):
    bundle, _ = tiny
    with pytest.raises(AudioInputError, match="too long: more than 2 s"):
        predict_file(bundle, edge_dir / "ok.wav", max_duration_s=2.0)


def test_silent_slices_are_left_out_of_the_track_mean(tiny, tmp_path):
    bundle, _ = tiny
    y = np.concatenate([_music(2.0), np.zeros(2 * SR, dtype=np.float32)])
    sf.write(tmp_path / "half.wav", y, SR)
    pred = predict_file(bundle, tmp_path / "half.wav")
    assert pred.silent.tolist() == [False, False, True, True]
    np.testing.assert_allclose(pred.proba, pred.slice_proba[:2].mean(axis=0))


def test_folders_are_walked_and_failures_do_not_stop_the_others(tiny, edge_dir):
    bundle, _ = tiny
    preds = predict_paths(bundle, [edge_dir, edge_dir / "notes.txt", edge_dir / "nowhere"], progress=False)
    by_name = {Path(p.path).name: p for p in preds}
    assert ".hidden.wav" not in by_name
    ok = {n for n, p in by_name.items() if p.ok}
    assert ok == {"ok.wav", "ok.flac", "ok.ogg", "ok.au", "ok.mp3", "stereo96k.wav", "eightbit.wav"}
    assert by_name["notes.txt"].error.startswith("not a readable audio file")  # named explicitly: tried
    assert by_name["nowhere"].error == "no such file or folder"
    assert all(abs(p.proba.sum() - 1) < 1e-6 for p in preds if p.ok)


def test_invalid_arguments(tiny, edge_dir):
    bundle, _ = tiny
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        predict_file(bundle, edge_dir / "ok.wav", top_k=0)


# --------------------------------------------------------------------------------- the command
def test_command_prints_lines_writes_slices_and_sets_the_exit_status(tiny, edge_dir, tmp_path, capsys):
    bundle, root = tiny
    out = tmp_path / "slices.csv"
    code = predict_command([str(edge_dir / "ok.wav"), str(edge_dir / "short.wav"), "--model", str(root / "model"),
                            "--top-k", "2", "--slices", str(out), "--trust", "--no-progress"])
    text = capsys.readouterr()
    assert code == 1
    card, *rest = text.out.strip().splitlines()
    assert card.startswith("model: logreg on mfcc features") and "trained on SYNTHETIC data" in card
    notes = [line for line in rest if line.startswith("  note: ")]
    lines = [line for line in rest if not line.startswith("  note: ")]
    assert notes[0].startswith("  note: trained on genrelab's built-in SYNTHETIC dataset")
    assert notes[1].startswith("  note: no out-of-distribution check (only 6 training tracks")  # a tiny bundle
    assert len(lines) == 2 and "(4.0 s, 4 slices)" in lines[0] and "error: too short" in lines[1]
    assert "1 of 2 files classified, 1 failed" in text.err
    table = pd.read_csv(out)
    assert list(table.columns[:7]) == ["path", "slice_idx", "start_s", "end_s", "genre", "probability", "silent"]
    assert list(table.columns[7:]) == bundle.labels and len(table) == 4
    assert table["start_s"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_command_json_and_all_good_exit_zero(tiny, edge_dir, tmp_path, capsys):
    _, root = tiny
    code = predict_command([str(edge_dir / "ok.wav"), "--model", str(root / "model"), "--json", "--trust",
                            "--slices", str(tmp_path / "s.json"), "--no-progress"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["synthetic"] and "not meaningful" in out["model"]["warning"]
    assert out["model"]["line"].startswith("model: logreg")
    (doc,) = out["files"]
    assert doc["warnings"] == [] and doc["novelty"] is None  # too few training tracks for a detector
    assert doc["ok"] and len(doc["top"]) == 3 and doc["genre"] == doc["top"][0]["genre"]
    slices = json.loads((tmp_path / "s.json").read_text())["files"][0]["slices"]
    assert [s["start_s"] for s in slices] == [0.0, 1.0, 2.0, 3.0]


def test_command_refuses_a_pickled_bundle_from_elsewhere_without_trust(tiny, edge_dir, capsys):
    _, root = tiny
    with pytest.raises(UntrustedBundleError, match="arbitrary code.*--trust"):
        load_bundle(root / "model")
    assert predict_command([str(edge_dir / "ok.wav"), "--model", str(root / "model"), "--no-progress"]) == 2
    assert "pickled models (model.joblib)" in capsys.readouterr().err


def test_command_usage_errors(tiny, edge_dir, capsys):
    _, root = tiny
    with pytest.raises(SystemExit) as info:
        predict_command([str(edge_dir), "--model", str(root / "model"), "--slices", "out.parquet"])
    assert info.value.code == 2 and "use one of .csv, .json" in capsys.readouterr().err
    assert predict_command([str(edge_dir), "--model", str(edge_dir)]) == 2
    assert "not a model bundle" in capsys.readouterr().err


# ------------------------------------------------------------------------- real recordings
def test_real_recordings_of_every_format(tiny):
    if not (SHARED / "audio" / "MANIFEST.csv").is_file():
        pytest.skip(f"{SHARED}/audio is absent (the shared recordings sit beside the repository only on "
                    "the project's own machines)")
    bundle, _ = tiny
    manifest = pd.read_csv(SHARED / "audio" / "MANIFEST.csv")
    preds = {Path(p.path).relative_to(SHARED / "audio").as_posix(): p
             for p in predict_paths(bundle, [SHARED / "audio"], progress=False)}
    assert set(preds) == set(manifest["path"])  # MANIFEST.csv itself is not audio: not picked up
    for row in manifest.itertuples():
        pred = preds[row.path]
        assert pred.ok, f"{row.path}: {pred.error}"  # every clip holds at least one 1 s slice
        assert pred.duration_s == pytest.approx(row.duration_s, abs=0.2), row.path  # mp3 decoders differ by ~0.1 s
        assert len(pred.starts_s) == int(pred.duration_s // SLICE_S)
        assert pred.proba.sum() == pytest.approx(1.0) and pred.genre in GENRES


def test_data_model_folder_is_trusted_in_place(repo_root, tmp_path):
    model = repo_root / "data" / "model"
    if not (model / "bundle.json").is_file():
        pytest.skip("data/model is absent; run `dvc repro train` to make it")
    assert load_bundle(model).labels  # the train stage's own output: no --trust needed
    shutil.copytree(model, tmp_path / "copy")
    with pytest.raises(UntrustedBundleError):
        load_bundle(tmp_path / "copy")


def test_registered_as_a_genrelab_subcommand(tiny, edge_dir, capsys):
    from genrelab.cli import main

    _, root = tiny
    assert main(["predict", str(edge_dir / "ok.flac"), "--model", str(root / "model"), "--trust",
                 "--no-progress"]) == 0
    assert "ok.flac" in capsys.readouterr().out
