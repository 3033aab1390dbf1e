import pytest

from knowfree.redaction import REDACTED, redact_arguments, redact_text

SECRET = "hf_abcdefghijklmnopqrstuvwxyz012345"


def test_secret_option_values_and_key_shaped_strings_are_hidden():
    arguments = ["--data", "x", "--token", "plain-secret", "--api_key=sk-live_0123456789", "--train_args", f"--push_to_hub me/m --hub_token {SECRET}"]
    assert redact_arguments(arguments) == ["--data", "x", "--token", REDACTED, f"--api_key={REDACTED}", "--train_args", f"--push_to_hub me/m --hub_token {REDACTED}"]
    assert redact_text(f"Authorization: Bearer {SECRET}.") == f"Authorization: Bearer {REDACTED}."
    assert redact_arguments(["--tokenizer", "bert", "--max_new_tokens", "512"]) == ["--tokenizer", "bert", "--max_new_tokens", "512"]


def test_help_never_shows_the_token_from_the_environment(monkeypatch, capsys):
    from augment.cli import parse_args

    monkeypatch.setenv("HF_TOKEN", SECRET)
    for command in (["extend", "--help"], ["workflow", "--help"]):
        with pytest.raises(SystemExit):
            parse_args(command)
        shown = capsys.readouterr().out
        assert "--token" in shown and SECRET not in shown


def test_a_training_card_records_its_own_arguments_redacted(tmp_path):
    from knowfree import training as train

    recorded = train.card_command(["--data", "d", "--output_dir", "o", "--config_overrides", f"x={SECRET}"])
    assert recorded == f"accelerate launch train.py --data d --output_dir o --config_overrides 'x={REDACTED}'"


def test_a_card_command_rebuilt_from_settings_is_redacted_too():
    from knowfree import training as train
    from knowfree.training_settings import TrainingSettings, settings_arguments

    settings = TrainingSettings(data="d", output_dir="o", config_overrides=f"x={SECRET}", push_to_hub="me/model")
    assert train.card_command(settings_arguments(settings)) == f"accelerate launch train.py --data d --config_overrides 'x={REDACTED}' --output_dir o --push_to_hub me/model"
