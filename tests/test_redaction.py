import subprocess
import sys

from conftest import REPO_ROOT

from knowfree.redaction import REDACTED, redact_arguments, redact_text

SECRET = "hf_abcdefghijklmnopqrstuvwxyz012345"


def test_secret_option_values_and_key_shaped_strings_are_hidden():
    arguments = ["--data", "x", "--token", "plain-secret", "--api_key=sk-live_0123456789", "--train_args", f"--push_to_hub me/m --hub_token {SECRET}"]
    assert redact_arguments(arguments) == ["--data", "x", "--token", REDACTED, f"--api_key={REDACTED}", "--train_args", f"--push_to_hub me/m --hub_token {REDACTED}"]
    assert redact_text(f"Authorization: Bearer {SECRET}.") == f"Authorization: Bearer {REDACTED}."
    assert redact_arguments(["--tokenizer", "bert", "--max_new_tokens", "512"]) == ["--tokenizer", "bert", "--max_new_tokens", "512"]


def test_help_never_shows_the_token_from_the_environment():
    environment = {"HF_TOKEN": SECRET, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    for command in (["extend", "--help"], ["workflow", "--help"]):
        result = subprocess.run([sys.executable, "-m", "augment", *command], capture_output=True, text=True, cwd=REPO_ROOT, env=environment, timeout=120)
        assert result.returncode == 0 and "--token" in result.stdout and SECRET not in result.stdout


def test_a_training_card_records_its_own_arguments_redacted(tmp_path):
    from knowfree import training as train

    recorded = train.card_command(["--data", "d", "--output_dir", "o", "--config_overrides", f"x={SECRET}"])
    assert recorded == f"accelerate launch train.py --data d --output_dir o --config_overrides 'x={REDACTED}'"
