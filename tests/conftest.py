"""Shared fixtures: tiny tokenizers of both styles and tiny KnowFREE models, all built in code."""

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The test models are tiny: their intra-op threads mostly wait on each other, and the suite runs as two
# pytest-xdist workers on two cores. Subprocesses inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Remote code is copied into a modules cache named after the model folder: one private cache per worker
# keeps parallel workers (and the user's own cache) apart.
if "HF_MODULES_CACHE" not in os.environ:
    os.environ["HF_MODULES_CACHE"] = tempfile.mkdtemp(prefix="knowfree-tests-modules-")
    atexit.register(shutil.rmtree, os.environ["HF_MODULES_CACHE"], ignore_errors=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from transformers import BertConfig, BertModel, BertTokenizer, PreTrainedTokenizerFast  # noqa: E402

from configuration_knowfree import KnowFreeConfig  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402

torch.set_num_threads(1)

CORPUS = [
    "中国科学技术大学位于合肥市。",
    "马云在杭州创办了阿里巴巴集团。",
    "北京大学的张老师去上海开会。",
    "我爱北京天安门，天安门上太阳升。",
    "现任中国科技大学商学院院长。",
    "Hello world 你好世界 2024年",
]


def character_vocabulary() -> list[str]:
    """Every character of the corpus plus the BERT specials, one WordPiece per character."""
    chars = sorted({char for line in CORPUS for char in line.lower() if not char.isspace()})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars


def build_bert_char_tokenizer() -> BertTokenizer:
    """A bert-base-chinese style tokenizer: one WordPiece per Chinese character."""
    vocabulary = {token: index for index, token in enumerate(character_vocabulary())}
    return BertTokenizer(vocab=vocabulary, model_max_length=512)


MULTI_CHARACTER_PIECES = ["▁中国", "中国", "北京", "天安门", "阿里巴巴", "杭州", "大学", "科学", "技术", "上海", "集团", "▁Hello", "▁world"]


def build_unigram_tokenizer() -> PreTrainedTokenizerFast:
    """An XLM-R style SentencePiece-Unigram tokenizer (NFKC, Metaspace, <s> $A </s>).

    Pieces are every corpus character plus some words scored higher than their characters, so the
    Viterbi segmentation merges them into multi-character pieces as multilingual-e5 does.
    """
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    characters = sorted({char for line in CORPUS for char in line if not char.isspace()} | {"▁"})
    pieces = [(token, 0.0) for token in specials]
    pieces += [(char, -10.0) for char in characters]
    pieces += [(word, -3.0) for word in MULTI_CHARACTER_PIECES]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=3))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=512,
    )


def tiny_config(vocab_size: int, target_labels, extension_labels=(), **overrides) -> KnowFreeConfig:
    encoder = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    settings = dict(
        encoder_config=encoder.to_dict(),
        target_labels=list(target_labels),
        extension_labels=list(extension_labels),
        projection_size=24,
        span_hidden_size=20,
        biaffine_heads=2,
        local_attention_heads=4,
        local_attention_window=2,
        dropout=0.0,
    )
    settings.update(overrides)
    return KnowFreeConfig(**settings)


def tiny_model(tokenizer, target_labels=("LOC", "ORG", "PER"), extension_labels=(), seed: int = 0, **overrides) -> KnowFreeModel:
    torch.manual_seed(seed)
    model = KnowFreeModel(tiny_config(len(tokenizer), target_labels, extension_labels, **overrides))
    model.tokenizer = tokenizer
    return model.eval()


PEOPLE = ["马云", "张老师"]
PLACES = ["北京", "上海", "杭州", "合肥市", "天安门"]
ORGANISATIONS = ["阿里巴巴集团", "北京大学", "中国科学技术大学"]


def labelled(parts: list[tuple[str, str | None]]) -> dict:
    """Build a row from (piece, label) parts; 北京 inside an ORG is also a nested LOC."""
    text, entities = "", []
    for piece, label in parts:
        if label:
            entities.append({"start": len(text), "end": len(text) + len(piece), "label": label})
            if label == "ORG" and piece.startswith("北京"):
                entities.append({"start": len(text), "end": len(text) + 2, "label": "LOC"})
        text += piece
    return {"text": text, "entities": entities}


def training_rows() -> list[dict]:
    rows = []
    for index in range(20):
        person, place = PEOPLE[index % 2], PLACES[index % 5]
        organisation = ORGANISATIONS[(index // 3) % 3]
        if index % 3 == 0:
            parts = [(person, "PER"), ("在", None), (place, "LOC"), ("创办了", None), (organisation, "ORG"), ("。", None)]
        elif index % 3 == 1:
            parts = [(person, "PER"), ("去", None), (place, "LOC"), ("开会。", None)]
        else:
            parts = [("我爱", None), (organisation, "ORG"), ("。", None)]
        rows.append(labelled(parts))
    return rows


def assert_same_spans(expected: list[list], found: list[list], tolerance: float) -> None:
    """The same spans text by text, in the same order; scores within `tolerance`, since another CPU,
    thread count or runtime sums in another order. A span is a dict with a "score" key or a list
    ending in its score."""

    def split(span) -> tuple:
        if isinstance(span, dict):
            return {key: value for key, value in span.items() if key != "score"}, span["score"]
        return list(span[:-1]), span[-1]

    expected_parts = [[split(span) for span in row] for row in expected]
    found_parts = [[split(span) for span in row] for row in found]
    assert [[rest for rest, _ in row] for row in found_parts] == [[rest for rest, _ in row] for row in expected_parts]
    found_scores = [score for row in found_parts for _, score in row]
    assert found_scores == pytest.approx([score for row in expected_parts for _, score in row], abs=tolerance)


def write_corpus(folder: Path, splits: dict[str, list[dict]], labels: list[str]) -> Path:
    """A JSONL corpus folder like ../shared/data/<name>: <split>.jsonl files and labels.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return folder


def write_tiny_encoder(folder: Path, tokenizer) -> Path:
    """A pretrained-encoder folder (tiny BERT weights + tokenizer) that train.py can start from."""
    config = tiny_config(len(tokenizer), ["A"]).encoder_config
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def bert_tokenizer() -> BertTokenizer:
    return build_bert_char_tokenizer()


@pytest.fixture(scope="session")
def unigram_tokenizer() -> PreTrainedTokenizerFast:
    return build_unigram_tokenizer()


@pytest.fixture(params=["bert", "unigram"])
def any_tokenizer(request, bert_tokenizer, unigram_tokenizer):
    return bert_tokenizer if request.param == "bert" else unigram_tokenizer


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def hub_online(monkeypatch):
    """Lift huggingface_hub's offline switch for tests whose InferenceClient talks to a local fake LLM."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
