import json

import pytest

from augment.reply_cache import ReplyCache, request_key


def test_replies_survive_a_reopen(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = ReplyCache(path)
    request = {"messages": [{"role": "user", "content": "你好"}], "model": "m", "parameters": {"t": 0}}
    key = request_key(request)
    cache.put(key, request, "回答")
    cache.put(key, request, "ignored second answer")
    reopened = ReplyCache(path)
    assert len(reopened) == 1 and reopened.get(key) == "回答"
    assert json.loads(path.read_text(encoding="utf-8"))["request"] == request


def test_key_depends_on_prompt_model_and_parameters():
    base = {"messages": [{"role": "user", "content": "a"}], "model": "m", "parameters": {"temperature": 0}}
    variants = [
        {**base, "messages": [{"role": "user", "content": "b"}]},
        {**base, "model": "other"},
        {**base, "parameters": {"temperature": 0.5}},
    ]
    assert len({request_key(base)} | {request_key(variant) for variant in variants}) == 4
    assert request_key(base) == request_key(dict(reversed(list(base.items()))))


def test_a_torn_last_line_is_cut_and_appending_continues(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = ReplyCache(path)
    cache.put("k1", {"n": 1}, "one")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "k2", "request": {"n": 2}, "rep')  # killed mid-write
    reopened = ReplyCache(path)
    assert len(reopened) == 1 and "k2" not in reopened
    reopened.put("k3", {"n": 3}, "three")
    assert [json.loads(line)["key"] for line in path.read_text(encoding="utf-8").splitlines()] == ["k1", "k3"]


def test_a_corrupt_complete_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "k1", "request": {}, "reply": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="cache.jsonl line 2"):
        ReplyCache(path)


def test_invalid_utf8_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_bytes(b'{"key": "k1", "request": {}, "reply": "x"}\n{"key": "k2", "reply": "\xff"}\n')
    with pytest.raises(ValueError, match=r"cache\.jsonl line 2: not UTF-8"):
        ReplyCache(path)


def test_opening_waits_for_another_process_writing_the_same_cache(tmp_path):
    """While another holder has the cache's lock (a process appending), opening it neither reads nor cuts the file."""
    import fcntl
    import threading

    path = tmp_path / "cache.jsonl"
    ReplyCache(path).put("k1", {"n": 1}, "one")
    opened = {}
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with path.open("a", encoding="utf-8") as handle:
            handle.write('{"key": "k2", "request": {"n": 2}, "reply": "tw')  # the other writer, mid-line
        opener = threading.Thread(target=lambda: opened.setdefault("cache", ReplyCache(path)))
        opener.start()
        opener.join(timeout=0.5)
        assert opener.is_alive() and "cache" not in opened  # blocked on the lock, nothing cut yet
        with path.open("a", encoding="utf-8") as handle:
            handle.write('o"}\n')  # the other writer finishes its line
        fcntl.flock(lock, fcntl.LOCK_UN)
    opener.join()
    assert opened["cache"].get("k2") == "two" and len(opened["cache"]) == 2
