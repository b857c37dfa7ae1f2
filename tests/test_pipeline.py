"""Smoke tests of the real pipeline: `dvc repro` and `dvc exp run` in a temporary git repository.

The repository's tracked files are copied to a temporary folder with a tiny dataset
configuration (4 genres x 6 tracks x 6 s) written into conf/, so each run takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SHARED, copy_repository

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = {"n_tracks_per_genre": 6, "duration_s": 6.0, "tracks_per_artist": 2,
        "genres": ["classical", "disco", "metal", "reggae"]}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "genrelab-test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@genrelab.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "genrelab-test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@genrelab.invalid")
    env["DVC_NO_ANALYTICS"] = "1"
    env["GENRELAB_LOG"] = "WARNING"
    store = _STORE.get("dir") or os.environ.get("GENRELAB_STORE")  # this module's, or the calling test's
    assert store, "a test running the pipeline must point GENRELAB_STORE at a temporary folder"
    env["GENRELAB_STORE"] = str(store)  # never ~/.cache in tests
    return env


_STORE: dict[str, Path] = {}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def _repo_copy(tmp_path_factory) -> Path:
    _STORE["dir"] = tmp_path_factory.mktemp("store")
    return copy_repository(tmp_path_factory.mktemp("repo"), dataset=TINY, slice_s=2.0, message="tiny pipeline")


@pytest.fixture(scope="module")
def baseline(_repo_copy) -> subprocess.CompletedProcess:
    """`dvc repro` of the default configuration, committed: the state every test starts from."""
    proc = _dvc(_repo_copy, "repro")
    run(["git", "add", "-A"], _repo_copy)
    run(["git", "commit", "-q", "-m", "baseline run", "--allow-empty"], _repo_copy)
    return proc


@pytest.fixture
def tiny_repo(_repo_copy, baseline) -> Path:
    """The tiny repository at its baseline run, whatever an earlier test's experiment left in the
    workspace (so the tests pass in any order, alone or together)."""
    if run(["git", "diff", "--quiet", "HEAD"], _repo_copy, check=False).returncode != 0:
        run(["git", "reset", "-q", "--hard", "HEAD"], _repo_copy)
        _dvc(_repo_copy, "checkout", "--force")
    return _repo_copy


def _dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], repo, check=check)


def test_repro_runs_end_to_end_and_writes_metrics(tiny_repo, baseline):
    log = baseline.stdout + baseline.stderr
    assert "is empty" not in log                                  # no empty-output warnings
    assert "\r" not in log                                         # no progress bars in a log
    metrics = json.loads((tiny_repo / "metrics/eval.json").read_text())
    assert {"acc", "acc_lo", "acc_hi", "f1", "slice_acc", "slice_f1", "tracks"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("acc", "acc_lo", "acc_hi", "f1", "slice_acc"))
    assert metrics["acc_lo"] <= metrics["acc"] <= metrics["acc_hi"]
    assert metrics["acc"] > 0.25  # 4 genres: chance is 0.25
    assert metrics["tracks"] >= 4
    details = json.loads((tiny_repo / "metrics/details/eval.json").read_text())
    assert set(details["track_mean"]["f1"]) == set(TINY["genres"])
    assert details["track_mean"]["accuracy"] == pytest.approx(metrics["acc"], abs=5e-4)
    per_genre = (tiny_repo / "plots/per_genre.csv").read_text().splitlines()
    assert per_genre[0] == "genre,f1,f1_vote,f1_slice,n_tracks" and len(per_genre) == 5
    preds = (tiny_repo / "plots/predictions.csv").read_text().splitlines()
    assert preds[0].startswith("track_id,actual,predicted")
    assert (tiny_repo / "plots/confusion.png").read_bytes()[:4] == b"\x89PNG"
    features = json.loads((tiny_repo / "metrics/details/features.json").read_text())
    assert features["n_tracks"] == 24 and features["n_slices"] == 24 * 3  # every track, whatever the split
    assert features["computed"] + features["reused"] == 24
    assert json.loads((tiny_repo / "metrics/features.json").read_text()) == {"tracks": 24}
    assert (tiny_repo / "data/separated.csv").is_file()
    assert json.loads((tiny_repo / "metrics/dataset.json").read_text()) == {"tracks": 24}
    split = json.loads((tiny_repo / "metrics/details/split.json").read_text())   # the split actually made
    assert split["n_tracks_grouped_by_artist"] == 24 and split["n_tracks_grouped_by_track"] == 0
    assert split["n_test"] == metrics["tracks"]
    ci = details["track_mean"]["accuracy_ci95"]
    assert ci["low"] < details["track_mean"]["accuracy"] <= ci["high"]
    # every metrics file holds numbers only, and is an ordinary file (0644)
    for path in [*(tiny_repo / "metrics").glob("*.json"), *(tiny_repo / "metrics/details").glob("*.json")]:
        def walk(node, name=path.name):
            if isinstance(node, dict):
                for v in node.values():
                    walk(v, name)
            else:
                assert isinstance(node, (int, float)), f"{name}: non-numeric {node!r}"
        walk(json.loads(path.read_text()))
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_dvc_metrics_show_fits_120_columns(tiny_repo):
    shown = _dvc(tiny_repo, "metrics", "show").stdout
    width = max(len(line) for line in shown.splitlines())
    assert width <= 120, shown
    assert "metrics/eval.json" in shown and "acc_lo" in shown


def _ran(out: str) -> set[str]:
    """Stages that ran, less the ``source`` probe (always runs: it only lists dataset.source)."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")} - {"source"}


def test_second_repro_does_nothing(tiny_repo):
    out = _dvc(tiny_repo, "repro").stdout
    assert not _ran(out), out


def test_changing_the_model_reruns_only_train_and_evaluate(tiny_repo):
    out = _dvc(tiny_repo, "exp", "run", "-S", "model=logreg").stdout
    assert _ran(out) == {"train", "evaluate"}, out
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    assert params["model"]["name"] == "logreg"
    assert params["dataset"]["n_tracks_per_genre"] == TINY["n_tracks_per_genre"]


def test_kfold_over_all_folds_in_one_experiment(tiny_repo):
    out = _dvc(tiny_repo, "exp", "run", "-S", "split=kfold", "-S", "split.fold=all", "-S", "split.n_folds=3",
               "-S", "model=logreg").stdout
    assert "Running stage 'train'" in out
    assert "Running stage 'features'" not in out, out   # the features hold every track, whatever the split
    assert json.loads((tiny_repo / "metrics/eval.json").read_text())["tracks"] == 24
    metrics = json.loads((tiny_repo / "metrics/details/eval.json").read_text())
    assert metrics["n_tracks"] == 24   # every track, predicted by the fold that held it out
    assert set(metrics["per_fold"]) == {"fold_0", "fold_1", "fold_2"}
    assert sum(f["n_tracks"] for f in metrics["per_fold"].values()) == 24
    bundle = json.loads((tiny_repo / "data/model/bundle.json").read_text())
    assert bundle["folds"] == [0, 1, 2] and len(bundle["members"]) == 3
    preds = (tiny_repo / "plots/predictions.csv").read_text().splitlines()
    assert preds[0].startswith("track_id,fold,actual,predicted") and len(preds) == 25


def _entries(transform: str) -> int:
    root = _STORE["dir"] / transform
    return sum(1 for meta in root.glob("*/*/meta.json")) if root.is_dir() else 0


def _kill_during_separation(repo: Path, args: list[str], transform: str, n: int) -> tuple[int, str]:
    """``dvc exp run`` killed with -9 (dvc and its stage) once two tracks are in the store, then
    run again; returns the number of tracks finished before the kill and the second run's log."""
    import signal
    import time

    start = _entries(transform)
    proc = subprocess.Popen([str(BIN / "dvc"), "exp", "run", *args], cwd=repo, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    while _entries(transform) < start + 2 and proc.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.01)
    if proc.poll() is not None:
        raise AssertionError(f"dvc exp run ended before the kill:\n{proc.stdout.read().decode()[-3000:]}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _entries(transform) - start
    assert 0 < finished < n, f"the kill came too late to test anything ({finished} of {n} finished)"
    out = _dvc(repo, "exp", "run", *args).stdout
    assert _entries(transform) == start + n
    return finished, out


@pytest.mark.parametrize("overrides", [
    ["model=cnn", "model.train.max_epochs=2"],
    ["model=hmm", "model.n_iter=3"],
])
def test_deep_and_sequence_models_run_in_the_pipeline(tiny_repo, overrides):
    args = [a for o in overrides for a in ("-S", o)]
    _dvc(tiny_repo, "exp", "run", *args)
    metrics = json.loads((tiny_repo / "metrics/eval.json").read_text())
    assert 0.0 <= metrics["acc"] <= 1.0
    bundle = json.loads((tiny_repo / "data/model/bundle.json").read_text())
    assert bundle["model"] == overrides[0].split("=")[1] and bundle["input"] == "frames"


@pytest.mark.parametrize("pooling, model", [("none", "svm_grid"), ("mean", "svm")])
def test_musicnn_embeddings_with_svms(tiny_repo, pooling, model):
    pytest.importorskip("essentia", reason="essentia-tensorflow is not installed (pip install '.[embeddings]')")
    models_dir = SHARED / "models" / "musicnn"
    if not (models_dir / "msd-musicnn-frozen.pb").is_file():
        pytest.skip(f"{models_dir} is absent: no MusiCNN graph to run")
    _dvc(tiny_repo, "exp", "run", "-S", "features=musicnn", "-S", "features.model=msd-musicnn-frozen",
         "-S", f"features.pooling={pooling}", "-S", f"models.dir={models_dir}", "-S", f"model={model}")
    metrics = json.loads((tiny_repo / "metrics/details/eval.json").read_text())
    info = json.loads((tiny_repo / "data/features/info.json").read_text())
    assert len(info["feature_names"]) == 200
    assert 0.0 <= metrics["track_mean"]["accuracy"] <= 1.0
    if pooling == "mean":  # one row per track
        assert metrics["n_slices"] == metrics["n_tracks"]
    else:
        assert metrics["n_slices"] > metrics["n_tracks"]


def test_missing_embedding_model_names_the_file(tiny_repo, tmp_path):
    pytest.importorskip("essentia", reason="essentia-tensorflow is not installed (pip install '.[embeddings]')")
    proc = _dvc(tiny_repo, "exp", "run", "-S", "features=vggish", "-S", f"models.dir={tmp_path}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "audioset-vggish-3.pb" in out and "essentia.upf.edu" in out


def test_demucs_variants_share_one_separation_that_survives_kill_9(tiny_repo, tmp_path):
    """Demucs through the real loading code (a tiny model saved in demucs' own format):
    demucs_percussive separates (killed with -9 midway, then run again: no finished track is
    separated twice); switching to demucs_harmonic does not separate again."""
    pytest.importorskip("demucs", reason="demucs is not installed (make setup installs it)")
    from genrelab.separation.demucs import save_tiny_demucs

    repo = tmp_path / "demucs_repo"
    save_tiny_demucs(repo, signature="0123abcd", bag="tinybag")
    common = ["-S", f"separation.demucs.repo={repo}", "-S", "separation.demucs.model=tinybag",
              "-S", "separation.demucs.device=cpu"]
    finished, out = _kill_during_separation(tiny_repo, ["-S", "variant=demucs_percussive", *common], "demucs", 24)
    assert "Running stage 'separate'" in out, out
    sep = json.loads((tiny_repo / "metrics/details/separation.json").read_text())
    assert (sep["reused"], sep["computed"], sep["failed"]) == (finished, 24 - finished, 0)
    assert sep["quality"]["n_tracks"] == 24  # SDR against the generator's true stems
    out = _dvc(tiny_repo, "exp", "run", "-S", "variant=demucs_harmonic", *common).stdout
    assert "Running stage 'separate'" not in out and "Running stage 'features'" in out, out


def test_missing_demucs_weights_name_the_file(tiny_repo, tmp_path):
    pytest.importorskip("demucs", reason="demucs is not installed (make setup installs it)")
    proc = _dvc(tiny_repo, "exp", "run", "-S", "variant=demucs_percussive", "-S",
                f"separation.demucs.repo={tmp_path}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "955717e8-8726e21a.th" in out and str(tmp_path) in out


def test_a_bad_value_fails_in_seconds_before_params_yaml_changes(tiny_repo):
    """The composition itself validates (conf/config.yaml's ${genrelab_check:}), so DVC stops
    before writing params.yaml or running a stage; the message names the key."""
    import time

    before = (tiny_repo / "params.yaml").read_bytes()
    t0 = time.monotonic()
    proc = _dvc(tiny_repo, "exp", "run", "-S", "model.C=abc", "-S", "slicing.length_s=3", check=False)
    seconds = time.monotonic() - t0
    assert proc.returncode != 0
    assert "model.C: expected a number, got 'abc'" in proc.stdout + proc.stderr
    assert "Running stage" not in proc.stdout
    assert (tiny_repo / "params.yaml").read_bytes() == before
    assert seconds < 15, f"{seconds:.1f} s"          # about 2 s on a quiet machine


def test_repro_after_editing_conf_says_to_run_genrelab_params(tiny_repo):
    path = tiny_repo / "conf/model/svm.yaml"
    original = path.read_text()
    try:
        path.write_text(original.replace("C: 10.0", "C: 5.0"))
        proc = _dvc(tiny_repo, "repro", check=False)
        assert proc.returncode != 0
        assert "params.yaml is older than conf/" in proc.stderr and "genrelab params" in proc.stderr
    finally:
        path.write_text(original)


def test_invalid_choice_fails_at_start_with_valid_choices(tiny_repo):
    proc = _dvc(tiny_repo, "exp", "run", "-S", "features.name=spectrum", check=False)
    assert proc.returncode != 0
    assert "valid choices: mfcc, mel, classic" in proc.stdout + proc.stderr


def test_changing_the_split_or_seed_extracts_no_feature(tiny_repo):
    _dvc(tiny_repo, "exp", "run")  # the defaults, whatever ran before
    for overrides in (["split=kfold", "split.fold=2"], ["seed=1"]):
        out = _dvc(tiny_repo, "exp", "run", *[a for o in overrides for a in ("-S", o)]).stdout
        assert _ran(out) <= {"split", "train", "evaluate"}, out
        assert "Stage 'features' didn't change, skipping" in out, out


def test_removing_the_store_changes_no_result(tiny_repo):
    """The store is a cache: without it the stages that read it (separate, features) recompute
    everything, bit for bit (the stages after them read only these outputs)."""
    _dvc(tiny_repo, "exp", "run", "-S", "variant=hpss_percussive")
    outputs = ("data/features/X.npy", "data/features/S.npy", "data/features/info.json", "data/separated.csv")
    before = {p: (tiny_repo / p).read_bytes() for p in outputs}
    shutil.rmtree(_STORE["dir"])
    _dvc(tiny_repo, "repro", "--force", "--single-item", "separate", "features")
    sep = json.loads((tiny_repo / "metrics/details/separation.json").read_text())
    feats = json.loads((tiny_repo / "metrics/details/features.json").read_text())
    assert (sep["computed"], sep["reused"]) == (24, 0) and (feats["computed"], feats["reused"]) == (24, 0)
    for path, data in before.items():
        assert (tiny_repo / path).read_bytes() == data, path


def test_kill_9_during_separation_then_rerun_recomputes_no_finished_track(tiny_repo):
    # settings no other test uses: every track starts unseparated (Demucs: see the test above)
    finished, out = _kill_during_separation(
        tiny_repo, ["-S", "variant=hpss_percussive", "-S", "separation.hpss.kernel_size=29"], "hpss", 24)
    assert "Running stage 'separate'" in out, out
    sep = json.loads((tiny_repo / "metrics/details/separation.json").read_text())
    assert (sep["reused"], sep["computed"], sep["failed"]) == (finished, 24 - finished, 0)
