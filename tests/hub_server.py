"""A local stand-in for the Hugging Face Hub, for tests that push and pull, serving from the standard http.server.

No PyPI package provides a Hub that accepts pushes, and the real Hub is unreachable from our machines, so this
module implements just the routes the stock clients (huggingface_hub 2.4, datasets 5.2, transformers 5.23) call
for: create/delete a repo, upload_folder / create_commit (preupload, LFS batch + PUT, NDJSON commit),
hf_hub_download / snapshot_download, HfFileSystem (tree, paths-info, ranged reads), DatasetDict.push_to_hub,
load_dataset(repo_id), model.push_to_hub and AutoModel.from_pretrained(..., trust_remote_code=True).

Clients must run with HF_ENDPOINT pointing here (set before importing huggingface_hub, datasets or transformers,
which read it at import time) and HF_HUB_DISABLE_XET=1 (otherwise uploads go through the Xet protocol, which this
server does not speak). `run_against_hub` runs client code in a subprocess set up that way.

Like the Hub, it refuses a README.md whose YAML metadata breaks the rules for the fields our cards write (HTTP 400,
both on `/api/validate-yaml`, which the client asks before uploading, and on the commit itself): `base_model` and
`datasets` must be repo ids, `license` a Hub license id, `size_categories` a Hub size bucket, and a `model-index`
must be well formed. Reading YAML takes PyYAML, which huggingface_hub requires anyway; the license ids are the
Hub's table as knowfree keeps it, and the size buckets the list the `datasets` package ships.

Storage, under `root`: one folder per repo, `{models|datasets|spaces}/{namespace}/{name}/`, holding
`blobs/{sha256}` (file contents), `commits/{commit_id}.json` (the full file manifest of each commit) and
`refs/main` (the commit id the main branch points to). Only the main branch exists; any commit id can be read.

Manual use: `python tests/hub_server.py --port 8080 --root /tmp/hub`, then `export HF_ENDPOINT=http://127.0.0.1:8080
HF_HUB_DISABLE_XET=1 HF_TOKEN=<FAKE_TOKEN>`.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from knowfree.model_card import HUB_LICENSES

FAKE_USER = "tester"
FAKE_TOKEN = "hf_localhub_fake_token"
MAIN_BRANCH = "main"
REPO_TYPES = ("model", "dataset", "space")
# Files matching these patterns are stored through LFS, like the `.gitattributes` the real Hub seeds new repos with.
# datasets depends on this for parquet: it deletes its temporary shards right after uploading them, so they must
# travel by LFS upload before the commit rather than inline in it.
LFS_PATTERNS = (
    "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.joblib", "*.model", "*.msgpack", "*.npy", "*.npz",
    "*.onnx", "*.parquet", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.tflite", "*.zip",
)  # fmt: skip
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub also sends any file this large, or any binary one, through LFS
MAX_BODY_BYTES = 2 * 1024**3
SOCKET_TIMEOUT_S = 60  # bounds how long one connection can hold a server thread
LFS_POINTER_TEMPLATE = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
README = "README.md"
FRONT_MATTER = re.compile(r"\A\s*---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
REPO_ID_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")
DATASETS_RESOURCES = Path(importlib.util.find_spec("datasets").origin).with_name("utils") / "resources"
SIZE_CATEGORIES = frozenset(json.loads((DATASETS_RESOURCES / "size_categories.json").read_text()))


class HubError(Exception):
    """An error answered to the client as the Hub does: status, `X-Error-Code` (which the client maps to
    RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) and a JSON `{"error": message}` body."""

    def __init__(
        self,
        status: HTTPStatus,
        message: str,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}


def _now_iso() -> str:
    """A timestamp in the one format `huggingface_hub.utils.parse_datetime` accepts."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_blob_oid(content: bytes) -> str:
    """The git object id of a blob, which the Hub reports as `oid` for regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return LFS_POINTER_TEMPLATE.format(sha256=sha256, size=size).encode()


def _is_lfs_path(path: str, size: int, sample: bytes) -> bool:
    """Which upload mode preupload answers: LFS for known binary suffixes, big files and binary-looking content."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in LFS_PATTERNS) or size >= LFS_MIN_SIZE or b"\0" in sample


def _is_repo_id(value: Any) -> bool:
    """The Hub's repo id shape: `name` or `namespace/name`, letters, digits, `_`, `-`, `.`, starting and ending with a
    letter, digit or `_`, without `--` or `..`; so never a path (`./x`, `/tmp/x`, `a/b/c`) nor a name with spaces."""
    return (
        isinstance(value, str)
        and value.count("/") <= 1
        and all(REPO_ID_PART.fullmatch(part) for part in value.split("/"))
        and "--" not in value
        and ".." not in value
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _repo_id_errors(metadata: dict[str, Any], field: str, kind: str) -> list[str]:
    return [
        f'"{field}" with value "{value}" is not valid. It must be a {kind} id on the Hub: "name" or "namespace/name"'
        for value in _listed(metadata.get(field, []))
        if not _is_repo_id(value)
    ]


def _vocabulary_errors(metadata: dict[str, Any], field: str, known: frozenset[str], reference: str) -> list[str]:
    return [
        f'"{field}" with value "{value}" is not valid. It must be one of the identifiers listed at {reference}'
        for value in _listed(metadata.get(field, []))
        if value not in known
    ]


def _text_at(node: Any, *keys: str) -> bool:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return isinstance(node, str) and bool(node.strip())


def _metric_errors(metrics: Any, where: str) -> list[str]:
    if not isinstance(metrics, list) or not metrics:
        return [f'"{where}.metrics" must be a non-empty array']
    errors = []
    for index, metric in enumerate(metrics):
        if not _text_at(metric, "type"):
            errors.append(f'"{where}.metrics[{index}].type" is required')
        value = metric.get("value") if isinstance(metric, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            errors.append(f'"{where}.metrics[{index}].value" is required and must be a number or a string')
    return errors


def _model_index_errors(model_index: Any) -> list[str]:
    """The model-index schema the Hub checks: each entry a name and results; each result a task type, a dataset
    name and type, and metrics that each have a type and a value."""
    if model_index is None:
        return []
    if not isinstance(model_index, list):
        return ['"model-index" must be an array']
    errors = []
    for entry_index, entry in enumerate(model_index):
        where = f"model-index[{entry_index}]"
        if not _text_at(entry, "name"):
            errors.append(f'"{where}.name" is required')
        results = entry.get("results") if isinstance(entry, dict) else None
        if not isinstance(results, list) or not results:
            errors.append(f'"{where}.results" must be a non-empty array')
            continue
        for result_index, result in enumerate(results):
            result_where = f"{where}.results[{result_index}]"
            for keys in (("task", "type"), ("dataset", "name"), ("dataset", "type")):
                if not _text_at(result, *keys):
                    errors.append(f'"{result_where}.{".".join(keys)}" is required')
            errors += _metric_errors(result.get("metrics") if isinstance(result, dict) else None, result_where)
    return errors


def card_metadata_errors(content: str, repo_type: str) -> list[str]:
    """What the Hub would refuse in the YAML metadata of a README.md pushed to a repo of `repo_type`: no metadata
    is fine, unreadable YAML is not, and the fields our cards write must follow the Hub's rules."""
    match = FRONT_MATTER.match(content)
    if match is None:
        return []
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        return [f"YAML metadata could not be parsed: {' '.join(str(error).split())}"]
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return ["YAML metadata must be a mapping of fields"]
    errors = _vocabulary_errors(metadata, "license", HUB_LICENSES, "https://huggingface.co/docs/hub/repositories-licenses")
    if repo_type == "model":
        errors += _repo_id_errors(metadata, "base_model", "model")
        errors += _repo_id_errors(metadata, "datasets", "dataset")
        errors += _model_index_errors(metadata.get("model-index"))
    if repo_type == "dataset":
        errors += _vocabulary_errors(metadata, "size_categories", SIZE_CATEGORIES, "https://huggingface.co/docs/hub/datasets-cards")
    return errors


def _invalid_readme(errors: list[str]) -> HubError:
    return HubError(HTTPStatus.BAD_REQUEST, "Invalid metadata in README.md.\n" + "\n".join(f"- {error}" for error in errors))


@dataclass(frozen=True)
class RepoKey:
    repo_type: str
    repo_id: str

    def __post_init__(self) -> None:
        """Repo ids become folder names: only `namespace/name` made of safe characters gets that far."""
        parts = self.repo_id.split("/")
        if len(parts) != 2 or any(not re.fullmatch(r"[\w.-]+", part) or part in (".", "..") for part in parts):
            raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid repo id: {self.repo_id}")

    @property
    def url_prefix(self) -> str:
        """Path prefix of the repo's web and git URLs: `datasets/` and `spaces/` for those types, none for models."""
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"


class RepoStore:
    """Repos as plain files under `root`. Commit manifests and blobs are written once and never changed, and refs
    are replaced atomically, so readers need no lock; one lock serialises all writers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._write_lock = threading.Lock()

    def repo_dir(self, key: RepoKey) -> Path:
        return self.root / f"{key.repo_type}s" / key.repo_id

    def exists(self, key: RepoKey) -> bool:
        return (self.repo_dir(key) / "refs" / MAIN_BRANCH).is_file()

    def create(self, key: RepoKey) -> None:
        """Create the repo with an initial commit holding `.gitattributes`, as the Hub does."""
        gitattributes = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
        with self._write_lock:
            if self.exists(key):
                raise HubError(HTTPStatus.CONFLICT, f"You already created this {key.repo_type} repo: {key.repo_id}")
            for sub in ("blobs", "commits", "refs"):
                (self.repo_dir(key) / sub).mkdir(parents=True, exist_ok=True)
            entry = self._store_blob(key, gitattributes.encode(), lfs=False)
            self._write_commit(key, None, {".gitattributes": entry}, "initial commit", "")

    def delete(self, key: RepoKey) -> None:
        with self._write_lock:
            self.require_repo(key)
            shutil.rmtree(self.repo_dir(key))

    def require_repo(self, key: RepoKey) -> None:
        if not self.exists(key):
            raise self._repo_not_found(key)

    @staticmethod
    def _repo_not_found(key: RepoKey) -> HubError:
        return HubError(HTTPStatus.NOT_FOUND, f"Repository not found: {key.repo_type} {key.repo_id}", "RepoNotFound")

    def head(self, key: RepoKey) -> str:
        try:
            return (self.repo_dir(key) / "refs" / MAIN_BRANCH).read_text().strip()
        except FileNotFoundError:
            raise self._repo_not_found(key) from None

    def resolve_revision(self, key: RepoKey, revision: str) -> str:
        """Commit id for `revision`: the main branch, or an existing commit id."""
        if revision == MAIN_BRANCH:
            return self.head(key)
        self.require_repo(key)
        if re.fullmatch(r"[0-9a-f]{40}", revision) and (self.repo_dir(key) / "commits" / f"{revision}.json").is_file():
            return revision
        raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit_record(self, key: RepoKey, commit_id: str) -> dict[str, Any]:
        """The manifest of a commit; a repo deleted under a reader's feet reads as not found."""
        try:
            return json.loads((self.repo_dir(key) / "commits" / f"{commit_id}.json").read_text())
        except FileNotFoundError:
            raise self._repo_not_found(key) from None

    def blob_path(self, key: RepoKey, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid sha256 oid: {sha256}")
        return self.repo_dir(key) / "blobs" / sha256

    def put_lfs_blob(self, key: RepoKey, sha256: str, content: bytes) -> None:
        """Store an LFS upload; rejects content whose hash is not the announced oid."""
        self.require_repo(key)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Uploaded content does not match oid {sha256}")
        self._write_atomically(self.blob_path(key, sha256), content)

    def commit(self, key: RepoKey, header: dict[str, Any], operations: list[dict[str, Any]]) -> str:
        """Apply NDJSON commit operations on top of the main branch; answers 412 if `parentCommit` is stale."""
        with self._write_lock:
            parent = self.head(key)
            expected_parent = header.get("parentCommit")
            if expected_parent is not None and expected_parent != parent:
                raise HubError(HTTPStatus.PRECONDITION_FAILED, f"Parent commit {expected_parent} is not the head")
            files = dict(self.commit_record(key, parent)["files"])
            for operation in operations:
                self._apply_operation(key, files, operation["key"], operation["value"])
            readme = files.get(README)
            if any(operation["value"]["path"].strip("/") == README for operation in operations) and readme is not None:
                content = self.blob_path(key, readme["sha256"]).read_text(encoding="utf-8", errors="replace")
                errors = card_metadata_errors(content, key.repo_type)
                if errors:
                    raise _invalid_readme(errors)
            return self._write_commit(key, parent, files, header.get("summary", ""), header.get("description", ""))

    def _apply_operation(self, key: RepoKey, files: dict[str, Any], kind: str, value: dict[str, Any]) -> None:
        path = value["path"].strip("/")
        if kind == "file":
            files[path] = self._store_blob(key, base64.b64decode(value["content"]), lfs=False)
        elif kind == "lfsFile":
            blob = self.blob_path(key, value["oid"])
            if not blob.is_file():
                raise HubError(HTTPStatus.UNPROCESSABLE_ENTITY, f"LFS object {value['oid']} was never uploaded")
            size = blob.stat().st_size
            pointer = _lfs_pointer(value["oid"], size)
            files[path] = {"sha256": value["oid"], "size": size, "git_oid": _git_blob_oid(pointer), "lfs": True}
        elif kind == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(HTTPStatus.NOT_FOUND, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif kind == "deletedFolder":
            for file_path in [p for p in files if p.startswith(path + "/")]:
                del files[file_path]
        else:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported commit operation: {kind}")

    def _store_blob(self, key: RepoKey, content: bytes, lfs: bool) -> dict[str, Any]:
        sha256 = hashlib.sha256(content).hexdigest()
        self._write_atomically(self.blob_path(key, sha256), content)
        git_oid = _git_blob_oid(_lfs_pointer(sha256, len(content)) if lfs else content)
        return {"sha256": sha256, "size": len(content), "git_oid": git_oid, "lfs": lfs}

    def _write_commit(
        self, key: RepoKey, parent: str | None, files: dict[str, Any], summary: str, description: str
    ) -> str:
        """Write the manifest and move the branch. Each file entry remembers the commit that last changed it."""
        previous = self.commit_record(key, parent)["files"] if parent else {}
        record: dict[str, Any] = {
            "parent": parent,
            "summary": summary,
            "description": description,
            "date": _now_iso(),
            "nonce": time.time_ns(),  # distinct ids for identical trees
            "files": files,
        }
        commit_id = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()
        for path, entry in files.items():
            unchanged = path in previous and previous[path]["git_oid"] == entry["git_oid"]
            entry["last_commit"] = previous[path]["last_commit"] if unchanged else commit_id
        commits = self.repo_dir(key) / "commits"
        self._write_atomically(commits / f"{commit_id}.json", json.dumps(record, indent=1).encode())
        self._write_atomically(self.repo_dir(key) / "refs" / MAIN_BRANCH, commit_id.encode())
        return commit_id

    @staticmethod
    def _write_atomically(path: Path, content: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp.write(content)
        os.replace(tmp.name, path)


def _tree_entry(path: str, entry: dict[str, Any], store: RepoStore, key: RepoKey, expand: bool) -> dict[str, Any]:
    """A file as `RepoFile` parses it, from tree and paths-info."""
    out: dict[str, Any] = {"type": "file", "oid": entry["git_oid"], "size": entry["size"], "path": path}
    if entry["lfs"]:
        pointer_size = len(_lfs_pointer(entry["sha256"], entry["size"]))
        out["lfs"] = {"oid": entry["sha256"], "size": entry["size"], "pointerSize": pointer_size}
    if expand:
        record = store.commit_record(key, entry["last_commit"])
        out["lastCommit"] = {"id": entry["last_commit"], "title": record["summary"], "date": record["date"]}
    return out


def _folder_entry(path: str, commit_id: str) -> dict[str, Any]:
    """A folder as `RepoFolder` parses it; its oid only needs to be stable for a given commit."""
    return {"type": "directory", "oid": hashlib.sha1(f"{commit_id}:{path}".encode()).hexdigest(), "path": path}


def _folders_of(files: dict[str, Any]) -> set[str]:
    return {"/".join(path.split("/")[:depth]) for path in files for depth in range(1, path.count("/") + 1)}


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """First and last byte of a single `bytes=` range, as HfFileSystem requests them."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.groups() == ("", ""):
        raise HubError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, f"Unsupported range: {header}")
    start_text, end_text = match.groups()
    if start_text == "":
        start, end = max(size - int(end_text), 0), size - 1
    else:
        start, end = int(start_text), min(int(end_text), size - 1) if end_text else size - 1
    if start >= size or start > end:
        raise HubError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, f"Range {header} outside of {size} bytes")
    return start, end


REPO = r"(?P<repo_id>[^/]+/[^/]+?)"
API_REPO = r"/api/(?P<type_plural>models|datasets|spaces)/" + REPO
WEB_REPO = r"/(?:(?P<type_plural>datasets|spaces)/)?" + REPO
REVISION = r"(?P<revision>[^/]+)"


class HubRequestHandler(BaseHTTPRequestHandler):
    """One request. `ROUTES` maps (method, path regex) to the handler method; `HEAD` is served by GET handlers."""

    server: HubHTTPServer
    timeout = SOCKET_TIMEOUT_S
    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        ("GET", re.compile(r"/api/whoami-v2"), "handle_whoami"),
        ("POST", re.compile(r"/api/repos/create"), "handle_create_repo"),
        ("DELETE", re.compile(r"/api/repos/delete"), "handle_delete_repo"),
        ("POST", re.compile(r"/api/validate-yaml"), "handle_validate_yaml"),
        ("GET", re.compile(API_REPO + r"(?:/revision/" + REVISION + ")?"), "handle_repo_info"),
        ("GET", re.compile(API_REPO + r"/tree/" + REVISION + r"(?:/(?P<path>.*))?"), "handle_tree"),
        ("POST", re.compile(API_REPO + r"/paths-info/" + REVISION), "handle_paths_info"),
        ("POST", re.compile(API_REPO + r"/preupload/" + REVISION), "handle_preupload"),
        ("POST", re.compile(API_REPO + r"/commit/" + REVISION), "handle_commit"),
        ("POST", re.compile(WEB_REPO + r"\.git/info/lfs/objects/batch"), "handle_lfs_batch"),
        ("PUT", re.compile(r"/lfs-upload" + WEB_REPO + r"/(?P<oid>[0-9a-f]{64})"), "handle_lfs_upload"),
        ("GET", re.compile(WEB_REPO + r"/resolve/" + REVISION + r"/(?P<path>.+)"), "handle_resolve"),
    ]

    # --- plumbing -------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self.is_head = method == "HEAD"
        url = urlsplit(self.path)
        self.query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            for route_method, pattern, handler_name in self.ROUTES:
                match = pattern.fullmatch(url.path)
                if match and route_method == ("GET" if self.is_head else method):
                    params = {name: unquote(value) for name, value in match.groupdict().items() if value is not None}
                    getattr(self, handler_name)(**params)
                    return
            raise HubError(HTTPStatus.NOT_FOUND, f"No route for {method} {url.path}")
        except HubError as error:
            self._send_error(error)
        except Exception as error:  # any bug must still answer, or the client would wait for its timeout
            self.log_error("%s while serving %s %s", repr(error), method, self.path)
            self._send_error(HubError(HTTPStatus.INTERNAL_SERVER_ERROR, repr(error)))

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    @property
    def store(self) -> RepoStore:
        return self.server.store

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_length: int | None = None,
    ) -> None:
        """Send one response and close the connection. `content_length` lets HEAD announce a body it does not send."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        self.send_header("Connection", "close")
        self.end_headers()
        if not self.is_head:
            self.wfile.write(body)

    def _send_json(
        self, payload: Any, status: HTTPStatus = HTTPStatus.OK, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_error(self, error: HubError) -> None:
        one_line = " ".join(error.message.split())
        headers = {"X-Error-Message": one_line.encode("ascii", "replace").decode(), **error.headers}
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        self._send_json({"error": error.message}, error.status, headers)

    def _read_body(self) -> bytes:
        """The request body, plain or chunked (file uploads may stream), capped at MAX_BODY_BYTES."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise HubError(HTTPStatus.BAD_REQUEST, "Connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                total += size
                if total > MAX_BODY_BYTES:
                    raise HubError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers end with an empty line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise HubError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
        return self.rfile.read(length)

    def _read_json(self) -> Any:
        try:
            return json.loads(self._read_body() or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid JSON body: {error}") from error

    def _require_token(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {FAKE_TOKEN}":
            raise HubError(HTTPStatus.UNAUTHORIZED, "Invalid credentials in Authorization header")

    def _repo_key_from_payload(self, payload: dict[str, Any]) -> RepoKey:
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported repo type: {repo_type}")
        return RepoKey(repo_type, f"{payload.get('organization') or FAKE_USER}/{payload['name']}")

    def _repo_url(self, key: RepoKey) -> str:
        return f"{self.base_url}/{key.url_prefix}{key.repo_id}"

    @staticmethod
    def _key(repo_id: str, type_plural: str | None) -> RepoKey:
        return RepoKey(type_plural[:-1] if type_plural else "model", repo_id)

    # --- routes ---------------------------------------------------------------------------------------------------

    def handle_whoami(self) -> None:
        """GET /api/whoami-v2: `HfApi.whoami()` (and anything that needs the user's namespace)."""
        self._require_token()
        self._send_json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": FAKE_USER,
                "fullname": "Local Hub Tester",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
            }
        )

    def handle_create_repo(self) -> None:
        """POST /api/repos/create: `create_repo`, also called by push_to_hub in datasets and transformers.
        An existing repo answers 409, which `exist_ok=True` accepts."""
        self._require_token()
        key = self._repo_key_from_payload(self._read_json())
        self.store.create(key)
        self._send_json({"url": self._repo_url(key), "name": key.repo_id, "id": key.repo_id})

    def handle_delete_repo(self) -> None:
        """DELETE /api/repos/delete: `delete_repo`; a missing repo answers 404 RepoNotFound."""
        self._require_token()
        self.store.delete(self._repo_key_from_payload(self._read_json()))
        self._send_json({})

    def handle_validate_yaml(self) -> None:
        """POST /api/validate-yaml (`{"content", "repoType"}`): `create_commit`, `upload_folder` and `RepoCard.validate`
        check a README.md here before uploading. A refusal is a 400 listing each problem under `errors`, which the
        client joins into its ValueError("Invalid metadata in README.md. ..."); asked for `text/plain` (as
        `RepoCard.validate` asks), the refusal is that message alone."""
        payload = self._read_json()
        errors = card_metadata_errors(payload.get("content", ""), payload.get("repoType") or "model")
        if errors and self.headers.get("Accept") == "text/plain":
            self._send(HTTPStatus.BAD_REQUEST, _invalid_readme(errors).message.encode(), {"Content-Type": "text/plain"})
            return
        if errors:
            self._send_json(
                {"error": _invalid_readme(errors).message, "errors": [{"message": error} for error in errors], "warnings": []},
                HTTPStatus.BAD_REQUEST,
            )
            return
        self._send_json({"errors": [], "warnings": []})

    def handle_repo_info(self, type_plural: str, repo_id: str, revision: str = MAIN_BRANCH) -> None:
        """GET /api/{type}s/{repo_id}[/revision/{rev}]: `model_info` / `dataset_info` / `space_info` / `repo_info`,
        `repo_exists`, snapshot_download (for the commit id), datasets' push_to_hub (parent commit)."""
        key = self._key(repo_id, type_plural)
        commit_id = self.store.resolve_revision(key, revision)
        record = self.store.commit_record(key, commit_id)
        with_blobs = self.query.get("blobs", "").lower() == "true"
        siblings = []
        for path, entry in sorted(record["files"].items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                sibling.update(size=entry["size"], blobId=entry["git_oid"])
                if entry["lfs"]:
                    pointer_size = len(_lfs_pointer(entry["sha256"], entry["size"]))
                    sibling["lfs"] = {"size": entry["size"], "sha256": entry["sha256"], "pointerSize": pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "id": key.repo_id,
            "author": key.repo_id.split("/")[0],
            "sha": commit_id,
            "lastModified": record["date"],
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if key.repo_type == "space":
            info["sdk"] = "gradio"
        self._send_json(info)

    def handle_tree(self, type_plural: str, repo_id: str, revision: str, path: str = "") -> None:
        """GET /api/{type}s/{repo_id}/tree/{rev}[/{path}]: `list_repo_tree`, `list_repo_files`, snapshot_download,
        HfFileSystem.ls/glob (datasets). One page, no Link header. A missing folder answers 404 EntryNotFound."""
        key = self._key(repo_id, type_plural)
        commit_id = self.store.resolve_revision(key, revision)
        files = self.store.commit_record(key, commit_id)["files"]
        recursive = self.query.get("recursive", "").lower() == "true"
        expand = self.query.get("expand", "").lower() == "true"
        folder = path.strip("/")
        prefix = f"{folder}/" if folder else ""
        folders = _folders_of(files)
        if folder and folder not in folders:
            raise HubError(HTTPStatus.NOT_FOUND, f"Folder not found: {folder}", "EntryNotFound")

        def listed(entry_path: str) -> bool:
            return entry_path.startswith(prefix) and (recursive or "/" not in entry_path[len(prefix) :])

        entries = [_folder_entry(p, commit_id) for p in sorted(folders) if listed(p)]
        entries += [_tree_entry(p, e, self.store, key, expand) for p, e in sorted(files.items()) if listed(p)]
        self._send_json(entries)

    def handle_paths_info(self, type_plural: str, repo_id: str, revision: str) -> None:
        """POST /api/{type}s/{repo_id}/paths-info/{rev} (form: paths=..., expand=...): `get_paths_info`,
        HfFileSystem.info/exists (datasets' push_to_hub reads the existing README.md through it)."""
        key = self._key(repo_id, type_plural)
        commit_id = self.store.resolve_revision(key, revision)
        form = parse_qs(self._read_body().decode())
        expand = form.get("expand", ["false"])[-1].lower() == "true"
        files = self.store.commit_record(key, commit_id)["files"]
        folders = _folders_of(files)
        entries = []
        for path in (p.strip("/") for p in form.get("paths", [])):
            if path in files:
                entries.append(_tree_entry(path, files[path], self.store, key, expand))
            elif path in folders:
                entries.append(_folder_entry(path, commit_id))
        self._send_json(entries)

    def handle_preupload(self, type_plural: str, repo_id: str, revision: str) -> None:
        """POST /api/{type}s/{repo_id}/preupload/{rev}: create_commit / upload_folder ask per file whether it goes
        "lfs" (uploaded before the commit) or "regular" (inlined in it), and get the current oid to skip no-ops."""
        self._require_token()
        key = self._key(repo_id, type_plural)
        files = self.store.commit_record(key, self.store.resolve_revision(key, revision))["files"]
        answers = []
        for file in self._read_json().get("files", []):
            lfs = _is_lfs_path(file["path"], file["size"], base64.b64decode(file["sample"]))
            existing = files.get(file["path"])
            if existing is None:
                remote_oid = None
            elif lfs:
                remote_oid = existing["sha256"]
            else:
                remote_oid = None if existing["lfs"] else existing["git_oid"]
            upload_mode = "lfs" if lfs else "regular"
            answers.append({"path": file["path"], "uploadMode": upload_mode, "shouldIgnore": False, "oid": remote_oid})
        self._send_json({"files": answers})

    def handle_commit(self, type_plural: str, repo_id: str, revision: str) -> None:
        """POST /api/{type}s/{repo_id}/commit/{rev}: the NDJSON commit of create_commit / upload_folder / push_to_hub
        (lines: header, file, lfsFile, deletedFile, deletedFolder). Only the main branch takes commits."""
        self._require_token()
        key = self._key(repo_id, type_plural)
        self.store.require_repo(key)
        if revision != MAIN_BRANCH or self.query.get("create_pr"):
            raise HubError(HTTPStatus.BAD_REQUEST, "This local Hub only commits to the main branch, without PRs")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        headers = [line["value"] for line in lines if line["key"] == "header"]
        if len(headers) != 1:
            raise HubError(HTTPStatus.BAD_REQUEST, "A commit needs exactly one header line")
        commit_id = self.store.commit(key, headers[0], [line for line in lines if line["key"] != "header"])
        self._send_json(
            {"commitUrl": f"{self._repo_url(key)}/commit/{commit_id}", "commitOid": commit_id, "pullRequestUrl": None}
        )

    def handle_lfs_batch(self, repo_id: str, type_plural: str | None = None) -> None:
        """POST /{prefix}{repo_id}.git/info/lfs/objects/batch: the git-LFS batch API, used by the non-Xet upload path
        of create_commit. Answers a PUT URL per object not yet stored, no action for those already stored."""
        self._require_token()
        key = self._key(repo_id, type_plural)
        self.store.require_repo(key)
        request = self._read_json()
        if request.get("operation") != "upload":
            raise HubError(HTTPStatus.BAD_REQUEST, "Only the LFS upload operation is supported")
        objects = []
        for obj in request.get("objects", []):
            answer: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not self.store.blob_path(key, obj["oid"]).is_file():
                href = f"{self.base_url}/lfs-upload/{key.url_prefix}{key.repo_id}/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href, "expires_in": 3600}}
            objects.append(answer)
        self._send(
            HTTPStatus.OK,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def handle_lfs_upload(self, repo_id: str, oid: str, type_plural: str | None = None) -> None:
        """PUT /lfs-upload/{prefix}{repo_id}/{sha256}: the upload URL the batch answer hands out (on the Hub, a signed
        S3 URL, hence no token: the client sends none). Content must hash to the oid."""
        self.store.put_lfs_blob(self._key(repo_id, type_plural), oid, self._read_body())
        self._send(HTTPStatus.OK, b"", {"ETag": f'"{oid}"'})

    def handle_resolve(self, repo_id: str, revision: str, path: str, type_plural: str | None = None) -> None:
        """GET|HEAD /{prefix}{repo_id}/resolve/{rev}/{path}: hf_hub_download (HEAD for metadata, then GET),
        snapshot_download, HfFileSystem reads (with Range), transformers' cached_file and remote-code download.
        Sends X-Repo-Commit and ETag (git oid, or sha256 for LFS files) as the client requires; a missing file
        answers 404 EntryNotFound with X-Repo-Commit so the client can cache its absence."""
        key = self._key(repo_id, type_plural)
        commit_id = self.store.resolve_revision(key, revision)
        entry = self.store.commit_record(key, commit_id)["files"].get(path)
        if entry is None:
            not_found = f"Entry not found: {path}"
            raise HubError(HTTPStatus.NOT_FOUND, not_found, "EntryNotFound", {"X-Repo-Commit": commit_id})
        headers = {
            "X-Repo-Commit": commit_id,
            "ETag": f'"{entry["sha256"] if entry["lfs"] else entry["git_oid"]}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        blob = self.store.blob_path(key, entry["sha256"])
        range_header = self.headers.get("Range")
        if range_header is None:
            self._send(HTTPStatus.OK, b"" if self.is_head else blob.read_bytes(), headers, entry["size"])
            return
        start, end = _parse_range(range_header, entry["size"])
        with blob.open("rb") as file:
            file.seek(start)
            body = file.read(end - start + 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{entry['size']}"
        self._send(HTTPStatus.PARTIAL_CONTENT, body, headers)


class HubHTTPServer(ThreadingHTTPServer):
    """Threaded server carrying the store. Non-daemon request threads are joined by `server_close`; since every
    response closes its connection and sockets time out, that join is bounded."""

    daemon_threads = False

    def __init__(self, address: tuple[str, int], store: RepoStore, log_requests: bool) -> None:
        self.store = store
        self.log_requests = log_requests
        super().__init__(address, HubRequestHandler)


class LocalHub:
    """A local Hub on 127.0.0.1 with an OS-assigned (or given) port, storing repos under `root`.

    Use as a context manager, or call `start()` / `stop()`. Clients authenticate with FAKE_TOKEN as user FAKE_USER.
    """

    def __init__(self, root: Path, port: int = 0, log_requests: bool = False) -> None:
        self.root = Path(root)
        self._port = port
        self._log_requests = log_requests
        self._server: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Endpoint to export as HF_ENDPOINT, e.g. `http://127.0.0.1:43817`."""
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        if self._server is not None:
            raise RuntimeError("LocalHub is already started")
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = HubHTTPServer(("127.0.0.1", self._port), RepoStore(self.root), self._log_requests)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wait for in-flight requests and the serving thread, release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=SOCKET_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def hub_client_env(hub_url: str, hf_home: Path) -> dict[str, str]:
    """Environment for a client process talking to the local Hub, with its own HF_HOME so no cache leaks."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HF_", "HUGGINGFACE_")) and name != "TRANSFORMERS_OFFLINE"
    }
    env.update(
        HF_ENDPOINT=hub_url,
        HF_HUB_DISABLE_XET="1",
        HF_TOKEN=FAKE_TOKEN,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HOME=str(hf_home),
    )
    return env


def run_against_hub(
    hub_url: str, code: str, cwd: Path | str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter wired to the local Hub (HF_ENDPOINT must be set before huggingface_hub,
    datasets or transformers are imported, hence the subprocess). Each call gets a new HF_HOME, so downloads really
    go through the server. Raises AssertionError showing stdout and stderr if the code fails."""
    with tempfile.TemporaryDirectory(prefix="hf-home-") as hf_home:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=hub_client_env(hub_url, Path(hf_home)),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise AssertionError(
            f"Code run against {hub_url} exited with {result.returncode}\n"
            f"--- code ---\n{code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a local Hugging Face Hub for manual tests.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--root", type=Path, required=True, help="folder holding the repos")
    args = parser.parse_args()
    with LocalHub(args.root, port=args.port, log_requests=True) as hub:
        print(f"Local Hub at {hub.url}, repos under {args.root}", flush=True)
        print(f"export HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1 HF_TOKEN={FAKE_TOKEN}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
