"""LLM access for the augmentation: huggingface_hub.InferenceClient with caching, retries and bounded concurrency.

One client speaks to a TGI endpoint, any OpenAI-compatible server (vLLM, llama.cpp, Ollama) or a
Hugging Face inference provider. Chat completion is the default route; `route="generate"` uses TGI's
raw text generation for endpoints that only offer that. Transient failures (timeouts, dropped
connections, 429 and 5xx) are retried with exponential backoff; a request that still fails is
counted and answered with None so the pipeline can go on; an endpoint that cannot be reached at
all stops the run with `EndpointUnreachable` instead of failing every request one by one.

Structured output: a request may carry a JSON schema for its reply. Servers take it in different
forms (STRUCTURED_FORMS), tried in this order on the chat route:
- `json_schema`: OpenAI's response_format. huggingface_hub adapts it per inference provider, and for
  an endpoint URL rewrites it into TGI's form (`{"type": "json_object", "value": schema}`), which TGI
  obeys and vLLM and llama.cpp read as plain JSON mode;
- `json_object_schema`: `{"type": "json_object", "schema": schema}`, llama.cpp's Python server;
- `structured_outputs` and then `guided_json`: vLLM's own request fields (newer, older releases);
- on /generate, TGI's `grammar`.
With `structured="auto"` the client asks once which form the server obeys, with a probe whose schema
admits a single answer no unconstrained model would give; the answer is kept in the reply cache (a
re-run probes no more) and reported as `structured_form`. A server that obeys none gets plain
requests ("none"); `structured="on"` refuses to go on then.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass

import httpx2
from huggingface_hub import InferenceClient, InferenceTimeoutError, is_offline_mode
from huggingface_hub.errors import HfHubHTTPError
from tqdm.auto import tqdm

from augment.prompts import Messages, as_plain_prompt
from augment.reply_cache import ReplyCache, request_key
from augment.reply_parsing import parse_json_reply

logger = logging.getLogger(__name__)

ROUTES = ("chat", "generate")
STRUCTURED_MODES = ("auto", "on", "off")
# Tried in this order on the chat route; /generate knows only TGI's grammar.
CHAT_FORMS = ("json_schema", "json_object_schema", "structured_outputs", "guided_json")
GENERATE_FORMS = ("grammar",)
STRUCTURED_FORMS = CHAT_FORMS + GENERATE_FORMS
NO_STRUCTURE = "none"
PROBE_ANSWER = "kf-probe-7q3"
PROBE_SCHEMA = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": [PROBE_ANSWER]}},
    "required": ["probe"],
    "additionalProperties": False,
}
PROBE_MESSAGES: Messages = [{"role": "user", "content": "Say hello in one word."}]
PROBE_VERSION = "structured-probe-1"


class EndpointUnreachable(RuntimeError):
    """No connection could be made to the LLM endpoint at all."""


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding parameters; part of every cache key."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 60.0
    retries: int = 3
    backoff_seconds: float = 1.0


class StructuredOutputUnsupported(RuntimeError):
    """`structured="on"` was asked of a server that obeys none of the schema forms."""


def schema_arguments(form: str, schema: dict, name: str = "reply") -> dict:
    """Keyword arguments of InferenceClient.chat_completion (or text_generation, for `grammar`) carrying `schema` in `form`."""
    if form == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}}
    if form == "json_object_schema":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if form == "structured_outputs":
        return {"extra_body": {"structured_outputs": {"json": schema}}}
    if form == "guided_json":
        return {"extra_body": {"guided_json": schema}}
    if form == "grammar":
        return {"grammar": {"type": "json", "value": schema}}
    raise ValueError(f"unknown structured-output form {form!r} (known: {', '.join(STRUCTURED_FORMS)})")


def usage_between(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """What happened between two `usage_snapshot`s, per prompt kind (kinds with nothing new left out)."""
    delta = {}
    for kind, counts in after.items():
        changed = {event: round(value - before.get(kind, {}).get(event, 0), 3) for event, value in counts.items()}
        changed = {event: value for event, value in changed.items() if value}
        if changed:
            delta[kind] = changed
    return delta


class _RequestFailed(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def _classify(error: Exception) -> _RequestFailed:
    if isinstance(error, InferenceTimeoutError | httpx2.TimeoutException):
        return _RequestFailed("timeout", True)
    if isinstance(error, httpx2.ConnectError):
        return _RequestFailed("connection_refused", True)
    if isinstance(error, httpx2.TransportError):
        return _RequestFailed("connection_dropped", True)
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        return _RequestFailed(f"http_{status}", status == 429 or status >= 500)
    return _RequestFailed(type(error).__name__, False)


class LLMClient:
    """Cached, retried, concurrent completions of chat messages.

    `endpoint` is a URL (TGI or OpenAI-compatible server); `model` a model id (for a provider, or the
    model name an OpenAI-compatible server expects). `counts` accumulates what happened: `sent`
    (HTTP requests made, retries included), `cached` (answered from the cache), `answered`, one
    `failed_<reason>` per request given up on, and `probe_sent` for the structured-output probe.
    `usage[description]` keeps the same counts per `complete_all` description (one prompt kind each)
    plus `completion_tokens` (as the server reports them) and `request_seconds` (wall time of the
    answered requests), from which generation speed is measured.
    `cache_only` answers from the cache alone: a request it does not hold is counted
    (`failed_not_cached`) and never sent, so a re-run over the same cache provably asks nothing.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        token: str | None = None,
        route: str = "chat",
        settings: GenerationSettings = GenerationSettings(),
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 4,
        cache: ReplyCache | None = None,
        structured: str = "off",
        cache_only: bool = False,
    ) -> None:
        if endpoint is None and model is None:
            raise ValueError("give an endpoint URL or a model id for the LLM")
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        if structured not in STRUCTURED_MODES:
            raise ValueError(f"structured must be one of {STRUCTURED_MODES}, got {structured!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if is_offline_mode():
            raise EndpointUnreachable(
                "HF_HUB_OFFLINE is set: huggingface_hub then blocks every InferenceClient request, local endpoints "
                "included; unset it for LLM annotation, or annotate offline (--annotator offline)"
            )
        self.endpoint, self.model, self.provider, self.route = endpoint, model, provider, route
        self.settings, self.retry, self.concurrency = settings, retry, concurrency
        self.structured, self.cache_only = structured, cache_only
        self._form: str | None = NO_STRUCTURE if structured == "off" else None
        self.cache = cache if cache is not None else ReplyCache()
        self.counts: Counter = Counter()
        self.usage: dict[str, Counter] = {}
        self._tally_lock = threading.Lock()
        self._client = InferenceClient(model=endpoint or model, provider=provider, token=token, timeout=retry.timeout)
        self._reached = False

    @property
    def identity(self) -> str:
        """What the cache and the provenance record as 'the model'."""
        return self.model or self.endpoint

    @property
    def structured_form(self) -> str:
        """The schema form requests are sent in ("none" when plain), probing the server the first time."""
        if self._form is None:
            self._form = self._probe_form()
        return self._form

    def _probe_record(self) -> dict:
        return {"probe": PROBE_VERSION, "model": self.identity, "route": self.route}

    def known_form(self) -> str | None:
        """The schema form if already known (decided, or recorded in the cache), without asking the server."""
        return self._form or self.cache.get(request_key(self._probe_record()))

    def request_record(self, messages: Messages, schema: dict | None = None, form: str | None = None) -> dict:
        """The cache-key material of one request; the schema and its form only when one is sent."""
        record = {"messages": messages, "model": self.identity, "route": self.route, "parameters": asdict(self.settings)}
        form = form or (self.structured_form if schema is not None else NO_STRUCTURE)
        if schema is not None and form != NO_STRUCTURE:
            record["structured"] = {"form": form, "schema": schema}
        return record

    def is_cached(self, messages: Messages, schema: dict | None = None) -> bool:
        """Whether a run would answer this request from the cache; never contacts the server."""
        form = self.known_form() if schema is not None else NO_STRUCTURE
        return form is not None and request_key(self.request_record(messages, schema, form)) in self.cache

    def usage_snapshot(self) -> dict[str, dict[str, float]]:
        """A copy of `usage`, to measure one stretch of work as the difference of two snapshots (`usage_between`)."""
        with self._tally_lock:
            return {kind: dict(counter) for kind, counter in self.usage.items()}

    def _tally(self, kind: str, event: str, amount: float = 1) -> None:
        with self._tally_lock:
            self.counts[event] += amount
            self.usage.setdefault(kind, Counter())[event] += amount

    def _call(self, messages: Messages, form: str = NO_STRUCTURE, schema: dict | None = None, max_new_tokens: int | None = None) -> tuple[str, int | None]:
        """The reply text and the number of tokens the server says it generated (None when it does not say)."""
        constrained = schema is not None and form != NO_STRUCTURE
        max_new_tokens = max_new_tokens or self.settings.max_new_tokens
        if self.route == "generate":
            text = self._client.text_generation(
                as_plain_prompt(messages),
                max_new_tokens=max_new_tokens,
                temperature=self.settings.temperature or None,
                do_sample=self.settings.temperature > 0,
                seed=self.settings.seed,
                **(schema_arguments(form, schema) if constrained else {}),
            )
            return text, None
        output = self._client.chat_completion(
            messages,
            model=self.model if self.endpoint else None,
            max_tokens=max_new_tokens,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            **(schema_arguments(form, schema) if constrained else {}),
        )
        tokens = getattr(output.usage, "completion_tokens", None) if output.usage else None
        return output.choices[0].message.content or "", tokens

    def _probe_form(self) -> str:
        """The first schema form the server obeys, from the cache when an earlier run asked already."""
        record = self._probe_record()
        key = request_key(record)
        known = self.cache.get(key)
        if known is not None:
            return known
        if self.cache_only:
            raise StructuredOutputUnsupported(
                "the reply cache does not record which structured-output form this server takes; run once with the "
                "endpoint reachable (or with --structured off) before replaying the cache alone"
            )
        form = next((form for form in (GENERATE_FORMS if self.route == "generate" else CHAT_FORMS) if self._obeys(form)), NO_STRUCTURE)
        if form == NO_STRUCTURE and self.structured == "on":
            raise StructuredOutputUnsupported(
                f"{self.identity} obeys none of the structured-output forms ({', '.join(STRUCTURED_FORMS)}); "
                "use --structured auto or off to send plain requests"
            )
        logger.info("structured output for %s: %s", self.identity, form)
        self.cache.put(key, record, form)
        return form

    def _obeys(self, form: str) -> bool:
        """Whether the server answers the probe with the one reply its schema allows.

        A refused form (HTTP 4xx) means no; transient failures are retried like any request.
        """
        failure = None
        for attempt in range(self.retry.retries + 1):
            if attempt:
                time.sleep(self.retry.backoff_seconds * 2 ** (attempt - 1))
            self._tally("probe", "probe_sent")
            try:
                reply, _ = self._call(PROBE_MESSAGES, form, PROBE_SCHEMA, max_new_tokens=32)
            except Exception as error:  # classified: refusals end the probe of this form
                failure = _classify(error)
                if not failure.retryable:
                    return False
                continue
            self._reached = True
            answer = parse_json_reply(reply)
            return isinstance(answer, dict) and answer.get("probe") == PROBE_ANSWER
        if failure.reason == "connection_refused" and not self._reached:
            raise self._unreachable()
        return False

    def _unreachable(self) -> EndpointUnreachable:
        return EndpointUnreachable(
            f"cannot connect to the LLM at {self.identity} after {self.retry.retries + 1} attempts; "
            "check the URL and that the server is running, or annotate offline (--annotator offline)"
        )

    def _complete_one(self, messages: Messages, schema: dict | None = None, kind: str = "LLM requests") -> str | None:
        record = self.request_record(messages, schema)
        key = request_key(record)
        cached = self.cache.get(key)
        if cached is not None:
            self._tally(kind, "cached")
            return cached
        if self.cache_only:
            self._tally(kind, "failed_not_cached")
            return None
        form = record.get("structured", {}).get("form", NO_STRUCTURE)
        failure, attempts = None, 0
        for attempt in range(self.retry.retries + 1):
            attempts = attempt + 1
            if attempt:
                self._tally(kind, "retried")
                time.sleep(self.retry.backoff_seconds * 2 ** (attempt - 1))
            self._tally(kind, "sent")
            started = time.monotonic()
            try:
                reply, tokens = self._call(messages, form, schema)
            except Exception as error:  # classified below; unknown errors are not retried
                failure = _classify(error)
                logger.debug("request failed (%s, attempt %d): %s", failure.reason, attempt + 1, error)
                if not failure.retryable:
                    break
                continue
            self._reached = True
            self.cache.put(key, record, reply)
            self._tally(kind, "answered")
            self._tally(kind, "request_seconds", time.monotonic() - started)
            if tokens is not None:
                self._tally(kind, "completion_tokens", tokens)
            return reply
        if failure.reason == "connection_refused" and not self._reached:
            raise self._unreachable()
        self._tally(kind, f"failed_{failure.reason}")
        logger.warning("giving up on one request after %d attempt(s) (%s)", attempts, failure.reason)
        return None

    def complete_all(self, requests: Sequence[Messages], description: str = "LLM requests", schemas: Sequence[dict | None] | None = None) -> list[str | None]:
        """Replies in request order; None where a request failed for good. Shows progress.

        `schemas[i]` (optional) is the JSON schema of reply i, sent when the server takes one.
        """
        if schemas is None:
            schemas = [None] * len(requests)
        if len(schemas) != len(requests):
            raise ValueError(f"{len(schemas)} schemas for {len(requests)} requests")
        if any(schema is not None for schema in schemas):
            logger.debug("replies constrained in the %r form", self.structured_form)  # probes once, before the pool
        replies: list[str | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool, tqdm(total=len(requests), desc=description, unit="req") as progress:
            futures = {pool.submit(self._complete_one, messages, schema, description): index for index, (messages, schema) in enumerate(zip(requests, schemas))}
            try:
                for future in as_completed(futures):
                    replies[futures[future]] = future.result()
                    progress.update(1)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return replies
