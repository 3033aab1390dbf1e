"""A scripted LLM server for tests: TGI's `POST /generate` and the OpenAI `POST /v1/chat/completions` route.

Replies come from a `script(prompt) -> Action` function the test supplies, so concurrent requests get
the same answers in any order. Actions: a reply text, an HTTP error status, a hang (the request is
held until the server stops, so the client's timeout fires), or a dropped connection. Every request
is recorded (route and prompt) for assertions, with its JSON body in `bodies`.

`schemas` says how the server treats a reply schema, as the real ones treat what huggingface_hub
sends them: "ignore" (default: it answers as scripted, like a server without structured output),
"tgi" (obeys `{"type": "json" | "json_object", "value": ...}` on chat and `grammar` on /generate),
"llamacpp" (obeys `{"type": "json_object", "schema": ...}`, refuses a `json_schema` type with 400,
reads TGI's form as plain JSON mode) or "vllm" (obeys the `structured_outputs` field, reads
response_format `json_object` as plain JSON mode). An obeyed schema constrains the reply as a
grammar would: a scripted reply that is not JSON is replaced by the smallest value the schema admits.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Action:
    reply: str | None = None
    status: int = 200
    hang: bool = False
    drop: bool = False


def reply(text: str) -> Action:
    return Action(reply=text)


def error(status: int) -> Action:
    return Action(status=status)


HANG = Action(hang=True)
DROP = Action(drop=True)

Script = Callable[[str], Action]
SCHEMA_MODES = ("ignore", "tgi", "llamacpp", "vllm")


def smallest_instance(schema: dict):
    """The least value a constrained decoder could produce for `schema` (enough for our schemas)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: smallest_instance(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [smallest_instance(schema["items"]) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def obeyed_schema(mode: str, route: str, body: dict) -> tuple[dict | None, bool]:
    """(the schema the server enforces or None, whether it refuses the request)."""
    if route == "generate":
        grammar = (body.get("parameters") or {}).get("grammar")
        return (grammar["value"], False) if mode == "tgi" and grammar else (None, False)
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    if mode == "tgi":
        return (response_format.get("value"), False) if kind in ("json", "json_object") else (None, False)
    if mode == "llamacpp":
        return (response_format.get("schema"), False) if kind == "json_object" else (None, kind == "json_schema")
    if mode == "vllm":
        return ((body.get("structured_outputs") or {}).get("json"), False)
    return None, False


def prompt_of(route: str, body: dict) -> str:
    """The text a request asks about: the chat messages' contents joined, or TGI's `inputs`."""
    if route == "chat":
        return "\n\n".join(message["content"] for message in body["messages"]) + "\n\n"
    return body["inputs"]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/").endswith("/v1/chat/completions"):
            route = "chat"
        elif self.path.rstrip("/").endswith("/generate"):
            route = "generate"
        else:
            self._send(404, {"error": f"no route {self.path}"})
            return
        prompt = prompt_of(route, body)
        fake = self.server.fake
        fake.record(route, prompt, body)
        schema, refused = obeyed_schema(fake.schemas, route, body)
        if refused:
            self._send(400, {"error": "response_format type not supported"})
            return
        action = fake.script(prompt)
        if action.hang:
            fake.release.wait()
            self.close_connection = True
            return
        if action.drop:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if action.status != 200:
            self._send(action.status, {"error": "scripted failure"})
            return
        text = action.reply
        if schema is not None:
            try:
                json.loads(text)
            except (TypeError, ValueError):
                text = json.dumps(smallest_instance(schema), ensure_ascii=False)
        if route == "generate":
            self._send(200, {"generated_text": text})
        else:
            self._send(200, {
                "id": "fake", "object": "chat.completion", "created": 0, "model": "fake-llm",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeLLM"


class FakeLLM:
    """Context manager serving `script` on 127.0.0.1; `.url` is the base URL, `.requests` the log."""

    def __init__(self, script: Script, schemas: str = "ignore") -> None:
        if schemas not in SCHEMA_MODES:
            raise ValueError(f"schemas must be one of {SCHEMA_MODES}")
        self.script, self.schemas = script, schemas
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def record(self, route: str, prompt: str, body: dict) -> None:
        with self._lock:
            self.requests.append((route, prompt))
            self.bodies.append(body)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeLLM":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def closed_port_url() -> str:
    """A URL on which nothing listens (bound then released), for 'endpoint unreachable' tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
