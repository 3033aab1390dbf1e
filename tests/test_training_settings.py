"""TrainingSettings is train.py's option list: the parser is built from its fields, parses into it, and
settings turn back into the train.py arguments that give them (the model card's command)."""

from dataclasses import MISSING, fields

import pytest

from knowfree import training as train
from knowfree.training_settings import TrainingSettings, settings_arguments, training_overrides, training_parser


def test_every_option_is_a_field_with_the_same_default_and_the_parser_fills_every_field():
    actions = [action for action in training_parser()._actions if action.dest != "help"]
    assert [action.dest for action in actions] == [field.name for field in fields(TrainingSettings)]
    for action, field in zip(actions, fields(TrainingSettings)):
        assert action.option_strings[0] == f"--{field.name}"
        assert action.required == (field.default is MISSING)
        assert action.default == (None if field.default is MISSING else field.default)
    assert train.parse_args(["--data", "d", "--output_dir", "o"]) == TrainingSettings(data="d", output_dir="o")


def test_required_options_and_checked_values_exit_as_argparse_does(capsys):
    for arguments in (["--data", "d"], ["--data", "d", "--output_dir", "o", "--license", "Apache 2.0"], ["--data", "d", "--output_dir", "o", "--epochs", "many"]):
        with pytest.raises(SystemExit) as exited:
            train.parse_args(arguments)
        assert exited.value.code == 2
    assert "the following arguments are required: --output_dir" in capsys.readouterr().err


def test_settings_turn_back_into_the_arguments_that_give_them():
    given = train.parse_args([
        "--data", "d", "--output_dir", "o", "--k", "250", "--head_lr", "1e-2", "--freeze_embeddings", "--character_embeddings",
        "--thresholds", "per_label", "--max_train_minutes", "2.5", "--config_overrides", "a=1,b=x", "--license", "mit", "--hub_dataset_id", "me/data",
    ])  # fmt: skip
    assert train.parse_args(settings_arguments(given)) == given
    assert settings_arguments(TrainingSettings(data="d", output_dir="o", epochs=20, head_lr=0.01)) == ["--data", "d", "--head_lr", "0.01", "--output_dir", "o"]


def test_overrides_hold_only_the_options_given():
    assert training_overrides([]) == {}
    assert training_overrides(["--head_lr", "1e-2", "--freeze_embeddings", "--no-character_embeddings", "--epochs", "3"]) == {
        "head_lr": 0.01, "freeze_embeddings": True, "character_embeddings": False, "epochs": 3,
    }  # fmt: skip
    with pytest.raises(SystemExit):
        training_overrides(["--thresholds", "median"])


@pytest.mark.parametrize("value", ["-0.1", "1.5", "half"])
def test_mention_replacement_must_be_a_probability(value, capsys):
    with pytest.raises(SystemExit) as exited:
        training_parser().parse_args(["--data", "d", "--output_dir", "o", "--mention_replacement", value])
    assert exited.value.code == 2 and "--mention_replacement" in capsys.readouterr().err
