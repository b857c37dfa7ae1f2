"""Every combination of config groups composes into valid settings; params.yaml is current."""
import itertools
from pathlib import Path

import pytest
import yaml

from genrelab.config import ConfigError, compose, compose_yaml, from_mapping
from genrelab.features import SliceSettings, make_extractor
from genrelab.models import MODELS, build_model
from genrelab.splits import SplitSettings
from genrelab.models import TrainStageSettings
from genrelab.variants import VariantSettings

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_committed_params_yaml_is_the_default_composition(repo_root):
    assert (repo_root / "params.yaml").read_text() == compose_yaml(config_dir=CONF), \
        "params.yaml is stale: run `genrelab params` and commit it"


def test_every_model_option_is_registered():
    assert set(_options("model")) <= set(MODELS)


def _validate(params):
    from_mapping(SplitSettings, params["split"], section="split")
    from_mapping(VariantSettings, params["variant"], section="variant")
    from_mapping(SliceSettings, params["slicing"], section="slicing")
    from_mapping(TrainStageSettings, params["train"], section="train")
    make_extractor(params["features"])
    assert params["dataset"]["name"]


def _compose_all(combos):
    """Compose many override lists in one Hydra context (initialising it is the slow part)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF.resolve()), version_base=None):
        for overrides in combos:
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
            yield overrides, OmegaConf.to_container(cfg, resolve=True)


def test_every_combination_of_config_groups_composes_and_validates():
    """variant x features x model in full (model options override features/variant, so these
    interact); dataset and split options set disjoint keys, so each is composed with every
    option of the other and with the defaults of the rest."""
    from genrelab.models import MODELS

    combos = [(f"variant={v}", f"features={f}", f"model={m}")
              for v, f, m in itertools.product(_options("variant"), _options("features"), _options("model"))]
    combos += [(f"dataset={d}", f"split={s}") for d, s in itertools.product(_options("dataset"), _options("split"))]
    n = 0
    for overrides, params in _compose_all(combos):
        _validate(params)
        spec = MODELS[params["model"]["name"]]
        from_mapping(spec.settings, {k: v for k, v in params["model"].items() if k != "name"}, section="model")
        for o in overrides:
            group, option = o.split("=")
            declared = yaml.safe_load((CONF / group / f"{option}.yaml").read_text())
            key = "method" if group == "split" else "name"
            assert params[group][key] == declared[key], (overrides, params[group])
        n += 1
    assert n == len(combos) > 400


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_composes_and_builds(model):
    params = compose([f"model={model}"], config_dir=CONF)
    kind = MODELS[params["model"]["name"]].input
    shape = (40,) if kind == "vector" else (2, 40, 130) if model == "two_branch" else (40, 130)
    assert build_model(params["model"], n_classes=10, input_shape=shape, seed=0, device="cpu") is not None


def test_unknown_group_option_lists_choices():
    with pytest.raises(Exception, match="svm"):
        compose(["model=nonexistent"], config_dir=CONF)


def test_negative_slice_length_fails_validation():
    params = compose(["slicing.length_s=-3"], config_dir=CONF)
    with pytest.raises(ConfigError, match="slicing.length_s"):
        _validate(params)


def test_overrides_reach_params():
    params = compose(["model=rf", "slicing.length_s=5"], config_dir=CONF)
    assert params["model"]["name"] == "rf" and params["slicing"]["length_s"] == 5
    assert yaml.safe_load(compose_yaml(["model=rf"], config_dir=CONF))["model"]["name"] == "rf"
