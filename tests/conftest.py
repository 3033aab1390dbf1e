"""Shared fixtures: tiny tokenizers of both styles and tiny KnowFREE models, all built in code."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from transformers import BertConfig, BertTokenizer, PreTrainedTokenizerFast  # noqa: E402

from configuration_knowfree import KnowFreeConfig  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402

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
