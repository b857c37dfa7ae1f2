"""Shared fixtures: paths, the optional ../shared folder, tiny synthetic signals, and copies of the
repository for tests that run the real pipeline (``copy_repository``, ``run_in``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BIN = Path(sys.executable).parent  # genrelab, dvc and pytest of the environment running the tests


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


LIBROSA_GUFUNC_MODULES = ("librosa.util.utils", "librosa.core.audio", "librosa.core.pitch", "librosa.beat")
"""librosa's modules with numba ``@guvectorize(cache=True)`` functions, compiled when imported."""


def pytest_configure(config):
    """Import librosa's gufunc modules once in the main pytest process, before xdist starts its
    workers: two processes compiling one gufunc at once can corrupt its cache for good (numba
    issue #10128; it crashed a fresh-clone run in ``librosa.core.pitch``, twice in one run)."""
    if hasattr(config, "workerinput"):  # an xdist worker: the main process has done it
        return
    from genrelab.cluster import import_here

    import_here(LIBROSA_GUFUNC_MODULES)


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared test material sits beside the repository only on "
                    "the project's own machines)")
    return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def in_process_compute():
    """Per-track maps (``genrelab.compute.map_tracks``) run in this process for the test's duration."""
    from genrelab.compute import ComputeSettings, configure, default_settings

    before = default_settings()
    configure(ComputeSettings(workers=1))
    yield
    configure(before)


@pytest.fixture(scope="session", autouse=True)
def _private_store(tmp_path_factory):
    """Every test, and every command a test runs, writes the per-track store into a temporary
    folder, never into ~/.cache (a test that needs another location sets GENRELAB_STORE itself)."""
    old = os.environ.get("GENRELAB_STORE")
    os.environ["GENRELAB_STORE"] = str(tmp_path_factory.mktemp("store"))
    yield
    if old is None:
        os.environ.pop("GENRELAB_STORE", None)
    else:
        os.environ["GENRELAB_STORE"] = old


def repo_env(**extra: str) -> dict[str, str]:
    """Environment of a command run in a copied repository: this environment's tools first on
    PATH, a git identity, no DVC analytics, warnings-only logs; ``extra`` overrides."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for key, value in (("GIT_AUTHOR_NAME", "genrelab-test"), ("GIT_AUTHOR_EMAIL", "test@genrelab.invalid"),
                       ("GIT_COMMITTER_NAME", "genrelab-test"), ("GIT_COMMITTER_EMAIL", "test@genrelab.invalid")):
        env.setdefault(key, value)
    env["DVC_NO_ANALYTICS"] = "1"
    env["GENRELAB_LOG"] = "WARNING"
    return {**env, **extra}


def run_in(cmd: list[str], cwd: Path, *, check: bool = True, timeout: float = 900,
           **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with :func:`repo_env`; on ``check``, a failure raises with its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=repo_env(**extra_env), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_repository(dest: Path, *, dataset: dict | None = None, slice_s: float | None = None,
                    message: str = "tiny") -> Path:
    """A git repository at ``dest`` holding this checkout's tracked and untracked, non-ignored files.

    Parameters
    ----------
    dest : Path
        An empty folder.
    dataset : dict, optional
        Values written over ``conf/dataset/synthetic.yaml`` (e.g. a tiny dataset).
    slice_s : float, optional
        ``slicing.length_s`` written into ``conf/config.yaml``.
    message : str
        Message of the one commit.

    Returns
    -------
    dest : Path
        With ``params.yaml`` regenerated from its ``conf/`` and everything committed.
    """
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for rel in files:
        if rel and (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    if dataset:
        conf = dest / "conf/dataset/synthetic.yaml"
        conf.write_text(yaml.safe_dump({**yaml.safe_load(conf.read_text()), **dataset}, sort_keys=False))
    if slice_s is not None:
        conf = dest / "conf/config.yaml"
        cfg = yaml.safe_load(conf.read_text())
        cfg["slicing"]["length_s"] = slice_s
        conf.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run_in([str(BIN / "genrelab"), "params"], dest)
    run_in(["git", "init", "-q", "-b", "main"], dest)
    run_in(["git", "add", "-A"], dest)
    run_in(["git", "commit", "-q", "-m", message], dest)
    return dest
