"""How `facecls grid` names recipes and replicates from experiments' params."""

from facecls.grid import Experiment, flatten, recipe_of, show_replicate


def experiment(**changes) -> Experiment:
    params = {"split": {"fold": 0, "seed": 42}, "train": {"seed": 0, "ema": 0.998, "epochs": 12}}
    for key, value in changes.items():
        section, name = key.split("__")
        params[section][name] = value
    return Experiment("e", "rev", params)


def test_seeds_and_test_folds_are_replicates_not_recipes():
    defaults = flatten(experiment().params)
    seeded = experiment(train__seed=1, split__fold=2, train__epochs=20)
    assert seeded.replicate == (2, 1) and show_replicate(seeded.replicate) == "2/1"
    varying = {"train.epochs", "train.ema"}
    assert recipe_of(seeded, defaults, varying) == "train.epochs=20"
    assert recipe_of(experiment(train__seed=1), defaults, varying) == "default"
    assert recipe_of(experiment(train__ema=0), defaults, varying) == "train.ema=0"


def test_a_knob_added_after_an_experiment_ran_counts_as_its_default():
    defaults = {**flatten(experiment().params), "train.half_res_epochs": 0}
    assert recipe_of(experiment(), defaults, {"train.half_res_epochs", "train.ema"}) == "default"
    newer = experiment()
    newer.params["train"]["half_res_epochs"] = 6
    assert recipe_of(newer, defaults, {"train.half_res_epochs"}) == "train.half_res_epochs=6"
