"""Every recipe (conf/experiment/*.yaml) composes, alone and at every point of its sweep grid."""
from __future__ import annotations

from pathlib import Path

import pytest

from genrelab.config import ConfigError, compose, from_mapping
from genrelab.experiments.recipes import Recipe, list_recipes, load_recipe
from genrelab.features import SliceSettings, make_extractor
from genrelab.models import TrainStageSettings, model_input
from genrelab.splits import SplitSettings
from genrelab.variants import VariantSettings

CONF = Path(__file__).resolve().parents[1] / "conf"
RECIPES = list_recipes(CONF)
# the published setups the recipes must cover, and the smallest grid each must span
EXPECTED = {"embeddings_svm": 30, "deep_slices": 16, "mfcc_segments": 9, "classic_models": 3,
            "separation_baselines": 12}


@pytest.fixture(scope="module", autouse=True)
def _hydra():
    """One Hydra context for the module: composing in it is what `genrelab.config.compose` does,
    without initialising Hydra again for each of the ~70 grid points."""
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONF), version_base=None):
        yield


def _compose(overrides: list[str]) -> dict:
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    cfg = hydra_compose(config_name="config", overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return OmegaConf.to_container(cfg)


def test_fast_compose_equals_genrelab_compose():
    from hydra.core.global_hydra import GlobalHydra

    ours = _compose(["+experiment=mfcc_segments", "features.n_mfcc=13"])
    GlobalHydra.instance().clear()          # genrelab.config.compose initialises its own context
    try:
        assert compose(["+experiment=mfcc_segments", "features.n_mfcc=13"], config_dir=CONF) == ours
    finally:
        from hydra import initialize_config_dir

        GlobalHydra.instance().clear()
        initialize_config_dir(str(CONF), version_base=None).__enter__()


def _validate(params: dict) -> None:
    from_mapping(SplitSettings, params["split"], section="split")
    from_mapping(VariantSettings, params["variant"], section="variant")
    from_mapping(SliceSettings, params["slicing"], section="slicing")
    from_mapping(TrainStageSettings, params["train"], section="train")
    make_extractor(params["features"])
    model_input(params["model"])


def test_the_published_setups_have_recipes():
    assert set(EXPECTED) <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_file_is_a_global_hydra_experiment_config(name):
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert text.splitlines()[0] == "# @package _global_"
    assert f"recipe: {name}" in text
    assert f"genrelab sweep {name}" in text, "the comment block documents the one command that runs it"


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_composes_alone_without_hydra_or_sweep_keys(name):
    params = _compose([f"+experiment={name}"])
    assert params["recipe"] == name
    assert "hydra" not in params and "sweep" not in params
    _validate(params)


@pytest.mark.parametrize("name", RECIPES)
def test_every_point_of_the_sweep_composes_and_validates(name):
    recipe = load_recipe(name, config_dir=CONF)
    combos = recipe.combinations()
    assert len(combos) >= EXPECTED.get(name, 2)
    seen = set()
    for overrides in combos:
        params = _compose(overrides)
        _validate(params)
        for ov in overrides[1:]:       # every axis value reaches params.yaml
            key, _, value = ov.partition("=")
            node = params
            for part in key.split("."):
                node = node[part]
            got = node["name"] if isinstance(node, dict) else node
            assert str(got) == value or float(got) == float(value), (ov, got)
        seen.add(tuple(overrides))
    assert len(seen) == len(combos)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_alone_is_a_point_of_its_own_grid(name):
    """Selected alone (`+experiment=<name>`), a recipe is one representative run of its grid."""
    recipe = load_recipe(name, config_dir=CONF)
    alone = _compose([f"+experiment={name}"])
    for key, values in recipe.sweep.items():
        node = alone
        for part in key.split("."):
            node = node[part]
        got = node["name"] if isinstance(node, dict) else node
        assert str(got) in values.split(",") or float(got) in [float(v) for v in values.split(",")], (key, got)


def test_deep_recipe_trains_three_seeds_per_experiment():
    params = _compose(["+experiment=deep_slices"])
    assert params["train"]["seeds"] == [0, 1, 2]
    assert params["features"]["name"] == "mel"


def test_dvc_command_queues_the_grid_and_extra_overrides_replace_axes():
    recipe = Recipe(name="demo", sweep={"model": "svm,rf", "slicing.length_s": "3,6"})
    assert recipe.dvc_command() == ["dvc", "exp", "run", "--queue", "-S", "+experiment=demo",
                                    "-S", "model=svm,rf", "-S", "slicing.length_s=3,6"]
    assert recipe.overrides(["model=gbdt", "dataset=gtzan"]) == [
        "+experiment=demo", "model=gbdt", "slicing.length_s=3,6", "dataset=gtzan"]
    assert len(recipe.combinations()) == 4
    assert len(recipe.combinations(["model=gbdt"])) == 2
    with pytest.raises(ConfigError, match="chosen by name"):
        recipe.overrides(["+experiment=other"])
    with pytest.raises(ConfigError, match="key=value"):
        recipe.overrides(["model"])


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid choices: .*mfcc_segments"):
        load_recipe("nonexistent", config_dir=CONF)


def test_recipe_reads_its_sweep_and_description():
    recipe = load_recipe("mfcc_segments", config_dir=CONF)
    assert recipe.sweep == {"features.n_mfcc": "13,20,30", "slicing.length_s": "3,6,10"}
    assert "MFCC" in recipe.description.splitlines()[0]
