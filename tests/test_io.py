import numpy as np
import pandas as pd
import pytest

from genrelab.io import AudioDecodeError, atomic_dir, atomic_path, load_audio, write_audio, write_json


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "feat"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feat"]
    assert sorted(p.name for p in target.iterdir()) == ["a"]


def test_write_json_converts_numpy(tmp_path):
    write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert (tmp_path / "m.json").read_text().replace(" ", "").replace("\n", "") == '{"a":0.5,"b":[0,1]}'


def test_resample_and_mixdown(tmp_path):
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    write_audio(tmp_path / "s.flac", stereo, 48000)
    y, sr = load_audio(tmp_path / "s.flac", sr=16000)
    assert sr == 16000 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    assert np.abs(y).max() == pytest.approx(0.25, abs=0.02)
    y2, sr2 = load_audio(tmp_path / "s.flac", sr=None, mono=False)
    assert sr2 == 48000 and y2.shape == (2, 48000)


@pytest.mark.parametrize("content", [b"", b"not audio at all" * 10])
def test_unreadable_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match="bad.wav"):
        load_audio(path)
    with pytest.raises(AudioDecodeError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("channels", [1, 2])
def test_non_finite_samples_are_refused_naming_the_file(tmp_path, bad, channels):
    import soundfile as sf

    from genrelab.io import AudioRejected

    y = 0.1 * np.sin(np.linspace(0, 200, 8000 * channels)).reshape(-1, channels).astype(np.float32)
    y[4000, channels - 1] = bad
    sf.write(tmp_path / "float.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioRejected, match=r"float\.wav.*non-finite"):
        load_audio(tmp_path / "float.wav", sr=None)


def test_a_loud_negative_peak_is_refused_and_mono_is_the_channel_itself(tmp_path):
    import soundfile as sf

    from genrelab.io import AudioRejected

    y = (0.1 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)
    sf.write(tmp_path / "one.wav", y, 8000, subtype="FLOAT")
    got, _ = load_audio(tmp_path / "one.wav", sr=None)
    np.testing.assert_array_equal(got, y)
    assert got.flags.c_contiguous and got.dtype == np.float32
    y[100] = -1e4  # the peak is the most negative sample
    sf.write(tmp_path / "loud.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioRejected, match="implausible sample peak"):
        load_audio(tmp_path / "loud.wav", sr=None)


def test_every_shared_recording_decodes(shared_dir):
    manifest = pd.read_csv(shared_dir / "audio" / "MANIFEST.csv")
    for row in manifest.itertuples():
        y, sr = load_audio(shared_dir / "audio" / row.path, sr=22050, duration=5.0)
        assert sr == 22050
        assert len(y) == pytest.approx(min(row.duration_s, 5.0) * 22050, rel=0.05, abs=2000), row.path
        assert np.isfinite(y).all() and np.abs(y).max() > 0, row.path


def test_outputs_get_the_modes_of_ordinary_files(tmp_path):
    """Atomic writers go through mkstemp/mkdtemp (0600/0700); outputs are 0644/0755 under umask 022."""
    import os
    import stat

    from genrelab.io import atomic_dir, write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "x.txt").write_text("x")
        assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
    finally:
        os.umask(old)
