"""Every pair of config group options composes into valid settings; params.yaml is current;
a bad value fails the composition itself, naming the key; a stale params.yaml is noticed."""
import itertools
import shutil
from pathlib import Path

import pytest
import yaml

from genrelab.config import (
    ConfigError,
    check_params_current,
    compose,
    compose_each,
    compose_yaml,
    conf_digest,
    from_mapping,
    validate_params,
)
from genrelab.models import MODELS, build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
# table datasets need an existing file as their source (any file passes the settings check)
TABLE_SOURCES = {"gtzan_kaggle_table": [f"dataset.source={__file__}"],
                 "fma_table": [f"dataset.source={__file__}", f"dataset.tracks_csv={__file__}"],
                 "embeddings": [f"dataset.source={__file__}"]}


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_committed_params_yaml_is_the_default_composition(repo_root):
    assert (repo_root / "params.yaml").read_text() == compose_yaml(config_dir=CONF), \
        "params.yaml is stale: run `genrelab params` and commit it"


def test_every_dataset_has_a_settings_class_for_the_up_front_check():
    from genrelab.datasets import DATASET_SETTINGS, DATASETS

    assert set(DATASET_SETTINGS) == set(DATASETS)


def test_every_model_option_is_registered():
    assert set(_options("model")) <= set(MODELS)


def _validate(params):
    settings = validate_params(params)
    assert set(settings) == {"global"} | set(params) - {"seed", "recipe", "conf_digest"}


def _compose_all(combos):
    """Compose many override lists in one Hydra context (initialising it is the slow part)."""
    return compose_each(combos, config_dir=CONF)


def _pairwise(variants, features, models):
    """Triples in which every pair of options of two groups occurs: each (variant, model) once,
    with the features option ``(i + j) % len(features)``, which meets every model and every
    variant (needs ``len(features)`` <= both other counts)."""
    assert len(features) <= min(len(variants), len(models))
    return [(v, features[(i + j) % len(features)], m) for i, v in enumerate(variants) for j, m in enumerate(models)]


def test_every_pair_of_config_group_options_composes_and_validates():
    """Every pair of variant, features and model options composes and validates, and every
    dataset with every split.

    Pairs are enough: each section is validated on its own (``validate_params``), and groups
    interact only through a model's defaults overriding ``features`` or ``variant`` (``model=cnn``
    picks ``mel``; an explicit choice must still win), which involves two groups at a time. The
    full product (1,183 compositions of ~75 ms) took 93 s of the suite; the pairs are 169.
    """
    from genrelab.models import MODELS

    triples = _pairwise(_options("variant"), _options("features"), _options("model"))
    for a, b in itertools.combinations(range(3), 2):  # the covering property itself
        groups = [_options("variant"), _options("features"), _options("model")]
        assert {(t[a], t[b]) for t in triples} == set(itertools.product(groups[a], groups[b]))
    combos = [(f"variant={v}", f"features={f}", f"model={m}") for v, f, m in triples]
    combos += [(f"dataset={d}", f"split={s}", *TABLE_SOURCES.get(d, []))
               for d, s in itertools.product(_options("dataset"), _options("split"))]
    n = 0
    for overrides, params in _compose_all(combos):
        _validate(params)
        spec = MODELS[params["model"]["name"]]
        from_mapping(spec.settings, {k: v for k, v in params["model"].items() if k != "name"}, section="model")
        for o in overrides:
            group, option = o.split("=")
            if "." in group:
                continue
            declared = yaml.safe_load((CONF / group / f"{option}.yaml").read_text())
            key = "method" if group == "split" else "name"
            assert params[group][key] == declared[key], (overrides, params[group])
        n += 1
    assert n == len(combos) > 190


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_composes_and_builds(model):
    params = compose([f"model={model}"], config_dir=CONF)
    kind = MODELS[params["model"]["name"]].input
    shape = (40,) if kind == "vector" else (2, 40, 130) if model == "two_branch" else (40, 130)
    model = build_model(params["model"], n_classes=10, input_shape=shape, seed=0, device="cpu")
    assert model.input == kind  # the features the model will be given are those the registry names
    assert all(callable(getattr(model, m)) for m in ("fit", "predict_proba", "predict", "save"))
    net = getattr(getattr(model, "estimator", None), "model_", None)
    if net is not None:  # a torch net: the configured layers fit the input shape and the number of genres
        import torch

        with torch.no_grad():
            assert tuple(net(torch.zeros((2, *shape))).shape) == (2, 10)


def test_unknown_group_option_lists_choices():
    with pytest.raises(Exception, match="svm"):
        compose(["model=nonexistent"], config_dir=CONF)


def test_negative_slice_length_fails_the_composition():
    with pytest.raises(ConfigError, match="slicing.length_s"):
        compose(["slicing.length_s=-3"], config_dir=CONF)


@pytest.mark.parametrize("overrides, key", [
    (["model.C=abc"], "model.C: expected a number, got 'abc'"),
    (["model=rf", "model.n_estimators=-1"], "model"),
    (["split.fractions.test=0.5"], "split.fractions"),
    (["separation.hpss.margin=0.5"], "separation.hpss.margin"),
    (["evaluate.split=train"], "evaluate.split"),
    (["+slicng.length_s=2"], "unknown section"),
    (["dataset=gtzan_kaggle_table"], "dataset.source"),
])
def test_a_bad_value_fails_the_composition_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("(", r"\(")):
        compose(overrides, config_dir=CONF)


def test_validate_params_names_the_bad_key_of_any_section():
    params = compose(config_dir=CONF)
    validate_params(params)
    for section, key, bad in [("audio", "sample_rate", 100), ("train", "seeds", []), ("models", "dir", 3),
                              ("slicing", "overlap", 1.5), ("separation", "demucs", {"shifts": -1})]:
        broken = {**params, section: {**params[section], key: bad}}
        with pytest.raises(ConfigError, match=section):
            validate_params(broken)
    with pytest.raises(ConfigError, match="seed"):
        validate_params({**params, "seed": "zero"})


def test_a_stale_params_yaml_is_noticed(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    params = compose(config_dir=conf)
    assert params["conf_digest"] == conf_digest(conf)
    check_params_current(params, config_dir=conf)
    (conf / "model" / "svm.yaml").write_text((conf / "model" / "svm.yaml").read_text().replace("C: 10.0", "C: 5.0"))
    with pytest.raises(ConfigError, match="older than .*genrelab params"):
        check_params_current(params, config_dir=conf)
    with pytest.raises(ConfigError, match="no conf_digest"):
        check_params_current({k: v for k, v in params.items() if k != "conf_digest"}, config_dir=conf)
    check_params_current(params, config_dir=tmp_path / "absent")   # no conf/: nothing to compare


def test_overrides_reach_params():
    params = compose(["model=rf", "slicing.length_s=5"], config_dir=CONF)
    assert params["model"]["name"] == "rf" and params["slicing"]["length_s"] == 5
    assert yaml.safe_load(compose_yaml(["model=rf"], config_dir=CONF))["model"]["name"] == "rf"
