"""Turn labelled rows into KnowFREE training batches.

A row is `{"text", "entities", "extensions"?, "synthetic"?}` with character spans (end exclusive).
Rows longer than the encoder are cut into the same windows `predict` uses; every window becomes a
training example holding the spans that lie wholly inside it, so long documents are trained on,
not truncated.
"""

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from configuration_knowfree import KnowFreeConfig
from modeling_knowfree import TextWindow, band_width, collate_windows, span_label_grid, spans_in_windows, text_windows


class SpanCollator:
    """Callable for `DataLoader(collate_fn=...)`: rows -> the keyword arguments of `KnowFreeModel.forward`."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: KnowFreeConfig,
        max_tokens: int | None = None,
        skip_wider_spans: bool = False,
    ):
        """`skip_wider_spans` leaves out spans wider than `config.max_span_width` (the caller counts and
        reports them); otherwise such a span is an error."""
        self.tokenizer = tokenizer
        self.config = config
        self.max_tokens = max_tokens
        self.skip_wider_spans = skip_wider_spans
        self.label_index = {label: index for index, label in enumerate(config.labels)}

    def row_spans(self, row: dict) -> list[tuple[int, int, int]]:
        """Target and extension spans of a row as (start, end, label index)."""
        spans = []
        for field in ("entities", "extensions"):
            for span in row.get(field) or []:
                label = span["label"]
                if label not in self.label_index:
                    raise ValueError(f"{field} label {label!r} of text {row['text'][:30]!r} is not in the model's labels")
                too_wide = self.config.max_span_width is not None and span["end"] - span["start"] > self.config.max_span_width
                if not (too_wide and self.skip_wider_spans):
                    spans.append((span["start"], span["end"], self.label_index[label]))
        return spans

    def windows_with_spans(self, rows: Sequence[dict]) -> list[tuple[TextWindow, list[tuple[int, int, int]], bool]]:
        """Every window of every row with the spans it contains wholly, in window offsets."""
        windows = text_windows([row["text"] for row in rows], self.tokenizer, self.config, self.max_tokens)
        spans = spans_in_windows(windows, [self.row_spans(row) for row in rows])
        return [
            (window, window_spans, bool(rows[window.text_index].get("synthetic", False)))
            for window, window_spans in zip(windows, spans)
        ]

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        examples = self.windows_with_spans(rows)
        if not examples:
            raise ValueError("a batch of empty texts has nothing to train on")
        windows = [window for window, _, _ in examples]
        batch = collate_windows(windows, self.tokenizer)
        length = batch["char_mask"].shape[1]
        width = band_width(length, self.config.max_span_width)
        batch["span_labels"] = span_label_grid([spans for _, spans, _ in examples], length, width, len(self.config.labels))
        batch["synthetic"] = torch.tensor([synthetic for _, _, synthetic in examples], dtype=torch.bool)
        return batch
