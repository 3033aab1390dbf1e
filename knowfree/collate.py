"""Turn labelled rows into KnowFREE training batches, as a `DataLoader` collate function.

A row is `{"text", "entities", "extensions"?, "synthetic"?}` with character spans (end exclusive).
`KnowFreeProcessor.training_batch` does the work (the windows `predict` reads, the label grid); this
callable fixes the options a training run keeps for every batch.
"""

from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from configuration_knowfree import KnowFreeConfig
from processing_knowfree import KnowFreeProcessor


class SpanCollator:
    """Callable for `DataLoader(collate_fn=...)`: rows -> the keyword arguments of `KnowFreeModel.forward`."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: KnowFreeConfig,
        max_tokens: int | None = None,
        skip_wider_spans: bool = False,
    ):
        """`max_tokens` caps the text tokens of a window (the encoder limit by default);
        `skip_wider_spans` leaves out spans wider than `config.max_span_width` (the caller counts and
        reports them); otherwise such a span is an error."""
        self.processor = KnowFreeProcessor(tokenizer, config)
        self.max_tokens = max_tokens
        self.skip_wider_spans = skip_wider_spans

    def __call__(self, rows: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        return self.processor.training_batch(rows, self.max_tokens, self.skip_wider_spans)
