"""knowfree.data: validation messages, every source kind (tagged ones included), and the real shared corpora."""

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import build_bert_char_tokenizer, training_rows, write_tiny_encoder
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from hub_server import FAKE_USER, LocalHub, run_against_hub

from knowfree import training as train
from configuration_knowfree import KnowFreeConfig
from knowfree import data
from knowfree.bio_formats import spans_to_tags
from knowfree.data import FEATURES, DataError, load_corpus, report_unusable
from knowfree.sampling import sample_n_way_k_shot, take_k

LABELS = ["PER", "LOC"]
GOOD_ROWS = [
    {"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]},
    {"text": "今天天气好", "entities": []},
    {
        "text": "李四去上海",
        "entities": [{"start": 3, "end": 5, "label": "LOC"}],
        "extensions": [{"start": 3, "end": 5, "label": "城市"}],
        "synthetic": True,
    },
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def write_corpus(folder: Path, splits: dict[str, list], labels: list[str] | None = LABELS) -> Path:
    """Write `<split>.jsonl` files (rows given as dicts, or as raw line strings) and labels.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
        (folder / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if labels is not None:
        (folder / "labels.txt").write_text("".join(label + "\n" for label in labels), encoding="utf-8")
    return folder


def good_splits() -> dict[str, list]:
    return {"train": GOOD_ROWS, "dev": GOOD_ROWS[:2], "test": GOOD_ROWS[1:]}


def load_bad_train_line(tmp_path: Path, bad_line: dict | str, labels: list[str] | None = LABELS) -> None:
    """Load a corpus whose train.jsonl line 2 is `bad_line`."""
    splits = good_splits()
    splits["train"] = [GOOD_ROWS[0], bad_line, GOOD_ROWS[1]]
    load_corpus(write_corpus(tmp_path / "weibo", splits, labels))


def test_valid_folder_loads_every_row_with_the_fixed_schema(tmp_path):
    corpus = load_corpus(write_corpus(tmp_path / "weibo", good_splits()))
    assert corpus.labels == ("PER", "LOC")
    assert corpus.extension_labels == ("城市",)
    assert list(corpus.splits) == ["train", "dev", "test"]
    assert [len(corpus.splits[split]) for split in corpus.splits] == [3, 2, 2]
    for split in corpus.splits.values():
        assert split.features == FEATURES
    assert corpus.splits["train"][1] == {"text": "今天天气好", "entities": [], "extensions": [], "synthetic": False}
    assert corpus.splits["train"][2]["synthetic"] is True


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"text": "张三", "entities": [', "weibo/train.jsonl line 2: invalid JSON (Expecting value at column 29)"),
        ("", "weibo/train.jsonl line 2: empty line"),
        ('["张三"]', "weibo/train.jsonl line 2: expected a JSON object, got list"),
        ({"entities": []}, "weibo/train.jsonl line 2: missing field 'text'"),
        ({"text": 7, "entities": []}, "weibo/train.jsonl line 2: field 'text' must be a string, got integer"),
        ({"text": "张三"}, "weibo/train.jsonl line 2: missing field 'entities'"),
        ({"text": "张三", "entities": {"start": 0}}, "weibo/train.jsonl line 2: field 'entities' must be a list, got object"),
        (
            {"text": "张三", "entities": [{"start": 0, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: missing field 'end'",
        ),
        (
            {"text": "张三", "entities": [{"start": 0, "end": 2.0, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: field 'end' must be an integer, got number",
        ),
        (
            {"text": "张三", "entities": [{"start": "0", "end": 2, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: field 'start' must be an integer, got string",
        ),
        (
            {"text": "张三", "entities": [{"start": True, "end": 2, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: field 'start' must be an integer, got boolean",
        ),
        (
            {"text": "张三", "entities": [{"start": 0, "end": 2, "label": None}]},
            "weibo/train.jsonl line 2: entities[0]: field 'label' must be a string, got null",
        ),
        (
            {"text": "x" * 38, "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 30, "end": 40, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[1]: end 40 > len(text) 38",
        ),
        (
            {"text": "张三", "entities": [{"start": 1, "end": 1, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: start 1 >= end 1",
        ),
        (
            {"text": "张三", "entities": [{"start": -1, "end": 1, "label": "PER"}]},
            "weibo/train.jsonl line 2: entities[0]: start -1 < 0",
        ),
        (
            {"text": "张三", "entities": [{"start": 0, "end": 2, "label": "FOO"}]},
            "weibo/train.jsonl line 2: entities[0]: label 'FOO' not in labels.txt",
        ),
        (
            {"text": "张三", "entities": [{"start": 0, "end": 2, "label": "PER", "score": 0.9}]},
            "weibo/train.jsonl line 2: entities[0]: unexpected field 'score' (allowed: start, end, label)",
        ),
        (
            {"text": "张三", "entities": [], "extensions": [{"start": 0, "end": 3, "label": "人"}]},
            "weibo/train.jsonl line 2: extensions[0]: end 3 > len(text) 2",
        ),
        (
            {"text": "张三", "entities": [], "extensions": "人"},
            "weibo/train.jsonl line 2: field 'extensions' must be a list, got string",
        ),
        (
            {"text": "张三", "entities": [], "synthetic": "yes"},
            "weibo/train.jsonl line 2: field 'synthetic' must be a boolean, got string",
        ),
        (
            {"text": "张三", "entities": [], "id": 4},
            "weibo/train.jsonl line 2: unexpected field 'id' (allowed: text, entities, extensions, synthetic)",
        ),
    ],
)
def test_invalid_rows_name_file_line_and_field(tmp_path, bad_line, message):
    with pytest.raises(DataError) as raised:
        load_bad_train_line(tmp_path, bad_line)
    assert str(raised.value) == message


def test_invalid_utf8_names_the_line(tmp_path):
    folder = write_corpus(tmp_path / "weibo", good_splits())
    (folder / "dev.jsonl").write_bytes(b'{"text": "a", "entities": []}\n{"text": "\xff", "entities": []}\n')
    with pytest.raises(DataError, match=r"^weibo/dev\.jsonl line 2: not UTF-8"):
        load_corpus(folder)


def test_extension_labels_are_free_form(tmp_path):
    row = {"text": "张三", "entities": [], "extensions": [{"start": 0, "end": 2, "label": "任意标签"}]}
    load_bad_train_line(tmp_path, row)


def test_extension_labels_named_like_target_labels_are_refused_naming_the_source(tmp_path):
    row = {"text": "张三", "entities": [], "extensions": [{"start": 0, "end": 2, "label": "PER"}]}
    with pytest.raises(DataError, match=r"weibo: extension labels \['PER'\] have the names of target labels"):
        load_bad_train_line(tmp_path, row)


def test_null_optional_fields_mean_absent(tmp_path):
    row = {"text": "张三", "entities": [], "extensions": None, "synthetic": None}
    splits = {"train": [row], "dev": [row], "test": [row]}
    corpus = load_corpus(write_corpus(tmp_path / "weibo", splits))
    assert corpus.splits["dev"][0] == {"text": "张三", "entities": [], "extensions": [], "synthetic": False}


def test_missing_split_file(tmp_path):
    splits = good_splits()
    del splits["dev"]
    with pytest.raises(DataError, match=r"^weibo/dev\.jsonl: file not found"):
        load_corpus(write_corpus(tmp_path / "weibo", splits))


def test_missing_labels_file(tmp_path):
    with pytest.raises(DataError, match=r"^weibo/labels\.txt: not found; add it or pass labels="):
        load_corpus(write_corpus(tmp_path / "weibo", good_splits(), labels=None))


def test_labels_argument_replaces_labels_file(tmp_path):
    folder = write_corpus(tmp_path / "weibo", good_splits(), labels=None)
    assert load_corpus(folder, labels=["LOC", "PER"]).labels == ("LOC", "PER")
    with pytest.raises(DataError, match=r"label 'PER' not in the labels argument$"):
        load_corpus(folder, labels=["LOC"])
    with pytest.raises(ValueError, match="at least one and distinct"):
        load_corpus(folder, labels=["LOC", "LOC"])


@pytest.mark.parametrize(
    ("labels_text", "message"),
    [("PER\n\nLOC\n", "labels.txt line 2: empty label"), ("PER\nPER\n", "labels.txt line 2: duplicate label 'PER'")],
)
def test_bad_labels_file(tmp_path, labels_text, message):
    folder = write_corpus(tmp_path / "weibo", good_splits())
    (folder / "labels.txt").write_text(labels_text, encoding="utf-8")
    with pytest.raises(DataError, match=f"^{message}$"):
        load_corpus(folder)


def test_requested_splits_only(tmp_path):
    folder = write_corpus(tmp_path / "weibo", {"train": GOOD_ROWS})
    assert list(load_corpus(folder, splits=("train",)).splits) == ["train"]


def test_source_that_is_neither_folder_nor_repo_id(tmp_path):
    with pytest.raises(DataError, match="no such folder, and not a Hub repo id"):
        load_corpus("./no/such/folder")
    with pytest.raises(DataError, match="no such folder$"):
        load_corpus(tmp_path / "missing")


def raw_dataset(rows: list[dict]) -> Dataset:
    """A dataset as plain `datasets` infers it (int64 offsets, absent optional fields as nulls).

    Built column-wise because `Dataset.from_list` keeps only the first row's keys.
    """
    columns = dict.fromkeys(key for row in rows for key in row)
    return Dataset.from_dict({column: [row.get(column) for row in rows] for column in columns})


def save_jsonl_corpus_to_disk(jsonl_folder: Path, target: Path) -> Path:
    """A save_to_disk folder holding the same rows as the JSONL folder, written by plain datasets."""
    raw = DatasetDict(
        {
            split: raw_dataset([json.loads(line) for line in (jsonl_folder / f"{split}.jsonl").read_text("utf-8").splitlines()])
            for split in ("train", "dev", "test")
        }
    )
    raw.save_to_disk(str(target))
    shutil.copy(jsonl_folder / "labels.txt", target / "labels.txt")
    return target


def test_three_source_kinds_load_the_same(tmp_path, monkeypatch):
    jsonl_folder = write_corpus(tmp_path / "weibo", good_splits())
    saved_folder = save_jsonl_corpus_to_disk(jsonl_folder, tmp_path / "weibo_saved")
    hub_requests = []

    def fake_load_dataset(repo_id):
        hub_requests.append(("dataset", repo_id))
        return DatasetDict({split: raw_dataset(rows) for split, rows in good_splits().items()})

    def fake_hf_hub_download(repo_id, filename, repo_type):
        hub_requests.append((filename, repo_id, repo_type))
        return str(jsonl_folder / "labels.txt")

    monkeypatch.setattr(data, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.chdir(tmp_path)

    corpora = [load_corpus(jsonl_folder), load_corpus(str(saved_folder)), load_corpus("someone/weibo")]
    assert hub_requests == [("labels.txt", "someone/weibo", "dataset"), ("dataset", "someone/weibo")]
    expected = corpora[0]
    for corpus in corpora[1:]:
        assert corpus.labels == expected.labels and corpus.extension_labels == expected.extension_labels
        assert list(corpus.splits) == list(expected.splits)
        for split in expected.splits:
            assert corpus.splits[split].features == FEATURES
            assert corpus.splits[split].to_list() == expected.splits[split].to_list()


def test_hub_repo_round_trip_through_a_local_hub(tmp_path):
    """Loaded splits pushed with push_to_hub plus labels.txt in the repo load back unchanged by repo id."""
    jsonl_folder = write_corpus(tmp_path / "weibo", good_splits())
    expected = load_corpus(jsonl_folder)
    repo_id = f"{FAKE_USER}/weibo-tiny"
    code = f"""
import json
from huggingface_hub import HfApi
from knowfree.data import load_corpus

load_corpus({str(jsonl_folder)!r}).splits.push_to_hub("{repo_id}")
HfApi().upload_file(
    path_or_fileobj={str(jsonl_folder / "labels.txt")!r}, path_in_repo="labels.txt", repo_id="{repo_id}", repo_type="dataset"
)
corpus = load_corpus("{repo_id}")
print(json.dumps({{"labels": corpus.labels, "splits": {{name: split.to_list() for name, split in corpus.splits.items()}}}}))
"""
    with LocalHub(tmp_path / "hub") as hub:
        result = run_against_hub(hub.url, code, cwd=Path(__file__).resolve().parents[1])
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert tuple(loaded["labels"]) == expected.labels
    assert loaded["splits"] == {name: split.to_list() for name, split in expected.splits.items()}


def test_saved_and_hub_rows_name_split_and_row(tmp_path, monkeypatch):
    splits = good_splits()
    splits["dev"] = [GOOD_ROWS[1], {"text": "张三", "entities": [{"start": 0, "end": 9, "label": "PER"}]}]
    jsonl_folder = write_corpus(tmp_path / "weibo", splits)
    saved_folder = save_jsonl_corpus_to_disk(jsonl_folder, tmp_path / "weibo_saved")
    with pytest.raises(DataError, match=r"^weibo_saved split 'dev' row 1: entities\[0\]: end 9 > len\(text\) 2$"):
        load_corpus(saved_folder)

    monkeypatch.setattr(data, "load_dataset", lambda repo_id: DatasetDict({"train": raw_dataset(GOOD_ROWS)}))
    with pytest.raises(DataError, match=r"^someone/weibo: split 'dev' not found \(has: train\)$"):
        load_corpus("someone/weibo", labels=LABELS)


def test_hub_without_labels_file_asks_for_labels(monkeypatch):
    def unreachable(repo_id, filename, repo_type):
        raise OSError("offline")

    monkeypatch.setattr(data, "hf_hub_download", unreachable)
    with pytest.raises(DataError, match=r"^someone/weibo: cannot get labels\.txt from the Hub repo \(offline\); pass labels="):
        load_corpus("someone/weibo")


def test_train_file_replaces_train_split(tmp_path):
    folder = write_corpus(tmp_path / "weibo", {**good_splits(), "train_augmented": GOOD_ROWS[:1]})
    assert load_corpus(folder, train_file="train_augmented.jsonl").splits["train"].to_list()[0]["text"] == "张三在北京"
    elsewhere = write_corpus(tmp_path / "augmented", {"train": GOOD_ROWS[2:]}, labels=None)
    assert len(load_corpus(folder, train_file=elsewhere / "train.jsonl").splits["train"]) == 1


def test_k_prefers_the_prepared_subset_file(tmp_path):
    rows = [{"text": f"第{index}句", "entities": []} for index in range(10)]
    prepared = [{"text": "准备好的", "entities": []}] * 4
    folder = write_corpus(tmp_path / "weibo", {"train": rows, "dev": rows, "test": rows, "train_4": prepared})
    assert load_corpus(folder, k=4).splits["train"]["text"] == ["准备好的"] * 4
    expected = [row["text"] for row in take_k(rows, 4, seed=7)]
    assert load_corpus(folder, k=4, seed=7).splits["train"]["text"] == expected
    assert load_corpus(folder, k=5).splits["train"]["text"] == [row["text"] for row in take_k(rows, 5)]
    with pytest.raises(ValueError, match="either train_file or k"):
        load_corpus(folder, k=4, train_file="train.jsonl")


def test_k_shot_keeps_the_greedy_sample_of_the_train_split(tmp_path):
    rows = [{"text": f"第{index}句话", "entities": [{"start": 0, "end": 2, "label": "PER" if index % 3 else "LOC"}]} for index in range(12)]
    folder = write_corpus(tmp_path / "corpus", {"train": rows, "dev": rows[:2], "test": rows[:2]}, labels=["LOC", "PER"])
    sampled = load_corpus(folder, k_shot=2, seed=5).splits
    assert sampled["train"]["text"] == [rows[index]["text"] for index in sample_n_way_k_shot(rows, ["LOC", "PER"], 2, seed=5)]
    assert 2 <= len(sampled["train"]) < len(rows) and len(sampled["dev"]) == 2


def test_report_unusable_counts_without_dropping(tmp_path):
    rows = [{"text": "一二三", "entities": []}, {"text": "", "entities": []}, {"text": "一二三四五", "entities": []}]
    corpus = load_corpus(write_corpus(tmp_path / "weibo", {"train": rows, "dev": rows, "test": rows}))
    report = report_unusable(corpus.splits["train"], max_chars=4)
    assert report == {
        "rows": 3,
        "max_chars": 4,
        "too_long": {"count": 1, "indices": [2]},
        "empty_text": {"count": 1, "indices": [1]},
    }
    assert report_unusable(corpus.splits["train"], max_chars=None)["too_long"]["count"] == 0
    assert len(corpus.splits["train"]) == 3


SHARED_COUNTS = {
    "weibo": (8, 1350, 270, 270),
    "resume": (8, 3821, 463, 477),
    "cmeee": (9, 1000, 1000, 3000),
    "pku": (1, 1000, 300, 644),
    "ud": (15, 3997, 500, 500),
}


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_corpora_load_completely(name, shared_data):
    corpus = load_corpus(shared_data / name)
    label_count, *sizes = SHARED_COUNTS[name]
    assert len(corpus.labels) == label_count
    assert [len(corpus.splits[split]) for split in ("train", "dev", "test")] == sizes
    assert corpus.extension_labels == ()


def test_a_byte_order_mark_opens_labels_and_jsonl_files_without_changing_them(tmp_path):
    folder = tmp_path / "bom"
    folder.mkdir()
    (folder / "labels.txt").write_bytes("\ufeffPER\nLOC\n".encode("utf-8"))
    for split in ("train", "dev", "test"):
        (folder / f"{split}.jsonl").write_bytes(("\ufeff" + json.dumps(GOOD_ROWS[0], ensure_ascii=False) + "\n").encode("utf-8"))
    corpus = load_corpus(folder)
    assert corpus.labels == ("PER", "LOC") and corpus.splits["train"][0]["text"] == GOOD_ROWS[0]["text"]


def test_an_empty_split_is_named_instead_of_crashing_inside_datasets(tmp_path):
    folder = tmp_path / "empty-dev"
    folder.mkdir()
    (folder / "labels.txt").write_text("PER\nLOC\n", encoding="utf-8")
    (folder / "train.jsonl").write_text(json.dumps(GOOD_ROWS[0], ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "dev.jsonl").write_text("", encoding="utf-8")
    (folder / "test.jsonl").write_text(json.dumps(GOOD_ROWS[0], ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"split 'dev': no rows"):
        load_corpus(folder)


# --- tagged sources: CoNLL-style folders and tokens + ner_tags datasets ---------------------------------

CONLL_TRAIN = """-DOCSTART- O

张 B-PER
三 I-PER
在 O
北 NR B-LOC
京 NR I-LOC

今\tO
\u3000\tO
天\tO


李 B-PER
四 I-PER
去 O
上 B-LOC
海 I-LOC
"""
CONLL_TRAIN_ROWS = [
    {"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]},
    {"text": "今\u3000天", "entities": []},
    {"text": "李四去上海", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]},
]
CONLL_DEV = "王\tB-PER\n五\tI-PER\n好\tO\n"
CONLL_TEST = "去 O\n杭 B-LOC\n州 I-LOC\n"


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def conll_folder(folder: Path, train: str = CONLL_TRAIN, **extra: str) -> Path:
    return write_files(folder, {"train.txt": train, "validation.txt": CONLL_DEV, "test.conll": CONLL_TEST, **extra})


def span_rows(corpus, split: str) -> list[dict]:
    return [{"text": row["text"], "entities": row["entities"]} for row in corpus.splits[split]]


def test_a_conll_folder_loads_into_exact_character_spans(tmp_path):
    corpus = load_corpus(conll_folder(tmp_path / "weibo"))
    assert corpus.labels == ("LOC", "PER")
    assert list(corpus.splits) == ["train", "dev", "test"]
    assert span_rows(corpus, "train") == CONLL_TRAIN_ROWS
    assert span_rows(corpus, "dev") == [{"text": "王五好", "entities": [{"start": 0, "end": 2, "label": "PER"}]}]
    assert span_rows(corpus, "test") == [{"text": "去杭州", "entities": [{"start": 1, "end": 3, "label": "LOC"}]}]
    assert all(split.features == FEATURES for split in corpus.splits.values())


def test_a_bioes_conll_folder_with_labels_txt(tmp_path):
    train = "张 B-PER\n三 E-PER\n去 O\n京 S-LOC\n\n在 O\n中 B-ORG\n国 M-ORG\n队 E-ORG\n"
    files = {"train.bmes": train, "dev.bmes": "张 S-PER\n", "test.bmes": "京 S-LOC\n", "labels.txt": "PER\nLOC\nORG\n"}
    corpus = load_corpus(write_files(tmp_path / "resume", files))
    assert corpus.labels == ("PER", "LOC", "ORG")
    assert span_rows(corpus, "train") == [
        {"text": "张三去京", "entities": [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 4, "label": "LOC"}]},
        {"text": "在中国队", "entities": [{"start": 1, "end": 4, "label": "ORG"}]},
    ]


def test_word_tokens_join_with_spaces_between_latin_words_only(tmp_path):
    train = "我\tO\n用\tO\niPhone\tB-PRODUCT\n15\tI-PRODUCT\n在\tO\nNew\tB-LOC\nYork\tI-LOC\n"
    corpus = load_corpus(write_files(tmp_path / "words", {"train.conll": train, "dev.conll": train, "test.conll": train}))
    row = corpus.splits["train"][0]
    assert row["text"] == "我用iPhone 15在New York"
    assert [row["text"][span["start"] : span["end"]] for span in row["entities"]] == ["iPhone 15", "New York"]


def test_iob1_is_read_when_named(tmp_path):
    train = "张 I-PER\n三 I-PER\n李 B-PER\n四 I-PER\n在 O\n京 I-LOC\n"
    folder = write_files(tmp_path / "iob1", {"train.bio": train, "dev.bio": "京 I-LOC\n", "test.bio": "京 I-LOC\n"})
    with pytest.raises(DataError, match=r"^iob1/train\.bio line 1: token '张': tag 'I-PER' at the sentence start continues no PER span"):
        load_corpus(folder)
    corpus = load_corpus(folder, tag_scheme="IOB1")
    assert corpus.splits["train"][0]["entities"] == [
        {"start": 0, "end": 2, "label": "PER"},
        {"start": 2, "end": 4, "label": "PER"},
        {"start": 5, "end": 6, "label": "LOC"},
    ]
    with pytest.raises(ValueError, match="tag_scheme must be one of BIO, BIOES, IOB1, got 'IOB2'"):
        load_corpus(folder, tag_scheme="IOB2")


def test_a_bio_file_reads_into_spans_that_write_back_to_the_same_tags(tmp_path):
    blocks = [block for block in CONLL_TRAIN.split("\n\n") if block.strip("\n") and "DOCSTART" not in block]
    corpus = load_corpus(conll_folder(tmp_path / "weibo"))
    for block, row in zip(blocks, corpus.splits["train"], strict=True):
        fields = [re.split("[ \t]", line) for line in block.strip("\n").splitlines()]
        tokens, tags = [line[0] for line in fields], [line[-1] for line in fields]
        assert spans_to_tags(row["text"], row["entities"], tokens).tags == tags


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("张 B-PER\n三 I-PER\n\n北 O\n京 I-LOC\n", "weibo/train.txt line 5: token '京': tag 'I-LOC' after 'O' continues no LOC span (IOB1 data needs the IOB1 scheme)"),
        ("张 B-PER\n三 I-LOC\n", "weibo/train.txt line 2: token '三': tag 'I-LOC' after 'B-PER' continues no LOC span (IOB1 data needs the IOB1 scheme)"),
        ("张 B-PER\n三 B-ORG\n", "weibo/train.txt line 2: token '三': tag 'B-ORG': label 'ORG' not in labels.txt"),
        ("张 B-PER\n三 PER\n", "weibo/train.txt line 2: token '三': tag 'PER' is not in the BIO scheme ('O', or B-, I- followed by a label)"),
        ("张 B-PER\n三\n", "weibo/train.txt line 2: token '三' has no tag (expected the token, a space or tab, the tag)"),
        ("张 B-PER\n三 O\n四 S-PER\n", "weibo/train.txt line 2: token '三': tag 'O' after 'B-PER' leaves the PER span open (BIOES ends it with E-PER)"),
        ("张 S-PER\n\n三 B-PER\n", "weibo/train.txt line 3: token '三': the sentence ends inside a PER span (BIOES ends it with E-PER)"),
        ("张 O\n三 E-PER\n", "weibo/train.txt line 2: token '三': tag 'E-PER' after 'O' ends no PER span"),
    ],
)  # fmt: skip
def test_bad_conll_lines_name_file_line_and_token(tmp_path, train, message):
    with pytest.raises(DataError) as raised:
        load_corpus(conll_folder(tmp_path / "weibo", train, **{"labels.txt": "PER\nLOC\n"}))
    assert str(raised.value) == message


def test_conll_folder_errors(tmp_path):
    not_utf8 = conll_folder(tmp_path / "weibo")
    (not_utf8 / "train.txt").write_bytes("张 O\n".encode() + b"\xff O\n")
    with pytest.raises(DataError, match=r"^weibo/train\.txt line 2: not UTF-8"):
        load_corpus(not_utf8)
    both = conll_folder(tmp_path / "both", **{"dev.txt": CONLL_DEV})
    with pytest.raises(DataError, match=r"^both: dev\.txt and validation\.txt both hold split 'dev'; keep one$"):
        load_corpus(both)
    no_test = write_files(tmp_path / "no-test", {"train.txt": CONLL_TRAIN, "dev.txt": CONLL_DEV})
    with pytest.raises(DataError, match=r"^no-test: no file for split 'test' \(looked for test\.txt, test\.conll, test\.bio, test\.bmes\)$"):
        load_corpus(no_test)
    no_labels = conll_folder(tmp_path / "all-o", "张 O\n", **{"validation.txt": "三 O\n", "test.conll": "四 O\n"})
    with pytest.raises(DataError, match=r"^all-o: no label in the tags; add labels\.txt or pass labels=\[\.\.\.\]$"):
        load_corpus(no_labels)
    assert load_corpus(no_labels, labels=["PER"]).labels == ("PER",)


NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TAGGED_FEATURES = Features({"id": Value("string"), "tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=NAMES))})
TAGGED_ROWS = {
    "train": {"id": ["a", "b"], "tokens": [list("张三在北京"), list("今天")], "ner_tags": [[1, 2, 0, 3, 4], [0, 0]]},
    "validation": {"id": ["c"], "tokens": [list("王五")], "ner_tags": [[1, 2]]},
    "test": {"id": ["d"], "tokens": [list("去杭州")], "ner_tags": [[0, 3, 4]]},
}
TAGGED_EXPECTED = {
    "train": [CONLL_TRAIN_ROWS[0], {"text": "今天", "entities": []}],
    "dev": [{"text": "王五", "entities": [{"start": 0, "end": 2, "label": "PER"}]}],
    "test": [{"text": "去杭州", "entities": [{"start": 1, "end": 3, "label": "LOC"}]}],
}


def tagged_dataset() -> DatasetDict:
    return DatasetDict({split: Dataset.from_dict(rows, features=TAGGED_FEATURES) for split, rows in TAGGED_ROWS.items()})


def test_class_label_datasets_load_in_memory_and_from_disk(tmp_path):
    saved = tmp_path / "msra_saved"
    tagged_dataset().save_to_disk(str(saved))
    for source in (tagged_dataset(), saved):
        corpus = load_corpus(source)
        assert corpus.labels == ("PER", "LOC")
        assert {split: span_rows(corpus, split) for split in corpus.splits} == TAGGED_EXPECTED
    (saved / "labels.txt").write_text("LOC\nPER\nORG\n", encoding="utf-8")
    assert load_corpus(saved).labels == ("LOC", "PER", "ORG")


def test_string_tags_give_sorted_labels(tmp_path):
    strings = DatasetDict(
        {split: Dataset.from_dict({"tokens": rows["tokens"], "ner_tags": [[NAMES[tag] for tag in tags] for tags in rows["ner_tags"]]})
         for split, rows in TAGGED_ROWS.items()}
    )  # fmt: skip
    corpus = load_corpus(strings)
    assert corpus.labels == ("LOC", "PER")
    assert {split: span_rows(corpus, split) for split in corpus.splits} == TAGGED_EXPECTED


def single_split(tokens, ner_tags, features: Features | None = None) -> DatasetDict:
    dataset = Dataset.from_dict({"tokens": tokens, "ner_tags": ner_tags}, features=features)
    return DatasetDict({"train": dataset, "dev": dataset, "test": dataset})


CLASS_LABEL = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=NAMES))})


@pytest.mark.parametrize(
    ("dataset", "labels", "message"),
    [
        (single_split([list("好"), list("张三")], [[0], [0, 2]], CLASS_LABEL), None, "row 1: token 1 '三': tag 'I-PER' after 'O' continues no PER span (IOB1 data needs the IOB1 scheme)"),
        (single_split([list("北京")], [["B-LOC", "I-LOC"]]), ["PER"], "row 0: token 0 '北': tag 'B-LOC': label 'LOC' not in the labels argument"),
        (single_split([list("北京")], [["B-LOC", "B_LOC"]]), None, "row 0: token 1 '京': tag 'B_LOC' is not in the BIO scheme ('O', or B-, I- followed by a label)"),
        (single_split([list("张三")], [[-1, 2]], CLASS_LABEL), None, "row 0: token 0 '张': ner_tags id -1 is not a ClassLabel id (0 to 4)"),
        (single_split([list("张三")], [["B-PER"]]), None, "row 0: 2 tokens but 1 ner_tags"),
        (single_split([["张", ""]], [["B-PER", "I-PER"]]), None, "row 0: token 1 '': a token must be a non-empty string, got ''"),
        (single_split([None], [["O"]]), None, "row 0: field 'tokens' must be a list, got null"),
        (single_split([list("张三")], [[1, 2]]), None, ": ner_tags must hold ClassLabel ids or tag strings, got List(Value('int64'))"),
    ],
)  # fmt: skip
def test_bad_tagged_rows_name_split_row_and_token(dataset, labels, message):
    with pytest.raises(DataError) as raised:
        load_corpus(dataset, labels=labels)
    assert str(raised.value) == f"in-memory DatasetDict split 'train'{'' if message.startswith(':') else ' '}{message}"


def test_span_splits_in_memory_load_like_the_jsonl_folder(tmp_path):
    spans = DatasetDict({split: raw_dataset(rows) for split, rows in good_splits().items()})
    with pytest.raises(DataError, match=r"^in-memory DatasetDict: pass labels=\[\.\.\.\]$"):
        load_corpus(spans)
    expected = load_corpus(write_corpus(tmp_path / "weibo", good_splits()))
    assert load_corpus(spans, labels=LABELS).splits["dev"].to_list() == expected.splits["dev"].to_list()


def test_a_class_label_dataset_on_the_hub_loads_by_repo_id_without_labels_txt(tmp_path):
    saved = tmp_path / "msra_saved"
    tagged_dataset().save_to_disk(str(saved))
    repo_id = f"{FAKE_USER}/msra-tiny"
    code = f"""
import json
from datasets import load_from_disk
from knowfree.data import load_corpus

load_from_disk({str(saved)!r}).push_to_hub("{repo_id}")
corpus = load_corpus("{repo_id}")
print(json.dumps({{"labels": corpus.labels, "splits": {{name: split.to_list() for name, split in corpus.splits.items()}}}}))
"""
    with LocalHub(tmp_path / "hub") as hub:
        result = run_against_hub(hub.url, code, cwd=Path(__file__).resolve().parents[1])
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded["labels"] == ["PER", "LOC"]
    assert {split: [{"text": row["text"], "entities": row["entities"]} for row in rows] for split, rows in loaded["splits"].items()} == TAGGED_EXPECTED


def test_train_runs_on_a_conll_folder(tmp_path):
    folder = tmp_path / "conll"
    folder.mkdir()
    rows = training_rows()
    for split, part in (("train", rows), ("dev", rows[:8]), ("test", rows[8:16])):
        blocks = []
        for row in part:
            tags = spans_to_tags(row["text"], row["entities"]).tags
            blocks.append("".join(f"{char} {tag}\n" for char, tag in zip(row["text"], tags, strict=True)))
        (folder / f"{split}.txt").write_text("\n".join(blocks), encoding="utf-8")
    encoder = write_tiny_encoder(tmp_path / "encoder", build_bert_char_tokenizer())
    output_dir = tmp_path / "run"
    results = train.main(["--data", str(folder), "--encoder", str(encoder), "--output_dir", str(output_dir),
                          "--batch_size", "4", "--max_steps", "2", "--seed", "7",
                          "--config_overrides", "projection_size=32,span_hidden_size=40,biaffine_heads=2,local_attention_heads=4"])  # fmt: skip
    assert "f1" in results["test"]
    assert KnowFreeConfig.from_pretrained(output_dir).target_labels == ["LOC", "ORG", "PER"]
