import pytest
from conftest import build_bert_char_tokenizer, write_tiny_encoder

from knowfree.encoder_checks import EncoderError, check_encoder


@pytest.fixture
def encoder(tmp_path):
    return write_tiny_encoder(tmp_path / "encoder", build_bert_char_tokenizer())


def test_a_complete_folder_and_a_hub_id_pass(encoder, monkeypatch, tmp_path):
    check_encoder(encoder)
    monkeypatch.chdir(tmp_path)
    check_encoder("intfloat/multilingual-e5-small")  # no local folder 'intfloat': left to the Hub


def test_the_default_folder_before_it_is_built_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "encoders").mkdir()
    with pytest.raises(EncoderError, match="encoders/multilingual-e5-small does not exist: build it with `knowfree-build-encoder`"):
        check_encoder("encoders/multilingual-e5-small")
    with pytest.raises(EncoderError, match="../elsewhere/encoder does not exist: check the path"):
        check_encoder("../elsewhere/encoder")


def test_a_folder_without_tokenizer_files_is_refused(encoder):
    for name in ("vocab.txt", "tokenizer.json"):
        (encoder / name).unlink(missing_ok=True)
    with pytest.raises(EncoderError, match="no tokenizer files.*five-token vocabulary"):
        check_encoder(encoder)


def test_a_folder_without_weights_or_with_truncated_weights_is_refused(encoder):
    weights = encoder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(EncoderError, match=r"model\.safetensors cannot be read .*truncated or corrupt"):
        check_encoder(encoder)
    weights.unlink()
    with pytest.raises(EncoderError, match="has no weights"):
        check_encoder(encoder)
