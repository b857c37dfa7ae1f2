"""The Essentia model registry and store: listing, missing files, fetch and checksums.

Downloads go to a loopback HTTP server (``tests/httpserver.py``), never to the internet.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from httpserver import FixtureServer

from genrelab.download import DownloadError
from genrelab.embeddings.catalog import (
    MODELS,
    EssentiaModelSpec,
    MissingModelError,
    UnknownModelError,
    fetch,
    get_spec,
    list_models,
    model_path,
    models_command,
    recorded_checksums,
    verify,
)

PB = np.random.default_rng(3).integers(0, 256, size=50_000, dtype=np.uint8).tobytes()
PB_SHA1 = hashlib.sha1(PB).hexdigest()
META = json.dumps({"name": "fake", "classes": ["a", "b"]}).encode()

REQUIRED = [
    "msd-musicnn-1", "mtt-musicnn-1", "audioset-vggish-3", "discogs-effnet-bs64-1",
    "genre_tzanetakis-msd-musicnn-1", "genre_tzanetakis-audioset-vggish-1", "genre_discogs400-discogs-effnet-1",
    "genre_tzanetakis-musicnn-msd-1", "genre_tzanetakis-vggish-audioset-1",
]


def _fake_spec(server: FixtureServer, *, sha1: str | None) -> EssentiaModelSpec:
    return EssentiaModelSpec(name="fake-model-1", kind="embedding", algorithm="TensorflowPredictMusiCNN",
                     url=server.url("/fe/fake-model-1.pb"), json_url=server.url("/fe/fake-model-1.json"),
                     input_node="model/Placeholder", output_node="model/dense/BiasAdd", output_dim=200,
                     description="test double", sha1=sha1)


def test_registry_lists_the_known_models(tmp_path):
    table = list_models()
    assert set(REQUIRED) <= set(table.index)
    for col in ("kind", "algorithm", "sample_rate", "patch_size", "patch_hop", "output_node", "output_dim", "url",
                "sha1"):
        assert col in table.columns
    assert (table["sample_rate"] == 16000).all()
    for name in REQUIRED:
        spec = get_spec(name)
        assert spec.url.startswith("https://essentia.upf.edu/models/") and spec.url.endswith(f"/{name}.pb")
        assert spec.json_url == spec.url[:-3] + ".json"
    assert get_spec("msd-musicnn-1").output_node == "model/dense/BiasAdd"
    assert get_spec("audioset-vggish-3").output_node == "model/vggish/embeddings"
    assert get_spec("discogs-effnet-bs64-1").output_node == "PartitionedCall:1"
    assert get_spec("discogs-effnet-bs64-1").fixed_batch == 64
    assert set(list_models(kind="head").index) >= {
        "genre_tzanetakis-msd-musicnn-1",
        "genre_discogs400-discogs-effnet-1",
    }
    assert (list_models(kind="head")["kind"] == "head").all()
    (tmp_path / "audioset-vggish-3.pb").write_bytes(b"x")
    present = list_models(models_dir=tmp_path)["present"]
    assert present["audioset-vggish-3"] and not present["msd-musicnn-1"]
    with pytest.raises(ValueError, match="choose one of"):
        list_models(kind="tagger")


def test_unknown_model_lists_choices():
    with pytest.raises(UnknownModelError, match="audioset-vggish-3") as info:
        get_spec("vggish")
    assert "unknown model 'vggish'" in str(info.value)


def test_model_path_missing_and_present(tmp_path):
    spec = get_spec("audioset-vggish-3")
    with pytest.raises(MissingModelError) as info:
        model_path("audioset-vggish-3", tmp_path)
    msg = str(info.value)
    assert "audioset-vggish-3.pb" in msg and spec.url in msg and str(tmp_path.resolve()) in msg
    assert "genrelab models fetch audioset-vggish-3" in msg
    (tmp_path / "audioset-vggish-3.pb").write_bytes(b"graph")
    assert model_path("audioset-vggish-3", tmp_path) == tmp_path / "audioset-vggish-3.pb"
    with pytest.raises(MissingModelError, match="not published"):
        model_path("msd-musicnn-frozen", tmp_path)


def test_fetch_with_known_checksum(tmp_path, monkeypatch):
    with FixtureServer({"/fe/fake-model-1.pb": PB, "/fe/fake-model-1.json": META}) as srv:
        monkeypatch.setitem(MODELS, "fake-model-1", _fake_spec(srv, sha1=PB_SHA1))
        path = fetch("fake-model-1", tmp_path / "models", progress=False)
        assert path == tmp_path / "models" / "fake-model-1.pb" and path.read_bytes() == PB
        assert (tmp_path / "models" / "fake-model-1.json").read_bytes() == META
        assert not list((tmp_path / "models").glob("*.part"))
        assert model_path("fake-model-1", tmp_path / "models") == path
        # the .pb checksum is known, so only the .json's is recorded
        assert set(recorded_checksums(tmp_path / "models")) == {"fake-model-1.json"}
        n = len(srv.requests)
        fetch("fake-model-1", tmp_path / "models", progress=False)  # present and verified: no network
        assert len(srv.requests) == n
        assert verify("fake-model-1", tmp_path / "models") == path


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    with FixtureServer({"/fe/fake-model-1.pb": PB, "/fe/fake-model-1.json": META}) as srv:
        monkeypatch.setitem(MODELS, "fake-model-1", _fake_spec(srv, sha1="0" * 40))
        with pytest.raises(DownloadError, match="checksum mismatch"):
            fetch("fake-model-1", tmp_path, progress=False)
    assert not (tmp_path / "fake-model-1.pb").exists()
    assert not list(tmp_path.glob("*.part"))


def test_fetch_records_checksum_on_first_use_and_catches_a_change(tmp_path, monkeypatch):
    files = {"/fe/fake-model-1.pb": PB, "/fe/fake-model-1.json": META}
    with FixtureServer(files) as srv:
        monkeypatch.setitem(MODELS, "fake-model-1", _fake_spec(srv, sha1=None))
        fetch("fake-model-1", tmp_path, progress=False)
        sums = json.loads((tmp_path / "checksums.json").read_text())
        assert sums["fake-model-1.pb"] == PB_SHA1 and sums["fake-model-1.json"] == hashlib.sha1(META).hexdigest()
        files["/fe/fake-model-1.pb"] = PB[::-1]  # the server's file changes
        with pytest.raises(DownloadError, match="recorded"):
            fetch("fake-model-1", tmp_path, progress=False, force=True)
    assert (tmp_path / "fake-model-1.pb").read_bytes() == PB  # the verified copy is kept
    (tmp_path / "fake-model-1.pb").write_bytes(b"corrupted")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        verify("fake-model-1", tmp_path)


def test_fetch_mirror_urls_and_unpublished_models(tmp_path):
    with FixtureServer({"/mirror/m.pb": PB}) as srv:
        path = fetch(
            "audioset-vggish-3",
            tmp_path,
            urls={"pb": srv.url("/mirror/m.pb"), "json": srv.url("/mirror/m.pb")},
            progress=False,
        )
    assert path.read_bytes() == PB
    with pytest.raises(MissingModelError, match="not published"):
        fetch("msd-musicnn-frozen", tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown keys"):
        fetch("audioset-vggish-3", tmp_path, urls={"graph": "x"}, progress=False)


def test_models_command(tmp_path, monkeypatch, capsys):
    assert models_command(["list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "msd-musicnn-1" in out and "genre_discogs400-discogs-effnet-1" in out
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= 120   # fits a terminal
    assert models_command(["list", "--dir", str(tmp_path), "--long"]) == 0
    assert "essentia.upf.edu" in capsys.readouterr().out
    with FixtureServer({"/fe/fake-model-1.pb": PB, "/fe/fake-model-1.json": META}) as srv:
        monkeypatch.setitem(MODELS, "fake-model-1", _fake_spec(srv, sha1=PB_SHA1))
        assert models_command(["fetch", "fake-model-1", "--dir", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "fake-model-1.pb").read_bytes() == PB
    assert str(tmp_path / "fake-model-1.pb") in capsys.readouterr().out
    assert models_command(["fetch", "no-such-model", "--dir", str(tmp_path)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        models_command(["frobnicate"])


def test_importing_the_package_loads_neither_essentia_nor_tensorflow():
    """The registry, the CLI and the extractor classes import without Essentia (it runs in the worker)."""
    import subprocess
    import sys

    code = ("import sys, genrelab.embeddings, genrelab.embeddings.catalog; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('essentia', 'tensorflow')]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
