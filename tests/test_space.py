"""space/app.py: the Gradio demo served on 127.0.0.1 with a tiny model saved here, called through
gradio_client and driven in headless Debian chromium by playwright, compared with `predict`."""

import importlib.util
import os
import re
import socket
import sys
import time
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import CORPUS, REPO_ROOT, build_bert_char_tokenizer  # noqa: E402
from transformers import AutoModel, BertConfig  # noqa: E402

from configuration_knowfree import KnowFreeConfig  # noqa: E402
from knowfree.model_card import write_model_card  # noqa: E402
from modeling_knowfree import KnowFreeModel  # noqa: E402

pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[tests]')")
gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is not installed (pip install -e '.[tests]')")

LABELS = ["LOC", "ORG", "PER"]
ENCODER_POSITIONS = 40
"""A tiny encoder limit, so a few sentences already need several windows."""
CARD_EXAMPLES = ["马云在杭州创办了阿里巴巴集团。", "北京大学的张老师去上海开会。"]
SHORT_TEXT = CORPUS[0] + CORPUS[1]
LONG_TEXT = "".join(CORPUS[:5]) * 3
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip


def load_space_app():
    """space/app.py as a module (space/ is a Space folder, not a package)."""
    spec = importlib.util.spec_from_file_location("knowfree_space_app", REPO_ROOT / "space" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


space_app = load_space_app()


def save_tiny_model(folder: Path) -> Path:
    """A random tiny model whose scores straddle 0.5, so it predicts flat and nested spans of varied
    scores without training; saved with its remote code, tokenizer and a model card with examples."""
    tokenizer = build_bert_char_tokenizer()
    encoder = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=ENCODER_POSITIONS,
    )  # fmt: skip
    config = KnowFreeConfig(
        encoder_config=encoder.to_dict(), target_labels=LABELS, projection_size=24, span_hidden_size=20,
        biaffine_heads=2, local_attention_heads=4, local_attention_window=2, dropout=0.0, max_span_width=6,
        decoding="nested",
    )  # fmt: skip
    torch.manual_seed(0)
    model = KnowFreeModel(config)
    model.tokenizer = tokenizer
    with torch.no_grad():
        model.span_head.classifier.weight.mul_(5.0)
        model.span_head.classifier.bias.fill_(-1.0)
    model.save_pretrained(folder)
    metrics = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_label": {}}
    write_model_card(
        folder, model_name="tiny", architecture="KnowFREE", task="ner", dataset="tiny", base_model="tiny-bert",
        train_rows=0, subset_note="", target_labels=LABELS, extension_labels=[], dev_metrics=metrics,
        test_metrics=metrics, thresholds=None, stopped_by="epochs", settings={}, command="(built in tests/test_space.py)", examples=CARD_EXAMPLES,
        repo_or_path=str(folder),
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("space") / "tiny-model")


@pytest.fixture(scope="module")
def reference(model_dir):
    """The same saved model loaded the way a user would, to compare the demo with."""
    return AutoModel.from_pretrained(model_dir, trust_remote_code=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(demo):
    """Launch on 127.0.0.1 without blocking; returns the URL."""
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return url


@pytest.fixture(scope="module")
def server(model_dir):
    with pytest.MonkeyPatch.context() as environment:
        environment.delenv(space_app.LLM_ENDPOINT_ENV, raising=False)
        demo = space_app.build_demo(str(model_dir))
    url = serve(demo)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False, download_files=False)


def label_spans(client, text: str, threshold: float, decoding: str):
    status, highlight, table, spans = client.predict(text, threshold, decoding, api_name="/label_spans")
    return status, highlight, table, spans


def has_nesting(spans: list[dict]) -> bool:
    return any(
        outer is not inner and outer["start"] <= inner["start"] and inner["end"] <= outer["end"]
        for outer in spans
        for inner in spans
    )


def highlighted_spans(segments: list[dict]) -> list[tuple[int, int, str]]:
    """(start, end, label) of the labelled pieces of a HighlightedText value, checking it covers the text once."""
    spans, position = [], 0
    for segment in segments:
        if segment["class_or_confidence"] is not None:
            spans.append((position, position + len(segment["token"]), segment["class_or_confidence"]))
        position += len(segment["token"])
    return spans


def outermost(spans: list[dict]) -> list[tuple[int, int, str]]:
    inner = {
        id(span)
        for span in spans
        for other in spans
        if other is not span and other["start"] <= span["start"] and span["end"] <= other["end"]
    }
    return sorted((span["start"], span["end"], span["label"]) for span in spans if id(span) not in inner)


# --- gradio_client against predict --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "threshold", "decoding"),
    [(SHORT_TEXT, 0.5, "flat"), (SHORT_TEXT, 0.45, "nested"), (LONG_TEXT, 0.5, "nested")],
    ids=["flat", "nested", "longer-than-encoder"],
)
def test_served_spans_equal_predict(client, reference, text, threshold, decoding):
    expected = reference.predict(text, threshold=threshold, decoding=decoding)
    assert expected, "the tiny model should predict spans for this case"
    if decoding == "nested":
        assert has_nesting(expected), "the nested case must contain a span inside another"
    if text is LONG_TEXT:
        limit = reference.processor.max_tokens
        assert len(reference.tokenizer(text, add_special_tokens=False)["input_ids"]) > 2 * limit
        assert max(span["end"] for span in expected) > limit, "spans past the first window must come back"

    status, highlight, table, spans = label_spans(client, text, threshold, decoding)

    assert spans == expected  # the JSON view is predict's output, scores included
    assert "".join(segment["token"] for segment in highlight) == text
    assert highlighted_spans(highlight) == outermost(expected)
    rows = [tuple(row[:3]) for row in table["data"]]
    assert rows == [(span["start"], span["end"], span["label"]) for span in expected]  # no nested span lost
    assert [row[3] for row in table["data"]] == [round(span["score"], 4) for span in expected]
    assert f"{len(expected)} span(s)" in status


def test_empty_text_gets_a_message_not_an_error(client):
    status, highlight, table, spans = label_spans(client, "   ", 0.5, "flat")
    assert "Enter some text" in status
    assert spans == [] and highlight == [] and table["data"] == []


def test_queued_requests_are_batched_into_one_predict_call(model_dir, reference):
    labeler = space_app.SpanLabeler(space_app.load_model(str(model_dir)))
    calls = []
    predict = labeler.loaded.model.predict
    labeler.loaded.model.predict = lambda texts, **options: calls.append(list(texts)) or predict(texts, **options)
    texts = [CORPUS[0], "", CORPUS[1], CORPUS[2]]
    statuses, _, _, outputs = labeler(texts, [0.5, 0.5, 0.5, 0.4], ["flat", "flat", "flat", "nested"])
    assert calls == [[CORPUS[0], CORPUS[1]], [CORPUS[2]]]  # one call per (threshold, decoding) group
    assert "Enter some text" in statuses[1] and outputs[1] == []
    for text, threshold, decoding, spans in [(CORPUS[0], 0.5, "flat", outputs[0]), (CORPUS[1], 0.5, "flat", outputs[2]), (CORPUS[2], 0.4, "nested", outputs[3])]:
        expected = reference.predict(text, threshold=threshold, decoding=decoding)
        assert [(s["start"], s["end"], s["label"]) for s in spans] == [(s["start"], s["end"], s["label"]) for s in expected]
        assert [s["score"] for s in spans] == pytest.approx([s["score"] for s in expected], abs=1e-5)


def test_the_label_endpoint_is_queued_and_batched(server):
    demo_config = gradio_client.Client(server, verbose=False, download_files=False).config
    dependency = next(dep for dep in demo_config["dependencies"] if dep.get("api_name") == "label_spans")
    assert dependency["batch"] is True and dependency["max_batch_size"] == space_app.MAX_BATCH_SIZE
    assert dependency["queue"] is not False


def test_two_label_batches_run_at_once(model_dir):
    demo = space_app.build_demo(str(model_dir))
    labelling = next(function for function in demo.fns.values() if function.api_name == "label_spans")
    assert labelling.concurrency_limit == space_app.LABEL_CONCURRENCY > 1  # one long text does not hold every visitor


def test_a_text_over_the_limit_gets_a_message_and_the_rest_of_the_batch_is_labelled(model_dir, reference):
    labeler = space_app.SpanLabeler(space_app.load_model(str(model_dir)), limit=len(CORPUS[0]))
    statuses, _, _, outputs = labeler([CORPUS[0], CORPUS[0] + "。"], [0.5, 0.5], ["flat", "flat"])
    assert f"at most {len(CORPUS[0]):,} per request" in statuses[1] and outputs[1] == []
    assert [(s["start"], s["end"]) for s in outputs[0]] == [(s["start"], s["end"]) for s in reference.predict(CORPUS[0], threshold=0.5, decoding="flat")]


def test_a_request_past_the_time_limit_gets_a_message(model_dir):
    labeler = space_app.SpanLabeler(space_app.load_model(str(model_dir)), seconds=1e-9)
    statuses, _, _, outputs = labeler([CORPUS[0]], [0.5], ["flat"])
    assert "took longer than 1e-09 s and was stopped" in statuses[0] and outputs[0] == []


def test_the_limit_and_the_pinned_revision_come_from_the_environment(monkeypatch, model_dir):
    from transformers import AutoModel

    monkeypatch.setenv(space_app.MAX_CHARS_ENV, "1234")
    assert space_app.max_chars() == 1234
    monkeypatch.setenv(space_app.MAX_CHARS_ENV, "many")
    assert space_app.max_chars() == space_app.DEFAULT_MAX_CHARS
    seen = {}
    original = AutoModel.from_pretrained
    monkeypatch.setattr(AutoModel, "from_pretrained", lambda source, **options: seen.update(options) or original(source, **options))
    monkeypatch.setenv(space_app.REVISION_ENV, "0123abcd")
    assert space_app.load_model(str(model_dir)).model is not None
    assert seen["revision"] == "0123abcd" and seen["trust_remote_code"] is True


def test_examples_come_from_the_model_card(model_dir, server):
    assert space_app.card_examples(str(model_dir)) == CARD_EXAMPLES
    assert space_app.card_examples(str(model_dir.parent / "no-such-model")) == []
    page_config = gradio_client.Client(server, verbose=False, download_files=False).config
    samples = [component["props"].get("samples") for component in page_config["components"] if component.get("type") == "dataset"]
    assert [[example] for example in CARD_EXAMPLES] in samples


def test_model_source_argument_then_environment_then_quickstart(monkeypatch, tmp_path):
    quickstart = tmp_path / "quickstart"
    monkeypatch.setattr(space_app, "QUICKSTART_MODEL", quickstart)
    monkeypatch.delenv(space_app.MODEL_ENV, raising=False)
    assert space_app.resolve_model_source() is None
    assert "No model configured" in space_app.load_model(None).error
    quickstart.mkdir()
    (quickstart / "config.json").write_text("{}")
    assert space_app.resolve_model_source() == str(quickstart)
    monkeypatch.setenv(space_app.MODEL_ENV, "me/knowfree-weibo-250")
    assert space_app.resolve_model_source() == "me/knowfree-weibo-250"
    assert space_app.resolve_model_source("local/folder") == "local/folder"


def test_space_folder_is_deployable():
    import gradio
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(REPO_ROOT / "space" / "README.md").data
    assert (card.sdk, card.app_file, card.sdk_version) == ("gradio", "app.py", gradio.__version__)
    assert card.models and (REPO_ROOT / "space" / card.app_file).is_file()
    pins = dict(line.split("==") for line in (REPO_ROOT / "space" / "requirements.txt").read_text().splitlines() if "==" in line)
    setup_py = (REPO_ROOT / "setup.py").read_text()
    for package, version in pins.items():
        assert f'"{package}=={version}"' in setup_py, f"space/requirements.txt pins {package}=={version}, setup.py does not"
    assert pins["gradio"] == card.sdk_version


# --- the augmentation tab -----------------------------------------------------------------------


def test_augmentation_tab_shows_the_offline_extension_labels(client):
    from augment.annotation import extension_spans
    from augment.offline_annotator import OfflineAnnotator

    sentence = "马云在杭州创办了阿里巴巴集团。"
    status, offline, llm, table, by_source = client.predict(sentence, api_name="/extension_labels")
    expected = extension_spans(OfflineAnnotator().annotate(sentence))
    assert by_source == {space_app.OFFLINE_SOURCE: expected}
    assert [tuple(row[1:4]) for row in table["data"]] == [(s["start"], s["end"], s["label"]) for s in expected]
    assert "".join(segment["token"] for segment in offline) == sentence
    assert ("马云", "ent:人名 pos:n") in [(segment["token"], segment["class_or_confidence"]) for segment in offline]
    assert "No LLM endpoint configured" in status


# --- failures shown as messages -----------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_client(tmp_path_factory):
    """A demo whose model folder does not exist and whose LLM endpoint is a closed local port."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    demo = space_app.build_demo(str(tmp_path_factory.mktemp("space-failing") / "missing-model"), llm_endpoint=endpoint)
    url = serve(demo)
    yield gradio_client.Client(url, verbose=False, download_files=False), endpoint
    demo.close()


def test_model_that_fails_to_load_shows_a_message(failing_client):
    client, _ = failing_client
    status, highlight, _, spans = label_spans(client, "马云在杭州。", 0.5, "flat")
    assert status.startswith("⚠️") and "could not be loaded" in status and "missing-model" in status
    assert "Traceback" not in status and spans == [] and highlight == []
    page_config = client.config
    banners = [component["props"].get("value") for component in page_config["components"] if component["props"].get("elem_id") == "model-banner"]
    assert banners and "could not be loaded" in banners[0]


def test_endpoint_down_shows_a_message_and_keeps_the_offline_labels(failing_client, hub_online):
    client, endpoint = failing_client  # hub_online: a real connection attempt, not huggingface_hub's offline refusal
    status, offline, _, _, by_source = client.submit("马云在杭州。", api_name="/extension_labels").result(timeout=180)
    assert f"LLM endpoint {endpoint} failed" in status and "Traceback" not in status
    assert "HF_HUB_OFFLINE" not in status
    assert space_app.OFFLINE_SOURCE in by_source and space_app.LLM_SOURCE not in by_source
    assert "".join(segment["token"] for segment in offline) == "马云在杭州。"


# --- a real browser -----------------------------------------------------------------------------


@pytest.fixture
def chromium_page(tmp_path):
    """A headless Debian chromium page driven by playwright; skipped (with the reason) without chromium."""
    if not CHROMIUM.is_file():
        pytest.skip(f"chromium is not installed ({CHROMIUM} missing; .ci/run installs it with apt-get when apt is usable)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[tests]')")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_browser_shows_the_highlighted_labels(server, reference, chromium_page, tmp_path):
    page = chromium_page
    sentence = SHORT_TEXT
    expected = outermost(reference.predict(sentence, threshold=0.5, decoding="nested"))
    assert expected

    page.goto(server)
    page.locator("#text textarea").fill(sentence)
    clicked = time.perf_counter()
    page.locator("#label-button").click()
    page.locator("#status").get_by_text(re.compile(r"\d+ span\(s\)")).wait_for(timeout=60_000)
    seconds = time.perf_counter() - clicked
    tokens = page.locator("#highlight .token.highlighted")
    tokens.first.wait_for()
    shown = [(token.locator(".text").text_content().strip(), token.locator(".label").text_content().strip()) for token in tokens.all()]
    screenshot = tmp_path / "space-label-spans.png"
    page.screenshot(path=str(screenshot), full_page=True)

    assert shown == [(sentence[start:end], label) for start, end, label in expected]
    assert sentence[expected[0][0] : expected[0][1]] in page.locator("#spans").inner_text()  # the table is shown too
    assert screenshot.stat().st_size > 10_000
    print(f"click to result {seconds:.2f} s; screenshot {screenshot}", file=sys.stderr)
