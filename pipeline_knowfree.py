"""`transformers.pipeline()` for KnowFREE models: the same spans as `model.predict`, through the pipeline API.

Saved beside the model (remote code) and named in its config's `custom_pipelines`, so
`pipeline(model=repo_or_folder, trust_remote_code=True)` finds the task by itself (or ask for it by
name: `pipeline("knowfree-span-labeling", model=..., trust_remote_code=True)`). A string gives a list
of spans, a list of strings a list of lists, and a dataset or any other iterable (a `KeyDataset`, a
generator) an iterator of span lists, predicted `batch_size` texts at a time. `threshold` and
`decoding` pass through to `predict`; `device` is the pipeline's own argument.
"""

from collections.abc import Iterable, Iterator
from itertools import islice

from transformers import Pipeline

TASK = "knowfree-span-labeling"
PREDICT_OPTIONS = ("threshold", "decoding")


class KnowFreeSpanPipeline(Pipeline):
    """Text in, character spans out; windows, alignment and decoding are `predict`'s."""

    def _sanitize_parameters(self, **kwargs):
        options = {name: kwargs[name] for name in PREDICT_OPTIONS if kwargs.get(name) is not None}
        return {}, options, {}

    def __call__(self, inputs, batch_size: int | None = None, **kwargs):
        """Spans for a string, a list of strings, or (lazily) any iterable of strings."""
        _, options, _ = self._sanitize_parameters(**kwargs)
        size = batch_size or getattr(self, "_batch_size", None) or 8
        if isinstance(inputs, str):
            return self.model.predict(inputs, batch_size=size, **options)
        if isinstance(inputs, list):
            return self.model.predict(inputs, batch_size=size, **options)
        return self._stream(inputs, size, options)

    def _stream(self, texts: Iterable[str], batch_size: int, options: dict) -> Iterator[list[dict]]:
        iterator = iter(texts)
        while batch := list(islice(iterator, batch_size)):
            yield from self.model.predict(batch, batch_size=batch_size, **options)

    def preprocess(self, text: str) -> dict:
        return {"text": text}

    def _forward(self, model_inputs: dict, **options) -> dict:
        return {"spans": self.model.predict(model_inputs["text"], **options)}

    def postprocess(self, model_outputs: dict) -> list[dict]:
        return model_outputs["spans"]


def pipeline_entry() -> dict:
    """The config's `custom_pipelines` entry that lets `pipeline()` find this class in the model repo."""
    return {TASK: {"impl": "pipeline_knowfree.KnowFreeSpanPipeline", "pt": ["AutoModel"], "tf": [], "type": "text"}}
