"""Essentia genre heads as a model (no training), ``predict --head``, and MusiCNN's taggram.

Only the MusiCNN graph exists on these machines, so the heads and the ``msd-musicnn-1``
embedding model are tiny fake graphs with the real node names and shapes (written with
``test_embeddings``' GraphDef writer).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from test_embeddings import F32, HAS_ESSENTIA, MUSICNN_DIR, TRACK, W_HEAD, _graph, _matmul, _node, _time_mean

from genrelab import GENRES
from genrelab.config import ConfigError
from genrelab.evaluate import evaluate_bundle
from genrelab.features import EmbeddingFeatures, make_extractor, write_feature_set
from genrelab.models import load_bundle, train_bundle
from genrelab.models.heads import EssentiaHeadSettings, LabelMap, map_labels
from genrelab.predict import predict_command

HEAD = "genre_tzanetakis-msd-musicnn-1"
W_MUSICNN = np.random.default_rng(10).standard_normal((96, 200)).astype(np.float32) * 0.01
needs_essentia = pytest.mark.skipif(not HAS_ESSENTIA, reason="essentia-tensorflow is not installed")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """A fake ``msd-musicnn-1`` (mean mel of each 187 x 96 patch @ W -> 200-d at
    ``model/dense/BiasAdd``) and a fake 200 -> 10 softmax head, under their registry names."""
    d = tmp_path_factory.mktemp("heads")
    upstream = (_time_mean("model/Placeholder", [-1, 187, 96]) + _matmul("fake/mm", "fake/mean", W_MUSICNN)
                + [_node("model/dense/BiasAdd", "Identity", ["fake/mm"], T=F32)])
    head = ([_node("model/Placeholder", "Placeholder", dtype=F32, shape=("shape", [-1, 200]))]
            + _matmul("fake/mm", "model/Placeholder", W_HEAD) + [_node("model/Softmax", "Softmax", ["fake/mm"], T=F32)])
    (d / "msd-musicnn-1.pb").write_bytes(_graph(upstream))
    (d / f"{HEAD}.pb").write_bytes(_graph(head))
    return d


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------ label maps
def test_head_labels_map_to_the_datasets_genres_by_name():
    tz = ("blu", "cla", "cou", "dis", "hip", "jaz", "met", "pop", "reg", "roc")
    m = map_labels(tz, list(GENRES))
    assert m.mapped == dict(zip(tz, GENRES)) and m.unmapped == [] and m.uncovered == []
    fma = ["Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock"]
    m = map_labels(tz, fma)
    assert m.mapped == {"hip": "Hip-Hop", "pop": "Pop", "roc": "Rock"}
    assert m.unmapped == ["blu", "cla", "cou", "dis", "jaz", "met", "reg"]
    assert m.uncovered == ["Electronic", "Experimental", "Folk", "Instrumental", "International"]
    discogs = ["Rock---Heavy Metal", "Electronic---Disco", "Hip Hop---Boom Bap", "Folk, World, & Country---Country",
               "Jazz---Bop", "Stage & Screen---Musical"]
    m = map_labels(discogs, list(GENRES))
    assert m.mapped == {"Rock---Heavy Metal": "metal", "Electronic---Disco": "disco", "Hip Hop---Boom Bap": "hiphop",
                        "Folk, World, & Country---Country": "country", "Jazz---Bop": "jazz"}
    assert m.unmapped == ["Stage & Screen---Musical"]


def test_label_map_sums_renormalises_and_falls_back_to_uniform():
    m = LabelMap(target=np.array([0, 1, 1, -1]), mapped={}, unmapped=[], uncovered=[])
    out = m.apply(np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0]]), 3)
    np.testing.assert_allclose(out, [[1 / 6, 5 / 6, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def test_head_settings_name_the_choices():
    with pytest.raises(ConfigError, match="model.head: unknown choice 'genre_nope'.*genre_tzanetakis-msd-musicnn-1"):
        EssentiaHeadSettings(head="genre_nope")
    with pytest.raises(ConfigError, match="model.head.*msd-musicnn-1"):
        EssentiaHeadSettings(head="msd-musicnn-1")  # an embedding model, not a head


# ---------------------------------------------------------------- the model in the pipeline
def _embedding_features(root: Path, models_dir: Path, *, model: str = "msd-musicnn-1", dim: int = 200) -> Path:
    rng = np.random.default_rng(3)
    genres = ["blues", "classical", "hiphop", "rock", "polka"]
    rows = []
    for split, n in (("train", 4), ("valid", 2), ("test", 3)):
        for g in genres:
            for i in range(n):
                rows += [{"track_id": f"{split}-{g}-{i}", "slice_idx": k, "start_s": 1.5 * k, "label": genres.index(g),
                          "genre": g, "split": split} for k in range(4)]
    meta = pd.DataFrame(rows)
    info = {"labels": genres, "feature_names": [f"musicnn{i}_patch" for i in range(dim)], "sample_rate": 16000,
            "frames_shape": None, "split_method": "grouped", "variant": {"name": "normal"}, "slicing": {},
            "features": {"name": "musicnn", "model": model, "pooling": "none", "output": "embedding",
                         "models_dir": str(models_dir)}}
    write_feature_set(root / "features", rng.standard_normal((len(meta), dim)).astype(np.float32), None, meta,
                      info=info, skipped=[])
    meta[["track_id", "genre", "split"]].drop_duplicates().assign(method="grouped").to_csv(root / "split.csv",
                                                                                         index=False)
    return root / "features"


PARAMS = {"model": {"name": "essentia_head", "head": HEAD}, "train": {"seeds": [0]},
          "features": {"name": "musicnn", "model": "msd-musicnn-1"}, "dataset": {"name": "synthetic"},
          "split": {"method": "grouped"}}


@needs_essentia
def test_a_head_is_evaluated_like_any_model_without_training(models_dir, tmp_path):
    features = _embedding_features(tmp_path, models_dir)
    report = train_bundle(PARAMS, features, tmp_path / "model", split_table=tmp_path / "split.csv",
                          progress=False)
    assert report["head_classes_mapped"] == 4 and report["head_classes_unmapped"] == 6
    assert not (tmp_path / "model" / "novelty").exists()
    meta = json.loads((tmp_path / "model" / "bundle.json").read_text())
    card = meta["card"]
    assert card["pretrained"]["mapped"] == {"blu": "blues", "cla": "classical", "hip": "hiphop", "roc": "rock"}
    assert card["pretrained"]["genres_without_head_class"] == ["polka"]
    assert card["dataset"]["synthetic"] is False  # the head was not trained on the synthetic set
    assert "trained on GTZAN" in card["pretrained"]["summary"] and "not trained here" in card["pretrained"]["summary"]
    bundle = load_bundle(tmp_path / "model")  # head.json only, no pickle: no --trust even outside data/
    metrics, _, tracks = evaluate_bundle(bundle, features, split_table=tmp_path / "split.csv")
    assert metrics["n_tracks"] == 15 and set(tracks["predicted"]) <= {"blues", "classical", "hiphop", "rock"}
    from genrelab.features import load_feature_split

    test = load_feature_split(features, "test", split_table=tmp_path / "split.csv")
    p = _softmax(test.X @ W_HEAD)
    want = np.stack([p[:, 0], p[:, 1], p[:, 4], p[:, 9], np.zeros(len(p))], axis=1)
    np.testing.assert_allclose(bundle.predict_proba(test), want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


@needs_essentia
def test_a_head_refuses_embeddings_it_was_not_trained_on(models_dir, tmp_path):
    features = _embedding_features(tmp_path, models_dir, model="audioset-vggish-3", dim=128)
    with pytest.raises(ConfigError, match="reads msd-musicnn-1 embeddings.*use features=musicnn"):
        train_bundle(PARAMS, features, tmp_path / "model", split_table=tmp_path / "split.csv", progress=False)


def test_a_missing_head_file_names_it_and_where_to_get_it(tmp_path):
    features = _embedding_features(tmp_path, tmp_path / "empty")
    with pytest.raises(
        FileNotFoundError, match=rf"(?s){HEAD}\.pb.*https://essentia.upf.edu/models/.*genrelab models fetch"
    ):
        train_bundle(PARAMS, features, tmp_path / "model", split_table=tmp_path / "split.csv",
                     progress=False)


# ------------------------------------------------------------------------ predict --head
@needs_essentia
def test_predict_head_runs_a_pretrained_head_on_audio(models_dir, tmp_path, capsys):
    from genrelab.synth import SynthSettings, render_track

    y = render_track("rock", seed=0, track_index=1, settings=SynthSettings(duration_s=7.0))["mix"]
    sf.write(tmp_path / "song.wav", y, 22050)
    code = predict_command([str(tmp_path / "song.wav"), "--head", HEAD, "--models-dir", str(models_dir),
                            "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith(f"model: essentia_head on musicnn features (normal variant), 10 genres, Essentia's "
                             f"pretrained head {HEAD} on msd-musicnn-1 embeddings, trained on GTZAN")
    assert "not evaluated here" in out[0]
    assert "no out-of-distribution check (a pretrained head" in out[1]
    assert "song.wav" in out[2] and any(g in out[2] for g in GENRES)  # the head's 'roc' shows as 'rock'
    assert predict_command([str(tmp_path / "song.wav"), "--head", HEAD, "--models-dir", str(models_dir),
                            "--no-progress", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (f,) = doc["files"]
    assert list(f["probabilities"]) == list(GENRES) and sum(f["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert doc["model"]["training"]["pretrained"]["head"] == HEAD and not doc["model"]["synthetic"]


def test_predict_head_without_its_files_says_which_and_where(tmp_path, capsys):
    assert predict_command([str(tmp_path), "--head", HEAD, "--models-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert f"{HEAD}.pb" in err and "genrelab models fetch" in err
    assert predict_command([str(tmp_path), "--head", "genre_nope"]) == 2
    assert "model.head: unknown choice 'genre_nope'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- taggram
def test_taggram_output_is_a_choice_of_models_with_tags():
    ex = make_extractor({"name": "musicnn", "output": "taggram"})
    names = ex.names()
    assert len(names) == 50 and names[0] == "musicnn_rock_patch" and "musicnn_female_vocalists_patch" in names
    assert len(make_extractor({"name": "musicnn"}).names()) == 200
    assert len(make_extractor({"name": "effnet_discogs", "output": "taggram", "pooling": "mean"}).names()) == 400
    with pytest.raises(ConfigError, match="features.output: 'audioset-vggish-3' has no tag output.*msd-musicnn-1"):
        make_extractor({"name": "vggish", "output": "taggram"})
    with pytest.raises(ConfigError, match="features.output: unknown choice 'logits'"):
        make_extractor({"name": "musicnn", "output": "logits"})


@needs_essentia
def test_musicnn_taggram_with_the_real_graph():
    if not (MUSICNN_DIR / "msd-musicnn-frozen.pb").is_file() or not TRACK.is_file():
        pytest.skip(f"the shared MusiCNN graph and test track are absent ({MUSICNN_DIR})")
    from genrelab.io import load_audio

    y, sr = load_audio(TRACK, sr=16000, duration=9.0)
    ex = EmbeddingFeatures(name="musicnn", model="msd-musicnn-frozen", output="taggram", models_dir=str(MUSICNN_DIR))
    tags, starts = ex.embed_track(y[None], sr)
    emb, _ = EmbeddingFeatures(name="musicnn", model="msd-musicnn-frozen", models_dir=str(MUSICNN_DIR)).embed_track(
        y[None], sr)
    assert tags.shape == (len(starts), 50) and emb.shape == (len(starts), 200)
    assert tags.min() >= 0 and tags.max() <= 1  # sigmoid activations
