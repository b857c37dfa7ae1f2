"""The repository's own files: license and citation agree with the package."""
from __future__ import annotations

import tomllib

import yaml

import genrelab


def test_license_is_the_mit_license_pyproject_declares(repo_root):
    text = (repo_root / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "MIT"


def test_citation_file_is_valid_cff_for_this_version(repo_root):
    cff = yaml.safe_load((repo_root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(cff)
    assert cff["version"] == genrelab.__version__ and cff["license"] == "MIT"
    for ref in cff.get("references", []):
        assert {"type", "title", "authors"} <= set(ref), ref
