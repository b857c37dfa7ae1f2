"""Essentia embeddings: patching, the worker, fake graphs, and the real MusiCNN graph.

Three layers of checks:

* pure numpy (always run): Essentia's frame/patch arithmetic for the documented input
  shapes of MusiCNN (187 x 96), VGGish (96 x 64) and EffNet-Discogs (128 x 96), pooling,
  and the missing-file messages for graphs these machines do not have;
* essentia-tensorflow with tiny *fake* graphs written here as GraphDef protobufs (same
  input and output node names and input shapes as the real VGGish, EffNet-Discogs and
  genre-head graphs): the whole path through the worker, compared with Essentia's own
  ``TensorflowPredictVGGish`` / ``TensorflowPredictEffnetDiscogs`` on the same graph;
* the real MusiCNN (MSD) graph in ``shared/models/musicnn`` against the original
  ``musicnn`` package's output for ``shared/audio/musicnn/TRWJAZW128F42760DD_test.mp3``.

Tolerance against the original musicnn (3 s non-overlapping patches, i.e. a patch hop of
187 frames, 10 patches): mean per-patch Pearson correlation of the 200-d penultimate layer
>= 0.99 (minimum >= 0.97), and the same top-3 tags of the track-averaged taggram. The
original computes its mel spectrogram with librosa (float16) and Essentia with its own
front end, so the numbers are close, not equal (measured: mean 0.992, min 0.986).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from genrelab.embeddings import (
    EmbeddingExtractor,
    EssentiaWorkerError,
    GenreHead,
    MissingModelError,
    UnknownModelError,
    get_spec,
    pool,
)
from genrelab.embeddings.patching import make_patches, min_samples, n_frames, n_patches, patch_starts, patch_times

MUSICNN_DIR = SHARED / "models" / "musicnn"
TRACK = SHARED / "audio" / "musicnn" / "TRWJAZW128F42760DD_test.mp3"
SHARED_REFERENCE = MUSICNN_DIR / "reference_TRWJAZW128F42760DD_test.npz"
PENULTIMATE = "model/batch_normalization_10/batchnorm/add_1"

HAS_ESSENTIA = importlib.util.find_spec("essentia") is not None
needs_essentia = pytest.mark.skipif(
    not HAS_ESSENTIA,
    reason="essentia-tensorflow is not installed "
           "(pip install -c constraints.txt --pre 'essentia-tensorflow>=2.1b6.dev1389')",
)
needs_musicnn = pytest.mark.skipif(
    not (MUSICNN_DIR / "msd-musicnn-frozen.pb").is_file() or not TRACK.is_file(),
    reason=f"the shared MusiCNN graph and test track are absent ({MUSICNN_DIR}, {TRACK}); they exist only "
           "on the project's own machines",
)

MODEL_SHAPES = {  # registry name -> (patch_size, n_bands, hop_size, patch_hop) from Essentia's docs
    "msd-musicnn-1": (187, 96, 256, 93),
    "audioset-vggish-3": (96, 64, 160, 93),
    "discogs-effnet-bs64-1": (128, 96, 256, 62),
}


# --------------------------------------------------------------------------------------
# a minimal GraphDef writer, for fake graphs with the real graphs' node names and shapes
# --------------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negative sizes
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: int | bytes) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


_DTYPES = {"float32": 1, "int32": 3}


def _shape(dims) -> bytes:
    return b"".join(_field(2, _field(1, int(d))) for d in dims)


def _attr(kind: str, value) -> bytes:
    if kind == "type":
        return _field(6, _DTYPES[value])
    if kind == "types":
        return _field(1, b"".join(_field(6, _DTYPES[v]) for v in value))
    if kind == "shape":
        return _field(7, _shape(value))
    if kind == "bool":
        return _field(5, int(value))
    if kind == "tensor":
        a = np.ascontiguousarray(value)
        return _field(8, _field(1, _DTYPES[str(a.dtype)]) + _field(2, _shape(a.shape))
                      + _field(4, a.astype(a.dtype.newbyteorder("<")).tobytes()))
    raise ValueError(kind)


def _node(name: str, op: str, inputs=(), **attrs) -> bytes:
    out = _field(1, name.encode()) + _field(2, op.encode())
    out += b"".join(_field(3, i.encode()) for i in inputs)
    out += b"".join(_field(5, _field(1, k.encode()) + _field(2, _attr(*v))) for k, v in attrs.items())
    return out


def _graph(nodes) -> bytes:
    return b"".join(_field(1, n) for n in nodes) + _field(4, _field(1, 27))  # versions.producer


F32 = ("type", "float32")


def _matmul(name: str, a: str, w: np.ndarray) -> list[bytes]:
    return [_node(f"{name}/w", "Const", dtype=F32, value=("tensor", w.astype(np.float32))),
            _node(name, "MatMul", [a, f"{name}/w"], T=F32, transpose_a=("bool", False), transpose_b=("bool", False))]


def _time_mean(input_node: str, shape) -> list[bytes]:
    """``input [batch, time, bands]`` -> ``fake/mean [batch, bands]`` (mean over time)."""
    return [_node(input_node, "Placeholder", dtype=F32, shape=("shape", shape)),
            _node("fake/axis", "Const", dtype=("type", "int32"), value=("tensor", np.array([1], np.int32))),
            _node("fake/mean", "Mean", [input_node, "fake/axis"], T=F32, Tidx=("type", "int32"),
                  keep_dims=("bool", False))]


W_VGGISH = np.random.default_rng(7).standard_normal((64, 128)).astype(np.float32)
W_EFFNET = np.random.default_rng(8).standard_normal((96, 1280)).astype(np.float32)
W_HEAD = np.random.default_rng(9).standard_normal((200, 10)).astype(np.float32)


@pytest.fixture(scope="module")
def fake_graphs(tmp_path_factory) -> dict[str, Path]:
    """Fake graphs: VGGish-like (mean mel of each 96x64 patch @ W -> 128-d at
    ``model/vggish/embeddings``), EffNet-like (fixed batch [64, 128, 96] -> 1280-d at
    ``PartitionedCall:1``) and a 200-d -> 10-class softmax head (``model/Softmax``)."""
    d = tmp_path_factory.mktemp("fake_models")
    graphs = {
        "audioset-vggish-3": _time_mean("model/Placeholder", [-1, 96, 64])
        + _matmul("fake/mm", "fake/mean", W_VGGISH)
        + [_node("model/vggish/embeddings", "Identity", ["fake/mm"], T=F32)],
        "discogs-effnet-bs64-1": _time_mean("serving_default_melspectrogram", [64, 128, 96])
        + _matmul("fake/mm", "fake/mean", W_EFFNET)
        + [_node("PartitionedCall", "IdentityN", ["fake/mean", "fake/mm"], T=("types", ["float32", "float32"]))],
        "genre_tzanetakis-msd-musicnn-1": [
            _node("model/Placeholder", "Placeholder", dtype=F32, shape=("shape", [-1, 200]))
        ]
        + _matmul("fake/mm", "model/Placeholder", W_HEAD)
        + [_node("model/Softmax", "Softmax", ["fake/mm"], T=F32)],
    }
    paths = {}
    for name, nodes in graphs.items():
        paths[name] = d / f"{name}.pb"
        paths[name].write_bytes(_graph(nodes))
    return paths


def _essentia_wrapper(
    algorithm: str, graph: Path, output: str, y16: np.ndarray, tmp_path: Path, **params
) -> np.ndarray:
    """What Essentia's own ``algorithm`` returns for ``y16``, computed in a separate process."""
    src, dst = tmp_path / "y.npy", tmp_path / "out.npy"
    np.save(src, y16.astype(np.float32))
    code = (
        "import sys, numpy as np, essentia, essentia.standard as es\n"
        "essentia.log.infoActive = False\n"
        "algo, graph, output, src, dst, *kv = sys.argv[1:]\n"
        "params = {k: int(v) for k, v in (s.split('=') for s in kv)}\n"
        "out = getattr(es, algo)(graphFilename=graph, output=output, **params)(np.load(src))\n"
        "np.save(dst, np.asarray(out, dtype=np.float32))\n"
    )
    args = [sys.executable, "-c", code, algorithm, str(graph), output, str(src), str(dst)]
    args += [f"{k}={v}" for k, v in params.items()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(dst)


def _noise(seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * t)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# --------------------------------------------------------------------------------------
# pure numpy: patching, pooling, errors that need no model
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODEL_SHAPES))
def test_patches_have_the_documented_input_shape(name):
    patch_size, n_bands, hop_size, patch_hop = MODEL_SHAPES[name]
    spec = get_spec(name)
    assert (spec.patch_size, spec.n_bands, spec.hop_size, spec.patch_hop, spec.sample_rate) == (
        patch_size, n_bands, hop_size, patch_hop, 16000)
    n = n_frames(30 * 16000, hop_size=hop_size)
    frames = np.arange(n * n_bands, dtype=np.float32).reshape(n, n_bands)
    patches = make_patches(frames, patch_size=patch_size, patch_hop=patch_hop)
    k = n_patches(n, patch_size=patch_size, patch_hop=patch_hop)
    assert patches.shape == (k, patch_size, n_bands) and patches.dtype == np.float32
    assert patches.flags["C_CONTIGUOUS"]
    for i in (0, 1, k - 1):  # patch i is frames [i * hop, i * hop + size)
        np.testing.assert_array_equal(patches[i], frames[i * patch_hop: i * patch_hop + patch_size])
    assert (k - 1) * patch_hop + patch_size <= n < k * patch_hop + patch_size  # the incomplete last one is dropped


def test_frame_patch_and_time_arithmetic():
    # 30 s at 16 kHz: 1876 MusiCNN frames -> 19 patches with Essentia's hop 93, 10 with hop 187 (3 s)
    assert n_frames(480_000, hop_size=256) == 1876
    assert n_patches(1876, patch_size=187, patch_hop=93) == 19
    assert n_patches(1876, patch_size=187, patch_hop=187) == 10
    assert n_frames(0, hop_size=256) == 0 and n_frames(1, hop_size=256) == 2
    for hop, size in ((256, 187), (160, 96), (256, 128)):
        m = min_samples(hop_size=hop, patch_size=size)
        assert n_patches(n_frames(m, hop_size=hop), patch_size=size, patch_hop=1) == 1
        assert n_patches(n_frames(m - 1, hop_size=hop), patch_size=size, patch_hop=1) == 0
    np.testing.assert_allclose(patch_times(3, patch_hop=187, hop_size=256, sample_rate=16000), [0, 2.992, 5.984])
    np.testing.assert_array_equal(patch_starts(10, patch_size=4, patch_hop=3), [0, 3, 6])


def test_patching_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        make_patches(np.zeros(10), patch_size=2, patch_hop=1)
    with pytest.raises(ValueError, match="patch_hop"):
        make_patches(np.zeros((10, 3)), patch_size=2, patch_hop=0)
    with pytest.raises(ValueError, match="hop_size"):
        n_frames(100, hop_size=0)
    assert make_patches(np.zeros((3, 5)), patch_size=4, patch_hop=1).shape == (0, 4, 5)


def test_pool():
    e = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(pool(e, "mean"), [2, 4])
    np.testing.assert_allclose(pool(e, "max"), [3, 6])
    np.testing.assert_allclose(pool(e, how="meanstd"), [2, 4, 1, 2])
    assert pool(e).dtype == np.float32
    with pytest.raises(ValueError, match="choose one of"):
        pool(e, "median")
    with pytest.raises(ValueError, match="no patch"):
        pool(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="2-D"):
        pool(np.zeros(4))


@pytest.mark.parametrize("name", ["audioset-vggish-3", "discogs-effnet-bs64-1", "msd-musicnn-1"])
def test_missing_graph_names_file_url_and_folder(name, tmp_path):
    spec = get_spec(name)
    with pytest.raises(MissingModelError) as info:
        EmbeddingExtractor(name, models_dir=tmp_path / "models")
    msg = str(info.value)
    assert spec.filename in msg and spec.url in msg and str((tmp_path / "models").resolve()) in msg
    assert spec.url.startswith("https://essentia.upf.edu/models/") and spec.url.endswith(spec.filename)
    with pytest.raises(MissingModelError, match=spec.filename):
        EmbeddingExtractor(name, graph_path=tmp_path / "elsewhere.pb")


def test_wrong_kind_unknown_name_and_missing_location(tmp_path):
    with pytest.raises(ValueError, match="GenreHead"):
        EmbeddingExtractor("genre_tzanetakis-msd-musicnn-1", models_dir=tmp_path)
    with pytest.raises(ValueError, match="not a classification head"):
        GenreHead("audioset-vggish-3", models_dir=tmp_path)
    with pytest.raises(UnknownModelError, match="msd-musicnn-1"):
        EmbeddingExtractor("musicnn", models_dir=tmp_path)
    with pytest.raises(ValueError, match="models_dir"):
        EmbeddingExtractor("audioset-vggish-3")
    with pytest.raises(MissingModelError, match="genre_discogs400-discogs-effnet-1.pb"):
        GenreHead("genre_discogs400-discogs-effnet-1", models_dir=tmp_path)


# --------------------------------------------------------------------------------------
# essentia-tensorflow with fake graphs
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vggish(fake_graphs):
    if not HAS_ESSENTIA:
        pytest.skip("essentia-tensorflow is not installed")
    with EmbeddingExtractor("audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"], batch_size=4) as ex:
        yield ex


@needs_essentia
def test_vggish_patching_matches_essentia(vggish, fake_graphs, tmp_path):
    y16 = _noise(7.3, 16000, seed=1)
    emb, start_s = vggish.embed(y16, 16000)
    k = n_patches(n_frames(y16.size, hop_size=160), patch_size=96, patch_hop=93)
    assert emb.shape == (k, 128) and emb.dtype == np.float32 and vggish.dim == 128
    np.testing.assert_allclose(start_s, np.arange(k) * 93 * 160 / 16000)
    ref = _essentia_wrapper("TensorflowPredictVGGish", fake_graphs["audioset-vggish-3"], "model/vggish/embeddings",
                            y16, tmp_path)
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-4)
    # batching across clips changes nothing: the same clip alone, and among others
    others = vggish.embed_many([(_noise(3.0, 16000, seed=2), 16000), (y16, 16000), (_noise(1.2, 16000, seed=3), 16000)])
    np.testing.assert_allclose(others[1][0], emb, rtol=1e-5, atol=1e-5)


@needs_essentia
def test_effnet_fixed_batch_of_64(fake_graphs, tmp_path):
    y16 = _noise(70.0, 16000, seed=4)  # 69 patches: one full batch of 64 and one zero-padded
    with EmbeddingExtractor("discogs-effnet-bs64-1", graph_path=fake_graphs["discogs-effnet-bs64-1"]) as ex:
        emb, start_s = ex.embed(y16, 16000)
        short, _ = ex.embed(_noise(1.0, 16000, seed=5), 16000)  # padded up to one patch
    k = n_patches(n_frames(y16.size, hop_size=256), patch_size=128, patch_hop=62)
    assert emb.shape == (k, 1280) and k > 64 and short.shape == (1, 1280)
    np.testing.assert_allclose(np.diff(start_s), 62 * 256 / 16000)
    ref = _essentia_wrapper("TensorflowPredictEffnetDiscogs", fake_graphs["discogs-effnet-bs64-1"],
                            "PartitionedCall:1", y16, tmp_path)
    # Essentia's wrapper estimates the frame count one short when it pads the last batch,
    # and may drop the last complete patch; every patch it returns must be ours.
    assert k - 1 <= len(ref) <= k
    np.testing.assert_allclose(emb[: len(ref)], ref, rtol=1e-5, atol=1e-4)


@needs_essentia
def test_genre_head_with_fake_graph(fake_graphs, tmp_path):
    graph = tmp_path / "genre_tzanetakis-msd-musicnn-1.pb"
    graph.write_bytes(fake_graphs["genre_tzanetakis-msd-musicnn-1"].read_bytes())
    classes = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    graph.with_suffix(".json").write_text(json.dumps({"classes": classes}))
    e = np.random.default_rng(0).standard_normal((5, 200)).astype(np.float32)
    with GenreHead("genre_tzanetakis-msd-musicnn-1", models_dir=tmp_path) as head:
        assert head.classes == tuple(classes)
        p = head.predict(e)
        track = head.predict_track(e)
        with pytest.raises(ValueError, match=r"\(n, 200\)"):
            head.predict(np.zeros((3, 128), np.float32))
    z = e @ W_HEAD
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(track, p.mean(0), rtol=1e-6)
    # without the .json the registry's class names are used
    graph.with_suffix(".json").unlink()
    with GenreHead("genre_tzanetakis-msd-musicnn-1", graph_path=graph) as head:
        assert head.classes == get_spec("genre_tzanetakis-msd-musicnn-1").classes


@needs_essentia
def test_short_clips_without_padding_give_no_patch(fake_graphs):
    with EmbeddingExtractor("audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"], pad_short=False) as ex:
        emb, t = ex.embed(np.zeros(8000, np.float32), 16000)
        assert emb.shape == (0, 128) and t.shape == (0,)


@needs_essentia
def test_invalid_audio_is_rejected(vggish):
    with pytest.raises(ValueError, match="mono"):
        vggish.embed(np.zeros((2, 16000), np.float32), 16000)
    with pytest.raises(ValueError, match="floating-point"):
        vggish.embed(np.zeros(16000, np.int16), 16000)
    with pytest.raises(ValueError, match="NaN"):
        vggish.embed(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(ValueError, match="sample rate"):
        vggish.embed(np.zeros(16000, np.float32), 0)
    with pytest.raises(ValueError, match=r"clip 1"):
        vggish.embed_many([(np.zeros(16000, np.float32), 16000), (np.zeros(16000, np.float32), -1)])


@needs_essentia
def test_worker_reports_a_wrong_output_node(fake_graphs):
    with pytest.raises(EssentiaWorkerError, match="model/no_such_node"):
        EmbeddingExtractor(
            "audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"], output="model/no_such_node"
        )


@needs_essentia
def test_two_workers_split_the_clips_and_agree(vggish, fake_graphs):
    clips = [(_noise(2.0 + i, 16000, seed=20 + i), 16000) for i in range(5)]
    with EmbeddingExtractor("audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"], n_workers=2,
                            n_threads=1) as ex:
        assert len(ex._backends) == 2
        two = ex.embed_many(clips)
        split = ex.embed(*clips[4])  # one clip, two workers: its patches are shared out
        streamed = list(ex.embed_stream((k, y, sr) for k, (y, sr) in enumerate(clips)))
    one = vggish.embed_many(clips)
    assert len(two) == len(one) == 5
    for (a, ta), (b, tb) in zip(two, one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ta, tb)
    assert len(split[0]) > 1
    np.testing.assert_allclose(split[0], one[4][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(split[1], one[4][1])
    assert [k for k, _, _ in streamed] == list(range(5))
    for (_, a, ta), (b, tb) in zip(streamed, one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ta, tb)
    with pytest.raises(ValueError, match="isolate=True"):
        EmbeddingExtractor("audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"], n_workers=2,
                           isolate=False)


@needs_essentia
def test_a_dead_worker_is_reported_and_a_closed_model_refuses(fake_graphs):
    import os
    import signal

    ex = EmbeddingExtractor("audioset-vggish-3", graph_path=fake_graphs["audioset-vggish-3"])
    os.kill(ex._backends[0]._proc.pid, signal.SIGKILL)  # the worker this test started
    with pytest.raises(EssentiaWorkerError, match="died .*SIGKILL"):
        ex.embed(np.zeros(16000, np.float32), 16000)
    ex.close()
    with pytest.raises(EssentiaWorkerError, match="closed"):
        ex.embed(np.zeros(16000, np.float32), 16000)


# --------------------------------------------------------------------------------------
# the real MusiCNN graph
# --------------------------------------------------------------------------------------
def _original_musicnn() -> tuple[np.ndarray, np.ndarray]:
    """The original musicnn's output for the test track: penultimate (10, 200), taggram (10, 50)."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode("".join(_ORIGINAL_MUSICNN_B64))), "<f2").astype(np.float32)
    return raw[:2000].reshape(10, 200), raw[2000:].reshape(10, 50)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


@pytest.fixture(scope="module")
def musicnn_outputs():
    """Our penultimate embeddings and tag activations for the test track, 3 s patches."""
    if not HAS_ESSENTIA:
        pytest.skip("essentia-tensorflow is not installed")
    if not TRACK.is_file() or not (MUSICNN_DIR / "msd-musicnn-frozen.pb").is_file():
        pytest.skip(f"the shared MusiCNN graph and test track are absent ({MUSICNN_DIR})")
    from genrelab.io import load_audio

    y, sr = load_audio(TRACK, sr=None)
    out = {}
    for key, node in (("penultimate", PENULTIMATE), ("taggram", "model/Sigmoid")):
        with EmbeddingExtractor("msd-musicnn-frozen", models_dir=MUSICNN_DIR, output=node, patch_hop=187) as ex:
            out[key], out["start_s"] = ex.embed(y, sr)
    return out


def _check_against(reference_pen: np.ndarray, reference_tags: np.ndarray, ours: dict) -> None:
    from genrelab.embeddings.catalog import MSD_TAGS

    assert ours["penultimate"].shape == reference_pen.shape == (10, 200)
    r = _pearson_rows(ours["penultimate"], reference_pen)
    assert r.mean() >= 0.99 and r.min() >= 0.97, f"per-patch Pearson {np.round(r, 4)}"
    top = lambda g: {MSD_TAGS[i] for i in np.argsort(-g.mean(0))[:3]}  # noqa: E731
    assert top(ours["taggram"]) == top(reference_tags)


@needs_essentia
@needs_musicnn
def test_musicnn_agrees_with_original_musicnn(musicnn_outputs):
    pen, tags = _original_musicnn()
    _check_against(pen, tags, musicnn_outputs)
    np.testing.assert_allclose(musicnn_outputs["start_s"], np.arange(10) * 187 * 256 / 16000)


@needs_essentia
@needs_musicnn
def test_musicnn_agrees_with_shared_reference_file(musicnn_outputs):
    if not SHARED_REFERENCE.is_file():
        pytest.skip(f"{SHARED_REFERENCE} is absent")
    ref = np.load(SHARED_REFERENCE)
    if np.ptp(ref["penultimate"], axis=0).max() == 0:
        pytest.xfail(f"{SHARED_REFERENCE.name} is degenerate: its 10 patch rows are identical, which the original "
                     "musicnn never gives for this track; the test against _ORIGINAL_MUSICNN_B64 checks the real "
                     "numbers. Regenerate the file to make this test meaningful.")
    _check_against(ref["penultimate"], ref["taggram"], musicnn_outputs)


@needs_essentia
@needs_musicnn
def test_in_process_equals_worker_and_essentia_and_torch_coexists(tmp_path):
    """isolate=False loads Essentia into this process, where torch is already imported."""
    import torch

    from genrelab.io import load_audio

    y, sr = load_audio(TRACK, sr=16000, duration=12.0)
    kw = dict(models_dir=MUSICNN_DIR, output=PENULTIMATE)
    with EmbeddingExtractor("msd-musicnn-frozen", isolate=False, **kw) as ex:
        ours, _ = ex.embed(y, sr)
    with EmbeddingExtractor("msd-musicnn-frozen", isolate=True, **kw) as ex:
        worker, _ = ex.embed(y, sr)
    ref = _essentia_wrapper("TensorflowPredictMusiCNN", MUSICNN_DIR / "msd-musicnn-frozen.pb", PENULTIMATE, y, tmp_path)
    assert ours.shape == ref.shape == (n_patches(n_frames(y.size, hop_size=256), patch_size=187, patch_hop=93), 200)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(worker, ours, rtol=1e-5, atol=1e-5)
    x = torch.randn(8, 16, requires_grad=True)
    (torch.nn.functional.gelu(x @ x.T).sum()).backward()
    assert torch.isfinite(x.grad).all()


# The original musicnn 0.1.0 package (model "MSD_musicnn", input_length=3, no overlap) run on
# shared/audio/musicnn/TRWJAZW128F42760DD_test.mp3 with TensorFlow 2.15 and librosa 0.9.2 in a
# separate environment: the 10 x 200 penultimate layer (`bn_dense`, fetched directly from its
# graph) followed by the 10 x 50 taggram, as little-endian float16, zlib-compressed, base64.
# (musicnn's own `extractor(..., extract_features=True)` returns a constant `penultimate` under
# TensorFlow 2.x; its taggram matches the graph's to 1e-7.) Track-averaged top tags: blues,
# rock, folk.
_ORIGINAL_MUSICNN_B64 = (
    "eNpN14dXFOcaBnBFo4KAgEtf2MJW2L6zs1O+mV00N4DGhhq7RqNiRcUUeywxEtGgiTFqggURMMDuzM43ywJBPXA1xUKMXhvR"
    "aDRqNCoXS9QkcmeWyzH/wJwz53ee53m/KjaaISx58DHh4VLhVexudR/o8f3LpvNGeIr5vebh3Ck4mOhFTGfXYVn0b9iTOiKj"
    "97YQdiooNGThDtATS2NOemZChes3+JwPOTCeeV77NTuWKwcV3LfeYnhKc8PZzPzOMtxSMoyTw6lMK7/a+xP9PdBRA/2JgEJz"
    "uYO+icxcrgBH/L+AyrIaGA7GwJ7IeKobV8T9QT7yXYESvIeMBHsVU1gPe5/9kUe4i9RTbyY3ng8nr3mbvLGwjNd697FhdFh1"
    "NWf1D/b5uExOirj5Zv9YagTcyh/lWpipSKl3fJW0fqsTq20KnCVGWWSBFZ45tUsIWHvBvww5wus8o/kRONBncwg9n2/njjsm"
    "Qxr/PvCMOcKewC8iV43r0BJTEvsUJrE+7oFjFpdrHY+ZsO6IiR3qnOeRYOPAJ7b1ByP5ZFDO/1a7mbxZ3QH1Ve8DGHDVfIGP"
    "RprRW/4yjjU3sT+YJjrOwevIKz4t5Ybl2EmdAfpgb0M00+TMg5Wk6NGyw+bcD1/AFl7nNdqK+VooetSiO8EX9odYtssFjI3r"
    "sCF8CJsJ8sFMaiFFkGnMBH4mRIMeNy2iR4NzLPcHvcgnenznLBA8GjCG+xUsMIfWhyGtvB/9yLWBjnEP9H9IH4YA7fRQEvHc"
    "q/RuvAbOINshB1uB6DGNeou9Auen3wo0g0ZsMj+bFz0GwtX0AG4tP57fRz2seenRzb2AquaGIp0ed/a+L3j8O+hx3vxGTSFe"
    "6r2ESuufgQf+psAmdLlfFqgwFtcOIuzwgr+WOGXd4h/NZyPZWDb3EIgeE+2X8RHoTMczZmLVN9hM234vSxdhXR5v2mZx2f7Z"
    "1i1ghMXEtmPzPLncRnoD8kddJK+kF9jWND6iNJYO+LiuWPBYyXmcJ6qP2puYMu4c1sT2YEWPDrIYyRQ8elY0+A2wgztARDOL"
    "bXmwO9XLkQoHODWu/XCYQ/TogxTz0Cd6bAD3yam2J6V76UzXiEM9A8cDIewPuAf9ingG7mGdHlfdosdAIHrEE9v3z3N15iPR"
    "8dTUzAwWPJ6DR1Wh9R7Yyic5ptPfUpLMGpjgPgy3A9Fjs+8v3wtdCqVw1MAc0A5X2iyubtx+5js6xngFTnBK6xD6At7p0YzB"
    "jA2Zu/xG63i+mSoyvPS45H7H9dwkwTs9tvjXHmr2l7tEj3x0LJIleHhxaf02t5gPC3nPIQsMMLfXjSHFfCykX7CihwTfQGZz"
    "Gkr0eOrc7V8FRI8eWA8835MDV7lLAl0eW9BZXAnzTnm2eyjMOnCbnueZxx3KbCRFj93ucn7RoafENLIDhjUkkKIHjk9w01RB"
    "QxmXZY1C5htFj25UPh7mdsMLetHDB6uEvrpK5MGlwXwcRXbYuvLxqu0V7lKN6PELmkVxvkTkGt1B/FJfhRYZQtjPyCOgkNLS"
    "H+CdHmdp0YNnRY+R2Fgu33UcFT2anX2xZqY7wXB26lVbaH2Gs5VPwQ65hrk20QP9UfTir7J8nfmoAa3CV4YSNdBCtcMe5jCh"
    "r97wVYOf0q9Am76gLgk8dHblg6ksp338z57x/JegHL70SHXvpS761nkG+8YJHiX8xrpm/5lgPtbaWpinQl+FCR6AjGHaahGs"
    "EMoC99JrOC0Z7bvgvw5eQ0QPr91CnPdcC+ZDZV9KfIfozGJfLcHW+HLgM7D2QJfH3+wsbletzBRLJ3tMLA3meQbaW8Bi7BmM"
    "5BcCLzLr608psa/M/rmU6KHHtCjlqBLyoXZesz6Aoscg8mcsE7hhR4bo8atd9OiN5cEKXPQotd6t7vLowHMVDm46+xP3p+ME"
    "8a1vmvUoeBvc4hah7Y4Qtg3LxZIcevpjZxqzWj8TPqFEj+tBjzJT1EECZFhEj4/xCsGjwMZwWmqvfVPdc0crP0M/iJpBDwfC"
    "ftB1eNd+mMFndUdopb0G5lMo/AsbRSz2FXEVwf1ocBxhehF++3puYtV99m9don05cY/3GGJgPhhjfelxlBL3Yws32PciI5OL"
    "zHi3odm/lQz2FWxh3jeUetsc0vpLhJgPLbgLxf24xM/GxHyUOK9zosexKq8lm9sRzMfvzi26t50ZJtGjD3YiPQfuczrsXR7j"
    "jbO4j5Cpdg5/YDIJXvM8j5xn8XDdGKaam4LnsRW1N4HoERF4GPRIwV7R/QedCMs4Es06+MwhelxUm6pfFzzecchLDTCZCXrg"
    "eXBVcM9zkZce/zUV84gty/adY5V1M7LZtxmfiPenKvk54AwawiqAiXLjAVBlT2NC2ZmwhYpmujxOG3fYmgECRA8TvgVtZpZW"
    "MtwikiLW+LdhrfxXVVZwFRwjBvop11TQ5XGfulFHgHGWGlhCoabe9AAnbiviGJArePxh3YkG8DM2m+MCKubDReyr5GF87SAr"
    "CfrVdnlsrZomeJx0bBX2PN8h9hUSyPWXgi6P3/hSb4ngUYRjtQ+QCkzcjxWeGbsLgx59ybPecjian0MOhNncraBHMVFq/yDY"
    "V0fYQsPGyhzYHTU7ujzmCn1VwFhK8xGb4LEWn+cxB/Kcp3m/Vga7O2UI678T3POwhmZyDPKzx0hsZ9ZXfoyUcRq8iVWhosdy"
    "bqdzgrAfnxEX8HuG2z7R4xTIg+fSRY9C/UuPPaYeXKt/GDYbM/p7od/6BrJu/D7YhESRb30Vwp5CbhPPCRtoEzyKuJnwbfoA"
    "1+UxDF94oAOcCHosB2eEfNgRhmvAPyBC69eA9Y523zZyiuug4HEb3Ca7PPJAQe0lkC/kI1TYjz1gjuM+ViT883L0CvyR/91Z"
    "5F2DTuYRi+hRiO9iWrlC4x00HoysfZmPXHoWMOKih5ScLazB0EajJtYpevjRFmaMv9Tbj1rmL3WWIU2BeUSnx5bqdofocYtW"
    "CX31OTfI+EXVROeSYF9tNH/jXIp2ekTyK2EOHAVWMF0ex7hZ3J3aibsJrDdvYqHgMcmy1HSaX48vM3ssn6Gn6x8J+WjXf+97"
    "QbR6VnLV6HZmOz/EWcYlEFHgPSK452w9acM2cDpbiWOnfa1R9KhE8+Aah+gxvHYZ0uUR6ivmP2eHOjawRv9QrMGx2fovcixl"
    "CKzGWGHPRxJP8BHYAuqgrXM/fqcuCX3lPyh6vOq9z14jCpyiR1/qIdHMFFkZLp1ahIbW9wSt/CU4hRjpGiLcu1Z69+4uj7sO"
    "ZeA4eM1XA49h7fAmUYhNQw6XqagqcAWexT71jXOGC3uuNYseFBaC7PLH18q5NlDsf+lxi6pBqznRA3GK+XjwdbPfGOwrzNMi"
    "XHml3h2UtP4uEPuqF9XpsYLv7RQ9vgJaXuyrBBDr46vPB+/dJ8Y+eD9C9BhtvQqeHcyBl8lS/p8ek7kx/sagh1noK2V1G3mp"
    "OmRvJI+T0/A7Df8GnflYF7yvLuOixx68jDOBJjaxVPQo9Onsi4V8HMs4ZH+rxsCJHuOE/ZgGOj0uEl0e26zFfA4r7jmCjAY3"
    "nTVYmqscz2msxiwwhH0MzoASsNxtQzo9fnW93I+zwvujgp6iFT140kY1M4+FPe/rHmANrZ8peFzRHHcdcr8h3Lu76A3mLo9v"
    "8DkNZvcEZw3cTLTDxY7nwr37t30mdUvwOIMX1P2EhRJde+6Dclr0GM+vBY3MS49G12VQzY2Ag33TfaKHT9iPWlr0CGdbmDay"
    "1PuK4PE46NEU7KuetuFMZbCvTFRyQPSQEtMc2dwUt+ixzHeDzDaIHo/VJirGngM9VKmny+OIdxZ3C37oSwI7zCb2ieDxrX0b"
    "dcD5JBDJ36YUaOwhK93pMd8lehwhrMgM/saBMu49sok9FRA9Psbwmp6Cx93a+7wBDrB4nNFMsnBfjSY7PVYS/8yHFPbMOAXt"
    "yKdUGBGJZLk+ByMah6BhNSHsbuwj2k/cAZf/71Ed9HjPK3qMIsZyelcAET12gb5CPoYLHmdBAQitP0y08nVYDJ1Jt7kG+l9z"
    "5+pXIJ0efdFfaneAOUgNXCv01Wl/FHm0Ms+2lbpBX4HhsHvATpyjujyy8Gqwy39aeH+oya/5lx436cF0NRcQPD5DRA+ZkI9P"
    "gvdVCNLCjHSWet8B0nqaEj3+DnqkEU74pWOqcF9FkO86RI9+rA5kc0uC+/GXJQ1d4Rc91mAMliPcV2fpfPyf+ZgfuOMP0FBl"
    "YgcL91UunEzvwS8LHu3UdWPeoavUKmcHvFOHBu/dzajSsp33V5VxB8nD1i+CHlHgHNpGuuE5Xryv4tGlllJ9YUakZapik744"
    "Lk4pUa03vK7BpHK1VrFC/7UySVut2ySdKEfsT2TWNMpqlUpVn1ripavTzhg3azakpBg2xs1VOyXZGb2VfOy5+O9lCZIxcWn6"
    "u6pJkhL1SvmjyHDpYMu76g2a1/X2hN/UWdHOlEny3SarfIBkX8pT+Q8ZRFqb4gtVhGRUUg9znTRWdt3EJISozqMJSXvjwzOS"
    "5CWJw80n+p1Oi5JMMCbLNsa0xWco0sPnRj1SnVLboiel5CRn9ZmbNE83Uv6TlEylYt5UaiNuxGdKok2TUlZGrUmcIFOpF8t7"
    "xy6WT43U9h9mGSFRJ6+2BCKvqU85QqN3xsq1+5J+jB9sGhU+SX4zKhUxK4aG/y35RvpXz5bQgOywEoalSaj4uJC0hBnWeer7"
    "moP6wbFlmvzImdJDcsJwTa5NCE/+Up5pOqtsUrakhUWnJU81v548S7ralJt0Xn0AXZm6KG6N7q68I7HKKO17Ux0Rs8ZgkJ2K"
    "QhOiZdGhA2MH6U7rmMj0VKf0ec/qxKO2cu3kjBtGNqVcPUqSrDih7q3vp3oqO6PIU7QZlyguavI0sYm8nLCek+9QYOYORZWy"
    "t22hcqRsuOFHdUHiNcPJuGTdMclb6WdSNZLYhE3yxqhhUrthlwbEHFVmyLaEj0sOt+eqkgwppv6KJQpLbJx8kPY9Qw9FiiJB"
    "niWjjEAxQGdI00hjlBvNBvl2+UkDq1mskFvfVepkMfrphk2x+ennEwmtLf6BYl3y5/0XJHg1hGShdKrhZ83kqAJFuvRyxJDk"
    "P5Fn6uf6P9NHpSyTfyl5kfxALVUfT9meUiPF5Hr7Hm2T2iRPT1iV1pjeTd4ojdDt0hXoRtq3ahyJNmWq5kr/AboZSdqM/gmf"
    "qt5I1sRYk69qNkcdlX5geM9UEd1fvik5oi+ZlGt7rBqjb8kIlW1SDE3oI1uq+kR7PfWBtD41X24xbdHsU2coxya+LpeZF6Z2"
    "yFr0FqVHuQJLVT5NnK7fo2mMrTA8To3QpiTO1d5N3CUZkDBfVyGZlThbV6DZEVspW5X8fj9v0i6LTlWl+a++e/8S9Z+RR4W/"
    "OaYZJXs79o/EufIvDZsVJ5WRqkeRNQmrLR9KU1OGZIxPGCRPwYuk52OeZByXhSb2Mfv6rVbt7/9W+tLEK1HfxP0qO9qnLjpH"
    "tUR1qd++lE3JTM+3E8dYnioVqjTVieidyumRK5KfpfLGIdKLcT0St8hTjYhuY8o5+bMIbdJ+/T3pdOmC9N/jv097Bb+e8nlU"
    "utqY8nPcGWN+dKVqSP83dZOkETGpcctVfXotkOjVp9QzYrsl7Em41MOQ8D+DyfOb"
)
