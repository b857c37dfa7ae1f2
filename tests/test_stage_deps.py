"""DVC's cache is only as current as each stage's deps: they must cover the code the stage runs.

For every stage of ``dvc.yaml``, the genrelab modules its script loads when imported (in a fresh
interpreter) and every genrelab module named by an import statement in them, also inside
functions (the imports that run only on some paths, such as the torch models of the train stage),
must lie under one of the stage's ``deps``. And the committed ``dvc.lock`` must be current: no
stage's code, params or git-tracked outputs (metrics, plots) changed since it was written.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

_LOADED = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted({m.__file__ for n, m in list(sys.modules.items())
                         if n.split(".")[0] == "genrelab" and getattr(m, "__file__", None)})))
"""


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _imported_names(path: Path) -> set[str]:
    """Every ``genrelab...`` module name an import statement of ``path`` names, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] == "genrelab"}


def _static_closure(files: set[Path]) -> set[Path]:
    seen, todo = set(files), list(files)
    while todo:
        for name in _imported_names(todo.pop()):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):   # a module also runs its parent packages' __init__
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return seen


def _script(stage: dict) -> Path:
    words = stage["cmd"].split()
    return ROOT / next(w for w in words if w.startswith("stages/") and w.endswith(".py"))


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.resolve().relative_to(ROOT).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_it_imports(name):
    stage = STAGES[name]
    if stage.get("always_changed"):
        pytest.skip(f"stage {name!r} runs every time (always_changed): its deps cannot go stale")
    script = _script(stage)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _LOADED, str(script)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = {Path(f) for f in json.loads(proc.stdout.strip().splitlines()[-1])}
    outside = [f for f in loaded if not f.resolve().is_relative_to(SRC)]
    assert not outside, f"genrelab was imported from outside this checkout: {outside[:3]} (set PYTHONPATH=src)"
    files = _static_closure({script} | loaded)
    deps = [str(d) for d in stage.get("deps", [])]
    missing = sorted(f.relative_to(ROOT).as_posix() for f in files if f != script and not _covered(f, deps))
    assert not missing, f"stage {name!r} runs code that is not in its deps in dvc.yaml: {missing}"
    assert _covered(script, deps), f"stage {name!r}: its own script {script.relative_to(ROOT)} is not a dep"


def _git_tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                    reason="the dvc command is not installed beside this python")
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (dvc.lock is checked against git)")
def test_committed_dvc_lock_is_current():
    """A fresh clone must not be dirty: dvc.lock matches the code, params and committed metrics.

    Data outputs are not checked (they live in the DVC cache, not in git). When this fails after
    a code or params change, run ``dvc repro`` and commit ``dvc.lock`` with ``metrics/``, ``plots/``.
    """
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = subprocess.run([dvc, "status", "--json"], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout or "{}")
    tracked = _git_tracked()

    def in_git(path: str) -> bool:
        return path in tracked or any(t.startswith(path.rstrip("/") + "/") for t in tracked)

    stale = []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):          # "changed command", "always changed"
                if entry == "always changed" and STAGES.get(stage, {}).get("always_changed"):
                    continue                    # by design (the `source` probe): not a stale lock
                stale.append(f"{stage}: {entry}")
                continue
            for kind in ("changed deps", "changed outs"):
                for path, state in (entry.get(kind) or {}).items():
                    if isinstance(state, dict):  # params.yaml: {"evaluate": "modified"}
                        stale.append(f"{stage}: params {state}")
                    elif in_git(path):
                        stale.append(f"{stage}: {path} {state}")
    assert not stale, ("dvc.lock is not current (run `dvc repro` and commit dvc.lock, metrics/ and plots/):\n"
                       + "\n".join(stale))
