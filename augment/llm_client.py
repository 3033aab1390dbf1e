"""LLM access for the augmentation: huggingface_hub.InferenceClient with caching, retries and bounded concurrency.

One client speaks to a TGI endpoint, any OpenAI-compatible server (vLLM, llama.cpp, Ollama) or a
Hugging Face inference provider. Chat completion is the default route; `route="generate"` uses TGI's
raw text generation for endpoints that only offer that. Transient failures (timeouts, dropped
connections, 429 and 5xx) are retried with exponential backoff; a request that still fails is
counted and answered with None so the pipeline can go on; an endpoint that cannot be reached at
all stops the run with `EndpointUnreachable` instead of failing every request one by one.
"""

import logging
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

logger = logging.getLogger(__name__)

ROUTES = ("chat", "generate")


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
    (HTTP requests made, retries included), `cached` (answered from the cache), `answered`, and one
    `failed_<reason>` per request given up on.
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
    ) -> None:
        if endpoint is None and model is None:
            raise ValueError("give an endpoint URL or a model id for the LLM")
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if is_offline_mode():
            raise EndpointUnreachable(
                "HF_HUB_OFFLINE is set: huggingface_hub then blocks every InferenceClient request, local endpoints "
                "included; unset it for LLM annotation, or annotate offline (--annotator offline)"
            )
        self.endpoint, self.model, self.provider, self.route = endpoint, model, provider, route
        self.settings, self.retry, self.concurrency = settings, retry, concurrency
        self.cache = cache if cache is not None else ReplyCache()
        self.counts: Counter = Counter()
        self._client = InferenceClient(model=endpoint or model, provider=provider, token=token, timeout=retry.timeout)
        self._reached = False

    @property
    def identity(self) -> str:
        """What the cache and the provenance record as 'the model'."""
        return self.model or self.endpoint

    def request_record(self, messages: Messages) -> dict:
        """The cache-key material of one request."""
        return {"messages": messages, "model": self.identity, "route": self.route, "parameters": asdict(self.settings)}

    def is_cached(self, messages: Messages) -> bool:
        return request_key(self.request_record(messages)) in self.cache

    def _call(self, messages: Messages) -> str:
        if self.route == "generate":
            return self._client.text_generation(
                as_plain_prompt(messages),
                max_new_tokens=self.settings.max_new_tokens,
                temperature=self.settings.temperature or None,
                do_sample=self.settings.temperature > 0,
                seed=self.settings.seed,
            )
        output = self._client.chat_completion(
            messages,
            model=self.model if self.endpoint else None,
            max_tokens=self.settings.max_new_tokens,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
        )
        return output.choices[0].message.content or ""

    def _complete_one(self, messages: Messages) -> str | None:
        record = self.request_record(messages)
        key = request_key(record)
        cached = self.cache.get(key)
        if cached is not None:
            self.counts["cached"] += 1
            return cached
        failure, attempts = None, 0
        for attempt in range(self.retry.retries + 1):
            attempts = attempt + 1
            if attempt:
                self.counts["retried"] += 1
                time.sleep(self.retry.backoff_seconds * 2 ** (attempt - 1))
            self.counts["sent"] += 1
            try:
                reply = self._call(messages)
            except Exception as error:  # classified below; unknown errors are not retried
                failure = _classify(error)
                logger.debug("request failed (%s, attempt %d): %s", failure.reason, attempt + 1, error)
                if not failure.retryable:
                    break
                continue
            self._reached = True
            self.cache.put(key, record, reply)
            self.counts["answered"] += 1
            return reply
        if failure.reason == "connection_refused" and not self._reached:
            raise EndpointUnreachable(
                f"cannot connect to the LLM at {self.identity} after {self.retry.retries + 1} attempts; "
                "check the URL and that the server is running, or annotate offline (--annotator offline)"
            )
        self.counts[f"failed_{failure.reason}"] += 1
        logger.warning("giving up on one request after %d attempt(s) (%s)", attempts, failure.reason)
        return None

    def complete_all(self, requests: Sequence[Messages], description: str = "LLM requests") -> list[str | None]:
        """Replies in request order; None where a request failed for good. Shows progress."""
        replies: list[str | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool, tqdm(total=len(requests), desc=description, unit="req") as progress:
            futures = {pool.submit(self._complete_one, messages): index for index, messages in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    replies[futures[future]] = future.result()
                    progress.update(1)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return replies
