"""KnowFREE span labeling demo: a Gradio app that runs from a checkout and deploys as a Hugging Face Space.

Tab 1 labels text with a KnowFREE model loaded through remote code (`AutoModel.from_pretrained(...,
trust_remote_code=True)`), so the Space needs none of this repository's code to predict. Tab 2 shows
the extension labels augmentation would add to a sentence: jieba's offline annotation, plus an LLM
endpoint's when one is configured.

The model comes from `build_demo(model_source)`, else the `KNOWFREE_MODEL` environment variable (a Hub
repo id or a folder), else the quickstart's saved model when it exists; `KNOWFREE_MODEL_REVISION` pins
the Hub revision (a commit hash: the remote code that runs here is then the code you reviewed). It is
loaded once, when the demo is built; requests are queued and batched into single `predict` calls, two
batches at a time, and a text longer than `KNOWFREE_MAX_CHARS` (default 5,000 characters, stated on
the page) is refused with a message, so no request holds the queue for long. Problems a user can cause
or meet (empty text, a model that does not load, an endpoint that is down) are shown as a message in
the page, never as a stack trace.

Run: `python space/app.py [--model PATH_OR_REPO] [--host 127.0.0.1] [--port 7860]`.
"""

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
QUICKSTART_MODEL = REPO_ROOT / "outputs" / "quickstart-weibo-250"
"""Where `scripts/quickstart.sh` saves its final model (its `OUTPUT`), used when nothing else is given."""

MODEL_ENV = "KNOWFREE_MODEL"
REVISION_ENV = "KNOWFREE_MODEL_REVISION"
MAX_CHARS_ENV = "KNOWFREE_MAX_CHARS"
DEFAULT_MAX_CHARS = 5000
TIME_LIMIT_ENV = "KNOWFREE_TIME_LIMIT"
DEFAULT_TIME_LIMIT = 30.0
LABEL_CONCURRENCY = 2
MIN_THRESHOLD = 0.05
LLM_ENDPOINT_ENV = "KNOWFREE_LLM_ENDPOINT"
LLM_MODEL_ENV = "KNOWFREE_LLM_MODEL"
TOKEN_ENV = "HF_TOKEN"

MAX_BATCH_SIZE = 8
"""Requests waiting in the queue are answered by one `predict` call of up to this many texts."""

FALLBACK_EXAMPLES = [
    "我们在北京的清华大学见到了李明老师。",
    "马云在杭州创办了阿里巴巴集团。",
    "北京大学的张老师去上海开会。",
]
WARM_UP_TEXT = "马云在杭州创办了阿里巴巴集团。"
SPAN_HEADERS = ["start", "end", "label", "score", "text", "depth"]
EXTENSION_HEADERS = ["source", "start", "end", "label", "text"]
OFFLINE_SOURCE = "offline (jieba)"
LLM_SOURCE = "LLM"


# ---------------------------------------------------------------------------------------------------
# Model: where it comes from, loading it once, the examples on its card
# ---------------------------------------------------------------------------------------------------


def resolve_model_source(model_source: str | None = None) -> str | None:
    """The argument, else `$KNOWFREE_MODEL`, else the quickstart model if it was saved; None if nothing."""
    if model_source:
        return str(model_source)
    if os.environ.get(MODEL_ENV):
        return os.environ[MODEL_ENV]
    if (QUICKSTART_MODEL / "config.json").is_file():
        return str(QUICKSTART_MODEL)
    return None


@dataclass
class LoadedModel:
    """A loaded model, or the reason there is none (shown in the page instead of a traceback)."""

    source: str | None
    model: Any = None
    error: str | None = None


def max_chars() -> int:
    """The longest text a request may send ($KNOWFREE_MAX_CHARS); a bad value falls back to the default."""
    try:
        return max(1, int(os.environ.get(MAX_CHARS_ENV, DEFAULT_MAX_CHARS)))
    except ValueError:
        return DEFAULT_MAX_CHARS


def time_limit() -> float:
    """Seconds one batch of requests may take ($KNOWFREE_TIME_LIMIT); a bad value falls back to the default."""
    try:
        return max(0.1, float(os.environ.get(TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT)))
    except ValueError:
        return DEFAULT_TIME_LIMIT


def load_model(source: str | None) -> LoadedModel:
    """Load once through remote code, as a Hub user would, at $KNOWFREE_MODEL_REVISION when set; failures become a message."""
    if source is None:
        return LoadedModel(
            None,
            error=f"No model configured: set {MODEL_ENV} to a Hub repo id or a model folder, "
            f"or run scripts/quickstart.sh to save one in {QUICKSTART_MODEL}.",
        )
    try:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(source, trust_remote_code=True, revision=os.environ.get(REVISION_ENV) or None)
    except Exception as error:  # noqa: BLE001 - any load failure is reported, the demo stays up
        return LoadedModel(source, error=f"The model {source!r} could not be loaded: {type(error).__name__}: {error}")
    if not callable(getattr(model, "predict", None)) or getattr(model, "tokenizer", None) is None:
        return LoadedModel(source, error=f"{source!r} is not a KnowFREE model with a tokenizer (no usable predict()).")
    try:
        model.eval().predict(WARM_UP_TEXT)  # the first forward pass is slow: pay it at start-up, not on a click
    except Exception as error:  # noqa: BLE001
        return LoadedModel(source, error=f"The model {source!r} loaded but cannot predict: {type(error).__name__}: {error}")
    return LoadedModel(source, model=model)


def card_examples(source: str | None, limit: int = 5) -> list[str]:
    """The `widget:` sentences of the model card (what the Hub shows for the model); [] if none readable."""
    if source is None:
        return []
    try:
        from huggingface_hub import ModelCard

        local_card = Path(source) / "README.md"
        card = ModelCard.load(local_card if local_card.is_file() else source, ignore_metadata_errors=True)
        widget = card.data.to_dict().get("widget") or []
    except Exception:  # noqa: BLE001 - no card, offline Hub, bad YAML: fall back to built-in examples
        return []
    texts = [entry["text"] for entry in widget if isinstance(entry, dict) and isinstance(entry.get("text"), str)]
    return [text for text in texts if text.strip()][:limit]


# ---------------------------------------------------------------------------------------------------
# Spans -> what the page shows
# ---------------------------------------------------------------------------------------------------


def inside(inner: dict, outer: dict) -> bool:
    """Whether span `inner` lies within span `outer` and is not the same stretch of text."""
    covered = outer["start"] <= inner["start"] and inner["end"] <= outer["end"]
    return covered and (inner["start"], inner["end"]) != (outer["start"], outer["end"])


def outermost_spans(spans: Sequence[dict]) -> list[dict]:
    """Spans inside no other span. Nested decoding never keeps crossing spans, so these never overlap
    and can be highlighted; the spans inside them are listed in the table instead of being lost."""
    kept = [span for span in spans if not any(inside(span, other) for other in spans)]
    return sorted(kept, key=lambda span: (span["start"], -span["end"]))


def nesting_depth(span: dict, spans: Sequence[dict]) -> int:
    """0 for an outermost span, 1 for a span inside one other span, and so on."""
    return sum(inside(span, other) for other in spans)


def highlight_segments(text: str, spans: Sequence[dict]) -> list[tuple[str, str | None]]:
    """(piece, label) pairs covering the whole text, labelled where a non-overlapping span lies.

    Spans that overlap an earlier one are skipped, so the text is shown exactly once whatever comes in.
    """
    segments: list[tuple[str, str | None]] = []
    position = 0
    for span in sorted(spans, key=lambda span: (span["start"], -span["end"])):
        if span["start"] < position:
            continue
        if span["start"] > position:
            segments.append((text[position : span["start"]], None))
        segments.append((text[span["start"] : span["end"]], span["label"]))
        position = span["end"]
    if position < len(text):
        segments.append((text[position:], None))
    return segments


def span_table(spans: Sequence[dict]) -> list[list]:
    """One row per predicted span, nested ones included, with its score and nesting depth."""
    return [
        [span["start"], span["end"], span["label"], round(float(span["score"]), 4), span["text"], nesting_depth(span, spans)]
        for span in spans
    ]


# ---------------------------------------------------------------------------------------------------
# Tab 1: span labeling, batched
# ---------------------------------------------------------------------------------------------------

SpanOutputs = tuple[str, list[tuple[str, str | None]], list[list], list[dict]]
"""status message, highlighted text, span table, JSON (exactly `predict`'s output)."""


def empty_outputs(message: str) -> SpanOutputs:
    return message, [], [], []


def describe_result(text: str, spans: list[dict], seconds: float, batch_size: int) -> SpanOutputs:
    """Everything the page shows for one text: spans, the outermost highlighted, and a short status."""
    outer = outermost_spans(spans)
    status = f"{len(spans)} span(s), {len(outer)} outermost highlighted · {len(text)} characters · {seconds:.2f} s"
    if batch_size > 1:
        status += f" (batch of {batch_size})"
    return status, highlight_segments(text, outer), span_table(spans), spans


class SpanLabeler:
    """The batched Gradio handler around one loaded model."""

    def __init__(self, loaded: LoadedModel, limit: int = DEFAULT_MAX_CHARS, seconds: float = DEFAULT_TIME_LIMIT):
        self.loaded, self.limit, self.seconds = loaded, limit, seconds

    def __call__(self, texts: list[str], thresholds: list[float], decodings: list[str]) -> tuple[list, ...]:
        """Gradio batch function: lists in, one list per output component out.

        Texts with the same threshold and decoding go through one `predict` call (the model batches and
        windows them); empty texts and failures get a message, never an exception that would fail the
        other requests of the batch.
        """
        results: list[SpanOutputs | None] = [None] * len(texts)
        groups: dict[tuple[float, str], list[int]] = {}
        for index, (text, threshold, decoding) in enumerate(zip(texts, thresholds, decodings)):
            if self.loaded.model is None:
                results[index] = empty_outputs(f"⚠️ {self.loaded.error}")
            elif not text or not text.strip():
                results[index] = empty_outputs("⚠️ Enter some text to label.")
            elif len(text) > self.limit:
                results[index] = empty_outputs(f"⚠️ The text has {len(text):,} characters; this demo labels at most {self.limit:,} per request (predict() itself has no limit).")
            else:
                groups.setdefault((float(threshold), decoding), []).append(index)
        for (threshold, decoding), indices in groups.items():
            for index, outputs in zip(indices, self._predict_group([texts[i] for i in indices], threshold, decoding)):
                results[index] = outputs
        return tuple(list(column) for column in zip(*results))

    def _predict_group(self, texts: list[str], threshold: float, decoding: str) -> list[SpanOutputs]:
        started = time.perf_counter()
        try:
            predictions = self.loaded.model.predict(texts, batch_size=MAX_BATCH_SIZE, threshold=threshold, decoding=decoding, time_limit=self.seconds)
        except TimeoutError:
            return [empty_outputs(f"⚠️ Labelling took longer than {self.seconds:g} s and was stopped; try a shorter text.")] * len(texts)
        except Exception as error:  # noqa: BLE001 - reported in the page
            return [empty_outputs(f"⚠️ Prediction failed: {type(error).__name__}: {error}")] * len(texts)
        seconds = time.perf_counter() - started
        return [describe_result(text, spans, seconds, len(texts)) for text, spans in zip(texts, predictions)]


# ---------------------------------------------------------------------------------------------------
# Tab 2: what augmentation adds
# ---------------------------------------------------------------------------------------------------


def make_augment_importable() -> None:
    """`augment/` sits beside app.py in a deployed Space and one level up in a checkout."""
    for folder in (HERE, REPO_ROOT):
        if (folder / "augment" / "__init__.py").is_file() or (folder / "augment" / "annotation.py").is_file():
            if str(folder) not in sys.path:
                sys.path.append(str(folder))
            return


@dataclass
class LLMSettings:
    """An optional LLM endpoint (TGI, OpenAI-compatible server or provider) for the augmentation tab."""

    endpoint: str | None = None
    model: str | None = None
    token: str | None = None

    @classmethod
    def from_environment(cls, endpoint: str | None = None) -> "LLMSettings":
        return cls(
            endpoint=endpoint or os.environ.get(LLM_ENDPOINT_ENV) or None,
            model=os.environ.get(LLM_MODEL_ENV) or None,
            token=os.environ.get(TOKEN_ENV) or None,
        )


def grouped_highlight(text: str, spans: Sequence[dict]) -> list[tuple[str, str | None]]:
    """Highlight for extension spans: labels on the same offsets are joined (a jieba word is both
    `ent:地名` and `pos:n`), then the outermost groups are shown."""
    by_offsets: dict[tuple[int, int], list[str]] = {}
    for span in spans:
        by_offsets.setdefault((span["start"], span["end"]), []).append(span["label"])
    grouped = [{"start": start, "end": end, "label": " ".join(labels)} for (start, end), labels in by_offsets.items()]
    return highlight_segments(text, outermost_spans(grouped))


ExtensionOutputs = tuple[str, list, list, list[list], dict]
"""status, offline highlight, LLM highlight, table of every extension span, JSON by source."""


class ExtensionViewer:
    """Annotates a sentence as augmentation would; each annotator is built once, on first use."""

    def __init__(self, llm: LLMSettings):
        make_augment_importable()
        self.llm = llm
        self._lock = threading.Lock()
        self._offline = None
        self._llm_annotator = None

    def __call__(self, text: str) -> ExtensionOutputs:
        if not text or not text.strip():
            return "⚠️ Enter a sentence to annotate.", [], [], [], {}
        messages, by_source = [], {}
        sources = [(OFFLINE_SOURCE, "Offline annotator", self._offline_annotator)]
        if self.llm.endpoint:
            sources.append((LLM_SOURCE, f"LLM endpoint {self.llm.endpoint}", self._llm))
        else:
            messages.append(f"No LLM endpoint configured (set {LLM_ENDPOINT_ENV} to add its labels).")
        for source, name, get_annotator in sources:
            spans, notes, error = self._annotate(get_annotator, text)
            if error:
                messages.append(f"⚠️ {name} failed: {error}")
                continue
            by_source[source] = spans
            if notes:
                messages.append(f"{name} reported {notes}")
        counts = ", ".join(f"{source}: {len(spans)} extension span(s)" for source, spans in by_source.items())
        status = " · ".join(filter(None, [counts, *messages]))
        rows = [
            [source, span["start"], span["end"], span["label"], text[span["start"] : span["end"]]]
            for source, spans in by_source.items()
            for span in spans
        ]
        return (
            status,
            grouped_highlight(text, by_source.get(OFFLINE_SOURCE, [])),
            grouped_highlight(text, by_source.get(LLM_SOURCE, [])),
            rows,
            by_source,
        )

    @staticmethod
    def _annotate(get_annotator: Callable[[], Any], text: str) -> tuple[list[dict], str, str | None]:
        """Extension spans of `text`, the annotator's own counts (failed requests, unusable replies) as
        a note, or the error as one line (import, connection...)."""
        try:
            from augment.annotation import extension_spans

            annotation = get_annotator().annotate(text)
            notes = ", ".join(f"{event}: {count}" for event, count in sorted(annotation.counts.items()))
            return extension_spans(annotation), notes, None
        except Exception as error:  # noqa: BLE001 - shown in the page
            return [], "", f"{type(error).__name__}: {error}"

    def _offline_annotator(self):
        with self._lock:
            if self._offline is None:
                from augment.offline_annotator import OfflineAnnotator

                self._offline = OfflineAnnotator()
            return self._offline

    def _llm(self):
        with self._lock:
            if self._llm_annotator is None:
                from augment.llm_annotator import LLMAnnotator

                self._llm_annotator = LLMAnnotator.from_endpoint(self.llm.endpoint, model=self.llm.model, token=self.llm.token, language="zh")
            return self._llm_annotator


# ---------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------


def model_banner(loaded: LoadedModel) -> str:
    """One line above the tabs: which model answers, or why none does."""
    if loaded.model is None:
        return f"⚠️ {loaded.error}"
    config = loaded.model.config
    labels = ", ".join(f"`{label}`" for label in config.target_labels)
    per_label = getattr(config, "label_thresholds", None) or {}
    thresholds = f"default threshold {config.threshold}" + (
        " (the slider's value applies to every label; the model's own per-label thresholds: "
        + ", ".join(f"`{label}` {value}" for label, value in sorted(per_label.items())) + ")"
        if per_label else ""
    )
    return f"Model: `{loaded.source}` · labels: {labels} · {thresholds}, {config.decoding} decoding"


def build_demo(model_source: str | None = None, *, llm_endpoint: str | None = None) -> gr.Blocks:
    """The two-tab demo with its queue set up; the model is loaded here, once."""
    loaded = load_model(resolve_model_source(model_source))
    examples = card_examples(loaded.source) or FALLBACK_EXAMPLES
    config = getattr(loaded.model, "config", None)
    limit = max_chars()
    labeler = SpanLabeler(loaded, limit, time_limit())
    viewer = ExtensionViewer(LLMSettings.from_environment(llm_endpoint))

    with gr.Blocks(title="KnowFREE span labeling") as demo:
        gr.Markdown("# KnowFREE: Chinese span labeling\nFlat and nested spans with character offsets; long text is read in windows, never truncated.")
        gr.Markdown(model_banner(loaded), elem_id="model-banner")
        gr.Markdown(f"At most {limit:,} characters per request ({MAX_CHARS_ENV}); a request is stopped after {time_limit():g} s ({TIME_LIMIT_ENV}).", elem_id="limits")
        with gr.Tab("Label spans"):
            text = gr.Textbox(label="Text", value=examples[0], lines=4, max_lines=20, elem_id="text")
            with gr.Row():
                threshold = gr.Slider(MIN_THRESHOLD, 0.95, value=getattr(config, "threshold", 0.5), step=0.01, label="Threshold", elem_id="threshold")
                decoding = gr.Radio(["flat", "nested"], value=getattr(config, "decoding", "flat"), label="Decoding", elem_id="decoding")
            button = gr.Button("Label", variant="primary", elem_id="label-button")
            status = gr.Markdown(elem_id="status")
            highlight = gr.HighlightedText(label="Spans (outermost highlighted)", elem_id="highlight")
            table = gr.Dataframe(headers=SPAN_HEADERS, label="All spans (nested included), with scores", interactive=False, elem_id="spans")
            with gr.Accordion("predict() output as JSON", open=False):
                as_json = gr.JSON(label="predict() output", elem_id="json")
            gr.Examples(examples=[[example] for example in examples], inputs=[text])
            gr.on(
                [button.click, text.submit],
                labeler,
                inputs=[text, threshold, decoding],
                outputs=[status, highlight, table, as_json],
                api_name="label_spans",
                batch=True,
                max_batch_size=MAX_BATCH_SIZE,
                concurrency_limit=LABEL_CONCURRENCY,
            )
        with gr.Tab("What augmentation adds"):
            sentence = gr.Textbox(label="Sentence", value=examples[0], lines=2, elem_id="sentence")
            augment_button = gr.Button("Show extension labels", elem_id="augment-button")
            augment_status = gr.Markdown(elem_id="augment-status")
            offline_highlight = gr.HighlightedText(label="Offline annotator (jieba): entities and POS", elem_id="offline-highlight")
            llm_highlight = gr.HighlightedText(label="LLM endpoint", visible=bool(viewer.llm.endpoint), elem_id="llm-highlight")
            extension_table = gr.Dataframe(headers=EXTENSION_HEADERS, label="Extension labels", interactive=False, elem_id="extensions")
            with gr.Accordion("Extension spans as JSON", open=False):
                extension_json = gr.JSON(label="Extension spans by source", elem_id="extensions-json")
            gr.on(
                [augment_button.click, sentence.submit],
                viewer,
                inputs=[sentence],
                outputs=[augment_status, offline_highlight, llm_highlight, extension_table, extension_json],
                api_name="extension_labels",
                concurrency_limit=2,
            )
    demo.queue(max_size=64)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"Hub repo id or folder (default: ${MODEL_ENV}, else {QUICKSTART_MODEL})")
    parser.add_argument("--llm-endpoint", help=f"LLM endpoint URL for the augmentation tab (default: ${LLM_ENDPOINT_ENV})")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"), help="e.g. 127.0.0.1 (default: Gradio's)")
    parser.add_argument("--port", type=int, default=None, help="default: Gradio's (7860, or $GRADIO_SERVER_PORT)")
    args = parser.parse_args(argv)
    build_demo(args.model, llm_endpoint=args.llm_endpoint).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
