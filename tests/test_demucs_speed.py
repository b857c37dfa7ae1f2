"""Demucs at the hardware's pace: precision, TF32 switches, batch size from memory, decode-ahead stream.

The CUDA-only checks are marked ``gpu``; the same code paths (autocast, float32 spectra,
batching, the decode threads) are exercised on the CPU with a tiny random model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from genrelab.separation import DemucsSeparator, SeparationParameterError
from genrelab.separation.demucs import (
    _fp32_matmul,
    _spectral_in_fp32,
    plan_batch_size,
    resolve_precision,
    save_tiny_demucs,
)

SR = 22050
SIG = "0123abcd"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demucs_speed")
    save_tiny_demucs(folder, signature=SIG, bag=None, segment=1.0)
    return folder


@pytest.fixture(scope="module")
def exact(repo) -> DemucsSeparator:
    return DemucsSeparator(SIG, repo=repo, device="cpu", progress=False, precision="fp32")


def clip(seconds: float, *, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((2, int(seconds * SR)))).astype(np.float32)


def rel_l2(a: dict, b: dict) -> float:
    num = sum(float(np.sum((a[k] - b[k]) ** 2)) for k in a)
    den = sum(float(np.sum(b[k] ** 2)) for k in b)
    return (num / den) ** 0.5


def test_precision_resolves_by_device():
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp16", "cpu") == "fp16"
    with pytest.raises(SeparationParameterError, match="precision"):
        resolve_precision("half", "cpu")


def test_auto_settings_on_cpu(repo):
    sep = DemucsSeparator(SIG, repo=repo, device="cpu", progress=False)
    assert sep.precision == "fp32" and sep.batch_size == 1
    assert "precision='fp32'" in repr(sep)
    with pytest.raises(SeparationParameterError, match="batch_size"):
        DemucsSeparator(SIG, repo=repo, device="cpu", batch_size="big")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_path_close_to_fp32(repo, exact, precision):
    # The autocast path, on the CPU: the network in low precision, the spectra in float32.
    sep = DemucsSeparator(SIG, repo=repo, device="cpu", progress=False, precision=precision)
    y = clip(1.5, seed=1)
    out, ref = sep.separate(y, SR), exact.separate(y, SR)
    assert all(v.dtype == np.float32 for v in out.values())
    assert 0 < rel_l2(out, ref) < 1e-2


def test_spectra_stay_float32_under_autocast(repo):
    sep = DemucsSeparator(SIG, repo=repo, device="cpu", progress=False, precision="bf16")
    model = sep.model
    _spectral_in_fp32(model)  # twice is harmless
    x = torch.randn(1, 2, 4096)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = model._spec(x.bfloat16())
        assert z.dtype == torch.complex64
        m = torch.view_as_real(z).permute(0, 1, 4, 2, 3).reshape(1, -1, *z.shape[-2:])
        m = m[:, None].expand(1, len(model.sources), *m.shape[1:]).reshape(1, len(model.sources), -1, *z.shape[-2:])
        back = model._ispec(model._mask(z, m.bfloat16()), 4096)
    assert back.dtype == torch.float32


def test_fp32_matmul_switches_restore():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    with _fp32_matmul(tf32=False):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    with _fp32_matmul(tf32=True):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    assert (matmul.fp32_precision, conv.fp32_precision) == before


def test_plan_batch_size():
    gib = 2**30
    # 0.45 GiB per clip, 0.2 GiB fixed, 100 GiB free -> 0.7 * 100 / 0.45 ~ 155 -> capped at 128
    assert plan_batch_size(100 * gib, int(0.65 * gib), int(1.1 * gib)) == 128
    assert plan_batch_size(10 * gib, int(0.65 * gib), int(1.1 * gib)) == 15
    assert plan_batch_size(gib // 4, int(0.65 * gib), int(1.1 * gib)) == 1


def test_stream_matches_one_by_one_and_isolates_bad_clips(repo, exact):
    sep = DemucsSeparator(SIG, repo=repo, device="cpu", progress=False, precision="fp32", batch_size=2)
    clips = {0: clip(1.5, seed=0), 1: clip(1.5, seed=1), 3: clip(1.5, seed=3), 4: clip(0.7, seed=4),
             5: clip(1.5, seed=5)}
    threads = set()

    def load(i: int) -> np.ndarray:
        threads.add(threading.current_thread().name)
        if i == 2:
            raise ValueError("track 2 is not audio")
        return clips[i]

    out = dict(sep.separate_stream(range(6), load, SR, decode_threads=2))
    assert sorted(out) == list(range(6))
    assert isinstance(out[2], ValueError)
    for i, y in clips.items():
        ref = exact.separate(y, SR)
        for stem in sep.stems:
            np.testing.assert_allclose(out[i][stem], ref[stem], atol=1e-5)
    assert threads and all(t.startswith("demucs-decode") for t in threads)  # decoded off the main thread


def test_stream_batch_failure_falls_back_to_single_clips(repo):
    sep = DemucsSeparator(SIG, repo=repo, device="cpu", progress=False, precision="fp32", batch_size=3)
    bad = np.full((2, 30000), np.nan, np.float32)  # fails the input check inside the batch
    items = [clip(1.4, seed=0), bad, clip(1.4, seed=2)]
    out = dict(sep.separate_stream(range(3), items.__getitem__, SR))
    assert isinstance(out[1], SeparationParameterError)
    assert set(out[0]) == set(sep.stems) and set(out[2]) == set(sep.stems)


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_mixed_precision_within_1e2_of_fp32(repo, exact, precision):
    sep = DemucsSeparator(SIG, repo=repo, device="cuda", progress=False, precision=precision)
    y = clip(3.0, seed=7)
    assert rel_l2(sep.separate(y, SR), exact.separate(y, SR)) < 1e-2


@pytest.mark.gpu
@needs_cuda
def test_cuda_auto_batch_from_free_memory(repo):
    sep = DemucsSeparator(SIG, repo=repo, device="cuda", progress=False)
    assert sep.precision == "fp16" and 1 <= sep.batch_size <= 128
    free, _ = torch.cuda.mem_get_info()
    assert sep.batch_size > 1 or free < 2**30
