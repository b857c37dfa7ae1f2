"""``dataset=embeddings``: published ``.npz`` files (X, Y, IDS) through split, train and evaluate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrelab import GENRES
from genrelab.config import ConfigError
from genrelab.datasets import prepare_dataset
from genrelab.datasets.embeddings import gtzan_track_id, read_embedding_file
from genrelab.datasets.gtzan import load_gtzan_split
from genrelab.evaluate import evaluate_bundle
from genrelab.features import SliceSettings, extract_dataset, load_feature_split, make_extractor
from genrelab.models import load_bundle, train_bundle
from genrelab.splits import SplitSettings, make_split
from genrelab.store import Store
from genrelab.variants import VariantSettings

DIM = 16


def _published(path, ids: list[str], rng, *, frames: int = 9, labels=None) -> None:
    """An .npz as sklearn-audio-transfer-learning writes it: X (frames x dims), Y (GTZAN label
    numbers in genre order), IDS (the audio path of each frame's track)."""
    centres = np.random.default_rng(99).normal(0, 1, (len(GENRES), DIM))
    X, Y, IDS = [], [], []
    for i in ids:
        g = GENRES.index(i.split("/")[0]) if labels is None else labels[i]
        X.append(centres[g] + 2.5 * rng.normal(0, 1, (frames, DIM)))
        Y += [g] * frames
        IDS += [i] * frames
    np.savez(path, X=np.concatenate(X).astype(np.float32), Y=np.asarray(Y), IDS=np.asarray(IDS))


def _gtzan_ids(split: str, per_genre: int) -> list[str]:
    lists = load_gtzan_split("fault_filtered")
    out = []
    for g in GENRES:
        names = sorted(t for t, s in lists.items() if s == split and t.startswith(g + "."))[:per_genre]
        out += [f"{g}/{t}.wav" for t in names]
    return out


def _pipeline(settings: dict, root, *, split: str = "auto"):
    index = prepare_dataset(settings, root / "dataset", progress=False)
    table = make_split(index, SplitSettings(method=split), seed=0)
    extract_dataset(index, extractor=make_extractor({"name": "table"}),
                    variant=VariantSettings(name="normal", separator="none", channels=(("mix",),)),
                    slicing=SliceSettings(), sample_rate=22050, dataset_dir=root / "dataset",
                    out_dir=root / "features", store=Store(root / "store"), progress=False)
    params = {"model": {"name": "logreg", "C": 1.0, "max_iter": 2000}, "train": {"seeds": [0]},
              "features": {"name": "table"}, "dataset": settings, "split": {"method": split}}
    train_bundle(params, root / "features", root / "model", split_table=table, progress=False)
    return index, table


def test_published_layout_gives_the_plain_sklearn_track_votes(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    _published(tmp_path / "training_data.npz", _gtzan_ids("train", 5), rng)
    _published(tmp_path / "evaluation_data.npz", _gtzan_ids("test", 3), rng)
    settings = {"name": "embeddings", "train": str(tmp_path / "training_data.npz"),
                "test": str(tmp_path / "evaluation_data.npz")}
    index, table = _pipeline(settings, tmp_path)
    assert set(table["method"]) == {"official"}  # GTZAN ids: the fault-filtered split, no valid tracks given
    assert table["split"].value_counts().to_dict() == {"train": 50, "test": 30}
    assert index["track_id"].str.fullmatch(r"[a-z]+\.\d{5}").all()  # GTZAN track ids, as the audio datasets have
    bundle = load_bundle(tmp_path / "model", trust=True)
    metrics, _, tracks = evaluate_bundle(bundle, tmp_path / "features", split_table=table)

    # the same arrays, by hand
    tr, te = np.load(tmp_path / "training_data.npz"), np.load(tmp_path / "evaluation_data.npz")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(tr["X"], tr["Y"])
    proba = clf.predict_proba(te["X"])
    frame = pd.DataFrame({"id": te["IDS"], "pred": proba.argmax(1), "y": te["Y"]})
    frame[[f"p{k}" for k in range(10)]] = proba
    want = {}
    for tid, rows in frame.groupby("id"):
        votes = np.bincount(rows["pred"], minlength=10).astype(float)
        score = votes + 1e-6 * rows[[f"p{k}" for k in range(10)]].mean().to_numpy()  # ties: higher mean probability
        want[gtzan_track_id(tid)] = GENRES[int(np.argmax(score))]
    got = dict(zip(tracks["track_id"], tracks["predicted_vote"]))
    assert got == want
    truth = {gtzan_track_id(t): GENRES[y] for t, y in zip(frame["id"], frame["y"])}
    assert metrics["track_vote"]["accuracy"] == pytest.approx(np.mean([want[t] == truth[t] for t in want]))
    test = load_feature_split(tmp_path / "features", "test", split_table=table)
    np.testing.assert_allclose(bundle.predict_proba(test), proba,
                               rtol=1e-6, atol=1e-9)
    assert 0.3 < metrics["track_vote"]["accuracy"] < 1.0  # a real test: neither chance nor trivially perfect
    from genrelab.predict import bundle_recipe

    with pytest.raises(ConfigError, match="precomputed features .* cannot compute from audio"):
        bundle_recipe(bundle)
    card = load_bundle(tmp_path / "model", trust=True).meta["card"]
    assert card["dataset"]["name"] == "embeddings" and card["dataset"]["tracks"] == {"train": 50, "valid": 0,
                                                                                       "test": 30}


def test_label_names_from_a_file_and_the_split_from_the_files(tmp_path):
    rng = np.random.default_rng(1)
    ids = {f"song{i:03d}.mp3": i % 3 for i in range(60)}
    names = ["folk", "jazz", "techno"]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n")
    _published(tmp_path / "a.npz", list(ids)[:40], rng, labels=ids)
    _published(tmp_path / "b.npz", list(ids)[40:50], rng, labels=ids)
    _published(tmp_path / "c.npz", list(ids)[50:], rng, labels=ids)
    settings = {"name": "embeddings", "train": str(tmp_path / "a.npz"), "valid": str(tmp_path / "b.npz"),
                "test": str(tmp_path / "c.npz"), "labels_file": str(tmp_path / "labels.txt")}
    index, table = _pipeline(settings, tmp_path)
    assert table.groupby("split").size().to_dict() == {"test": 10, "train": 40, "valid": 10}
    assert sorted(index["genre"].unique()) == names and index.loc[0, "track_id"] == "song000.mp3"
    # one file, split by the split stage
    one = {"name": "embeddings", "source": str(tmp_path / "a.npz"), "labels": names}
    index, table = _pipeline(one, tmp_path / "one", split="grouped")
    assert (index["official_split"] == "").all() and set(table["split"]) == {"train", "valid", "test"}


def test_integer_labels_need_their_names(tmp_path):
    _published(tmp_path / "a.npz", ["x1", "x2"], np.random.default_rng(2), labels={"x1": 0, "x2": 1})
    with pytest.raises(ConfigError, match=r"a\.npz: key Y holds label numbers; give their names in dataset.labels"):
        prepare_dataset({"name": "embeddings", "source": str(tmp_path / "a.npz")}, tmp_path / "out")
    with pytest.raises(ValueError, match=r"a\.npz: key Y has label 1, outside the 1 names given"):
        prepare_dataset({"name": "embeddings", "source": str(tmp_path / "a.npz"), "labels": ["a"]}, tmp_path / "out")


def test_gtzan_ids_check_the_label_order(tmp_path):
    ids = _gtzan_ids("train", 1)[:3]
    _published(tmp_path / "a.npz", ids, np.random.default_rng(3), labels={i: 2 - k for k, i in enumerate(ids)})
    with pytest.raises(ValueError, match="key Y says 'country' for blues/blues.*check the order of the label names"):
        prepare_dataset({"name": "embeddings", "source": str(tmp_path / "a.npz"), "labels": list(GENRES)},
                        tmp_path / "out")


def test_a_track_in_two_files_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    _published(tmp_path / "a.npz", ["s1", "s2"], rng, labels={"s1": 0, "s2": 1})
    _published(tmp_path / "b.npz", ["s2"], rng, labels={"s2": 1})
    with pytest.raises(ValueError, match="key IDS: track 's2' is in more than one file"):
        prepare_dataset({"name": "embeddings", "train": str(tmp_path / "a.npz"), "test": str(tmp_path / "b.npz"),
                         "labels": ["a", "b"]}, tmp_path / "out")


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((3, 2)), "Y": np.zeros(3)}, r"bad\.npz: no key IDS \(it has X, Y\)"),
    ({"X": np.zeros((3, 2)), "Y": np.zeros(2), "IDS": np.array(["a"] * 3)},
     r"bad\.npz: key Y must hold one value per row of X \(3 rows\), got shape \(2,\)"),
    ({"X": np.zeros(3), "Y": np.zeros(3), "IDS": np.array(["a"] * 3)}, r"bad\.npz: key X must be a 2-D numeric"),
    ({"X": np.array([[0.0, 1.0], [np.nan, 0.0]]), "Y": np.zeros(2), "IDS": np.array(["a", "b"])},
     r"bad\.npz: key X has 1 row\(s\) with NaN or infinite values \(first: row 1, IDS b\)"),
    ({"X": np.zeros((2, 2)), "Y": np.zeros(2), "IDS": np.array(["a", None], dtype=object)},
     r"bad\.npz: key IDS is an object array, which would need pickle"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        read_embedding_file(tmp_path / "bad.npz")


def test_settings_are_checked(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"")
    with pytest.raises(ConfigError, match="give `train` and `test`"):
        prepare_dataset({"name": "embeddings"}, tmp_path / "out")
    with pytest.raises(ConfigError, match="dataset.test: give both"):
        prepare_dataset({"name": "embeddings", "train": str(tmp_path / "a.npz")}, tmp_path / "out")
    with pytest.raises(ConfigError, match="dataset.train: .*nowhere.npz is not a file"):
        prepare_dataset({"name": "embeddings", "train": str(tmp_path / "nowhere.npz"), "test": str(tmp_path / "a.npz")},
                        tmp_path / "out")
    with pytest.raises(ValueError, match=r"a\.npz: not a readable \.npz"):
        read_embedding_file(tmp_path / "a.npz")
    assert gtzan_track_id("genres/blues/blues.00012.au") == "blues.00012" and gtzan_track_id("x.wav") is None
