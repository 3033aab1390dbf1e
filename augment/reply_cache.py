"""A crash-safe on-disk cache of LLM replies, keyed by (prompt, model, parameters).

Each finished reply is appended to a JSONL file and flushed to disk as it arrives, so a crash or
Ctrl-C loses no finished reply and a re-run answers every cached request without asking again. A
torn last line (the process killed mid-write) is the only thing a crash can leave behind: it is
cut off on open, since its request never counted as finished.

Two processes may share a cache file (two runs of one command, a benchmark beside a workflow): an
exclusive lock on a `.lock` file beside it covers the read-and-truncate on open and every append,
so one never cuts off a line the other is writing. A line that cannot be read (not UTF-8, not JSON,
not an entry) stops the load with the file's path and the line number.
"""

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def request_key(request: dict) -> str:
    """A stable hash of everything that determines a reply: messages or prompt, model, parameters."""
    canonical = json.dumps(request, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ReplyCache:
    """Replies by request key, persisted to `path` (in memory only when `path` is None)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._replies: dict[str, str] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock():
                self._load()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes (threads of this one are serialised by `_lock`)."""
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> None:
        if not self.path.is_file():
            return
        raw = self.path.read_bytes()
        complete_length = raw.rfind(b"\n") + 1
        if complete_length < len(raw):
            logger.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run", self.path, len(raw) - complete_length)
            with self.path.open("r+b") as handle:
                handle.truncate(complete_length)
        for number, line in enumerate(raw[:complete_length].split(b"\n")[:-1], start=1):
            try:
                entry = json.loads(line.decode("utf-8"))
                self._replies[entry["key"]] = entry["reply"]
            except UnicodeDecodeError as error:
                raise ValueError(f"{self.path} line {number}: not UTF-8 ({error.reason} at byte {error.start}); delete the line or the file") from None
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{self.path} line {number}: not a reply-cache entry ({error}); delete the line or the file") from None

    def __len__(self) -> int:
        return len(self._replies)

    def __contains__(self, key: str) -> bool:
        return key in self._replies

    def get(self, key: str) -> str | None:
        return self._replies.get(key)

    def put(self, key: str, request: dict, reply: str) -> None:
        """Remember a finished reply and make it durable before returning."""
        with self._lock:
            if key in self._replies:
                return
            self._replies[key] = reply
            if self.path is None:
                return
            line = json.dumps({"key": key, "request": request, "reply": reply}, ensure_ascii=False) + "\n"
            with self._file_lock(), self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
