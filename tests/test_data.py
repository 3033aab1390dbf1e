"""knowfree.data: validation messages, the three source kinds, and the real shared corpora."""

import json
import shutil
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from hub_server import FAKE_USER, LocalHub, run_against_hub

from knowfree import data
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
