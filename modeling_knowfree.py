"""KnowFREE: a biaffine span model with local span attention and extension labels.

Reads top to bottom as the forward pass, from the tensors `KnowFreeProcessor` makes
(`processing_knowfree.py`: text -> windows -> character alignment -> tensors on the way in, band
logits -> span candidates -> spans on the way out):

1. the span band: the (start, width) layout of the span grid and its mask;
2. the span head: start/end projections (eq. 9), multi-head biaffine (eq. 10), local multi-head
   attention over neighbouring spans of the same start (eqs. 11-16), the label classifier (eq. 17);
3. the loss (eqs. 18-20);
4. `KnowFreeModel`, a `PreTrainedModel`: encoder states gathered per character, the head and the loss
   in `forward`; `predict` is processor -> forward -> processor.

Span convention everywhere: character offsets, `end` exclusive. Inside the model, spans live in a
band laid out as (start, width): grid cell [i, k] is the span of characters i..i+k (inclusive), so
its end offset is i + k + 1. With `max_span_width` W the band holds L x W cells instead of L x L.

This file depends only on torch, transformers, `configuration_knowfree.py`, `processing_knowfree.py`
and `pipeline_knowfree.py`; `save_pretrained` copies all four, which is everything
`AutoModel.from_pretrained(..., trust_remote_code=True)` and `pipeline(...)` need.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.utils import ModelOutput

try:
    from .configuration_knowfree import KnowFreeConfig
    from .processing_knowfree import HUB_OPTIONS, PIECE_POSITION_BUCKETS, KnowFreeProcessor, SpanCandidate, band_width
    from .pipeline_knowfree import pipeline_entry
except ImportError:
    from configuration_knowfree import KnowFreeConfig
    from processing_knowfree import HUB_OPTIONS, PIECE_POSITION_BUCKETS, KnowFreeProcessor, SpanCandidate, band_width
    from pipeline_knowfree import pipeline_entry


# ---------------------------------------------------------------------------------------------------
# 1. The span band
# ---------------------------------------------------------------------------------------------------
# The band of a text of L characters has L rows (start i) of W cells (width k), W = `band_width(L,
# max_span_width)` from the processor, which sizes the label grid with the same function.


def band_cell_count(length: int, max_span_width: int | None) -> int:
    """Number of real spans of a text of `length` characters that the band holds."""
    width = length if max_span_width is None else min(max_span_width, length)
    return length * width - width * (width - 1) // 2


def band_span_mask(char_mask: torch.Tensor, width: int) -> torch.Tensor:
    """Valid cells of the band: start and end both inside the text. (B, L) -> (B, L, W)."""
    lengths = char_mask.sum(-1)
    length = char_mask.shape[1]
    starts = torch.arange(length, device=char_mask.device)[:, None]
    ends = starts + torch.arange(width, device=char_mask.device)[None, :]
    return ends[None] < lengths[:, None, None]


def pad_band_rows(features: torch.Tensor, width: int) -> torch.Tensor:
    """Per-position features followed by W - 1 zero positions per text, (B, L, D) -> (B, L + W - 1, D):
    what `gather_band_rows` reads. Padded once per batch, not once per row chunk."""
    return F.pad(features, (0, 0, 0, width - 1))


def gather_band_rows(padded: torch.Tensor, width: int, rows: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Features of the span ends of the band rows starting at `rows` = (batch index, position index):
    `pad_band_rows(features, W)` -> (R, W, D), where cell k of a row holds position + k, zeros past
    the end.

    One `index_select` on the text-padded features, so the backward pass scatters into a (B, L, D)
    gradient instead of zero-filling a (B, L, W, D) one.
    """
    _, padded_length, size = padded.shape
    batch_index, position_index = rows
    first = batch_index * padded_length + position_index
    cells = first[:, None] + torch.arange(width, device=padded.device)
    return padded.reshape(-1, size).index_select(0, cells.reshape(-1)).view(first.shape[0], width, size)


# ---------------------------------------------------------------------------------------------------
# 2. The span head
# ---------------------------------------------------------------------------------------------------


class KnowFreeMultiHeadBiaffine(nn.Module):
    """Multi-head biaffine scorer (eq. 10).

    The projection size D' is split into `biaffine_heads` blocks; each block has its own bilinear
    form into the D~ span features, and an affine term on [start; end] is added:
    H_B[i, j] = sum_m s_m[i]^T U_m e_m[j] + W_s s[i] + W_e e[j] + b.
    Input: start (B, L, D'), the end side `band_ends(end, W)` and the R band rows to compute, `rows` =
    (batch index, position index) of their start character. Output: (R, W, D~).

    Contraction order: per head m, T_m[i] = s_m[i]^T U_m (a D'/heads x D~ matrix) is computed once per
    start position, then every cell of the row multiplies its end features by it. U_m is applied once
    per position rather than once per cell, and head by head the products are plain matrix products:
    no (R, heads, D~, D'/heads) intermediate is built or permuted at once.
    """

    def __init__(self, config: KnowFreeConfig):
        super().__init__()
        self.heads = config.biaffine_heads
        self.head_size = config.projection_size // config.biaffine_heads
        self.bilinear = nn.Parameter(
            torch.randn(self.heads, self.head_size, config.span_hidden_size, self.head_size) * 0.02
        )
        self.start_affine = nn.Linear(config.projection_size, config.span_hidden_size)
        self.end_affine = nn.Linear(config.projection_size, config.span_hidden_size, bias=False)

    def band_ends(self, end: torch.Tensor, width: int) -> torch.Tensor:
        """The end side of every position, [W_e e[j]; e[j]], padded for `gather_band_rows`: (B, L, D') ->
        (B, L + W - 1, D~ + D'). It depends on the end position alone, so a batch computes it once for
        all its row chunks, and one gather per chunk fetches both parts."""
        return pad_band_rows(torch.cat([self.end_affine(end), end], -1), width)

    def forward(self, start: torch.Tensor, band_ends: torch.Tensor, width: int, rows: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        _, length, projection = start.shape
        count = rows[0].shape[0]
        flat_rows = rows[0] * length + rows[1]
        start_rows = start.reshape(-1, projection).index_select(0, flat_rows)
        end_terms, ends = gather_band_rows(band_ends, width, rows).split([self.end_affine.out_features, projection], -1)
        band = end_terms + self.start_affine(start_rows)[:, None, :]
        end_heads = ends.unflatten(-1, (self.heads, self.head_size)).unbind(2)
        start_heads = start_rows.view(count, self.heads, self.head_size).unbind(1)
        for start_head, end_head, bilinear in zip(start_heads, end_heads, self.bilinear.unbind(0)):
            forms = (start_head @ bilinear.reshape(self.head_size, -1)).view(count, bilinear.shape[1], self.head_size)
            band = band.baddbmm_(end_head, forms.transpose(1, 2))
        return band


class KnowFreeLocalAttention(nn.Module):
    """Local multi-head attention over the span band (eqs. 11-15).

    Over the (start, end) grid, for span (i, j) with biaffine features h(i, j) = H_B[i, j], K heads:

        N(i, j)      = {(i, j') : |j - j'| <= w, i <= j' < L}     same start, end at most w away
        q_m, k_m, v_m = h W_q^m, h W_k^m, h W_v^m                   head m, D~/K wide each
        a_m(j, j')   = softmax over j' in N(i, j) of q_m(i, j) . k_m(i, j') / sqrt(D~/K)
        o_m(i, j)    = sum over j' in N(i, j) of a_m(j, j') v_m(i, j')
        H_attn[i, j] = LayerNorm([o_1(i, j); ...; o_K(i, j)])

    `reference_span_logits` in `knowfree/reference_head.py` computes these lines literally over the
    full L x L grid; tests/test_modeling.py checks that this class agrees with it within 1e-5.

    In the band, the neighbours of cell (i, k) are the cells (i, k') with |k - k'| <= w that are
    spans of the text. The band edge: with `max_span_width` W the band stops at k = W - 1, so a span
    wider than W - w characters (k + w >= W) lacks its neighbours k' >= W and attends over the ones
    that remain; its output differs from the full grid's, which is why the tests compare only the
    cells with k + w < W. Spans of at most W - w characters, and every span when there is no width
    limit (W = L), see exactly the neighbours of the equations.

    Computation: a row of at most `BLOCK` + 2w cells is one block whose queries are scored against
    the whole row. A wider row is cut into blocks of about `BLOCK` cells, and the queries of a block
    are scored against the keys of that block widened by w on each side. A mask keeps exactly the
    |k - k'| <= w neighbours that are spans; every score matrix is at most block x (block + 2w), so
    no L x L attention matrix exists and the cost grows linearly with W. All blocks go through one
    fused `scaled_dot_product_attention` call on strided views of the q/k/v projection.
    Input (..., W, D~) and the band mask (..., W); output (..., W, D~).
    """

    BLOCK = 16

    def __init__(self, config: KnowFreeConfig):
        super().__init__()
        self.heads = config.local_attention_heads
        self.head_size = config.span_hidden_size // config.local_attention_heads
        self.window = config.local_attention_window
        self.query = nn.Linear(config.span_hidden_size, config.span_hidden_size, bias=False)
        self.key = nn.Linear(config.span_hidden_size, config.span_hidden_size, bias=False)
        self.value = nn.Linear(config.span_hidden_size, config.span_hidden_size, bias=False)
        self.norm = nn.LayerNorm(config.span_hidden_size)

    def forward(self, spans: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
        *leading, width, hidden = spans.shape
        rows = span_mask.numel() // width
        if rows == 0:
            return self.norm(spans)
        if width <= self.BLOCK + 2 * self.window:
            blocks, block, halo = 1, width, 0
        else:
            blocks = -(-width // self.BLOCK)
            block, halo = -(-width // blocks), self.window
        padded_width = blocks * block
        reach = block + 2 * halo
        # the cells of all rows one after another, each row padded to whole blocks, and `halo` zero
        # cells before the first and after the last: the keys of block b are the `reach` cells from
        # position b * block on, and its queries the `block` cells from b * block + halo on
        cells = spans.reshape(rows, width, hidden)
        if padded_width > width:
            cells = F.pad(cells, (0, 0, 0, padded_width - width))
        cells = cells.reshape(rows * padded_width, hidden)
        if halo:
            cells = F.pad(cells, (0, 0, halo, halo))
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
        query, key, value = F.linear(cells, weight).view(len(cells), 3, hidden).unbind(1)
        if halo:
            query = query[halo:-halo]
        query = query.view(rows * blocks, block, self.heads, self.head_size).transpose(1, 2)
        shape = (rows * blocks, self.heads, self.head_size, reach)
        key = key.unfold(0, reach, block).view(shape).transpose(2, 3)
        value = value.unfold(0, reach, block).view(shape).transpose(2, 3)

        # key c of a block lies c - halo cells after the block's first query; halo cells of the
        # neighbouring rows and the padding are not spans of this row, so the mask drops them
        key_is_span = span_mask.reshape(rows, width)
        if padded_width > width or halo:
            key_is_span = F.pad(key_is_span, (halo, padded_width - width + halo), value=False)
        key_is_span = key_is_span.unfold(1, reach, block).reshape(rows * blocks, 1, 1, reach)
        positions = torch.arange(reach, device=spans.device)
        near = (positions[None, :] - halo - positions[:block, None]).abs() <= self.window
        bias = torch.full((rows * blocks, 1, block, reach), torch.finfo(spans.dtype).min, dtype=spans.dtype, device=spans.device)
        bias = bias.masked_fill_(near & key_is_span, 0.0)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        attended = attended.transpose(1, 2).reshape(rows, padded_width, hidden)
        if padded_width > width:
            attended = attended[:, :width]
        return self.norm(attended).view(*leading, width, hidden)


class CharacterProjection(nn.Linear):
    """Maps a character's input embedding onto its character state; zero at initialisation, so a new
    model starts as the paper's and learns how much the character's identity adds."""


class KnowFreeLabelClassifier(nn.Linear):
    """W_O and b of eq. 17: span features (..., D~) -> one logit per target and extension label."""


ACTIVATION_FUNCTIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "gelu": nn.GELU}


def logit_of_score(score: float | None) -> float | None:
    """The logit whose sigmoid is `score`; None for no score or one <= 0 (no cell can be skipped)."""
    if score is None or score <= 0:
        return None
    return math.inf if score >= 1 else math.log(score / (1 - score))


class KnowFreeSpanHead(nn.Module):
    """From character states to span logits (eqs. 9-17).

    H_s, H_e = sigma(H W_s), sigma(H W_e); H_B = biaffine(H_s, H_e); H_attn = local attention(H_B);
    H_G = LayerNorm(H_B + H_attn); logits = W_O (H_B + H_G) + b + b_width. Without local attention
    the classifier reads H_B alone. b_width (`width_bias`, W x N) is a bias per (width, label) that
    the training priors set (`KnowFreeModel.initialize_label_priors`); it is zero unless set, which is
    eq. 17 as written. Input (B, L, D) and char mask (B, L); output logits (B, L, W, N) over target
    then extension labels, and the band mask (B, L, W).

    Only the band rows whose start character is in the text are computed (every cell of the other
    rows lies outside the text; their logits are 0), so padding in a batch costs nothing past the
    projections. Without gradients (prediction) the rows go through in chunks of
    `INFERENCE_CHUNK_ROWS`. A row's span cells depend on that row alone, so this changes no span's
    logit; it bounds the memory of long texts (a chunk holds at most that many rows of W cells), and
    it keeps the head's intermediates (the biaffine forms above all, 40,000 floats per row) small
    enough to be reused rather than mapped afresh on every call. On CPU it cut the head's time on
    the Weibo test by a third (benchmarks/README.md). What depends on the position alone (the
    projections and the biaffine's end side, `band_ends`) is computed once per batch, before the
    chunks. While the end side's W_e e[j] was recomputed over the whole batch for every chunk, 256
    rows was the fastest of 128/256/512 (2 threads); without that recomputation 128 rows is faster
    (1 thread: the head's time 0.88x in `predict` on Weibo test texts, 0.92x on the 8 longest cmeee
    sentences; benchmarks/README.md, "Span head: where predict's time goes").

    With `min_logit` (prediction only), a row is computed only when one of its cells could reach
    `min_logit` for a target label; every other cell gets the lowest float. Which rows can is decided
    exactly and cheaply (`target_logit_bounds`): the classifier's target rows are pushed through the
    biaffine, so W_O H_B costs N x D' per cell instead of D~ x D' per cell plus the attention, and
    W_O H_G is at most a constant per label, since LayerNorm output has a fixed norm. On the Weibo
    test at the calibrated threshold, 6% of the rows can reach it.
    """

    INFERENCE_CHUNK_ROWS = 128
    BOUND_TOLERANCE = 1e-3
    """Nats added to each bound so that rounding (the bound and the logit sum in different orders)
    can never drop a cell whose logit lies on the threshold."""

    def __init__(self, config: KnowFreeConfig, input_size: int):
        super().__init__()
        activation = ACTIVATION_FUNCTIONS[config.activation]
        self.start_projection = nn.Sequential(nn.Linear(input_size, config.projection_size), activation())
        self.end_projection = nn.Sequential(nn.Linear(input_size, config.projection_size), activation())
        self.biaffine = KnowFreeMultiHeadBiaffine(config)
        self.local_attention = KnowFreeLocalAttention(config) if config.use_local_attention else None
        self.residual_norm = nn.LayerNorm(config.span_hidden_size) if config.use_local_attention else None
        self.classifier = KnowFreeLabelClassifier(config.span_hidden_size, len(config.labels))
        # a bias per (width, label) on top of the classifier's per-label one, set from the data by
        # `KnowFreeModel.initialize_label_priors`; zero leaves eq. 17 as written
        self.width_bias = nn.Parameter(torch.zeros(config.max_span_width, len(config.labels))) if config.max_span_width else None
        self.max_span_width = config.max_span_width
        self.target_count = len(config.target_labels)

    def forward(
        self, char_states: torch.Tensor, char_mask: torch.Tensor, min_logit: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        width = band_width(char_states.shape[1], self.max_span_width)
        span_mask = band_span_mask(char_mask, width)
        start = self.start_projection(char_states)
        end = self.end_projection(char_states)
        band_ends = self.biaffine.band_ends(end, width)
        rows = char_mask.nonzero(as_tuple=True)
        fill = 0.0
        if min_logit is not None and not torch.is_grad_enabled():
            fill = torch.finfo(char_states.dtype).min
            rows = self.rows_reaching(start, end, width, span_mask, rows, min_logit, self.INFERENCE_CHUNK_ROWS)
        rows_per_chunk = max(1, len(rows[0])) if torch.is_grad_enabled() else self.INFERENCE_CHUNK_ROWS
        chunks = [
            self.row_logits(start, band_ends, width, row_mask, (batch_index, position_index))
            for batch_index, position_index, row_mask in zip(
                rows[0].split(rows_per_chunk), rows[1].split(rows_per_chunk), span_mask[rows].split(rows_per_chunk)
            )
        ]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        return logits.new_full(span_mask.shape + logits.shape[-1:], fill).index_put(rows, logits), span_mask

    def rows_reaching(
        self,
        start: torch.Tensor,
        end: torch.Tensor,
        width: int,
        span_mask: torch.Tensor,
        rows: tuple[torch.Tensor, torch.Tensor],
        min_logit: float | torch.Tensor,
        rows_per_chunk: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The band rows (of `rows`) with a cell whose target logit may reach `min_logit`, bounded
        `rows_per_chunk` rows at a time (None: all at once, as the ONNX graph does, whose row count
        is symbolic)."""
        weights = self.target_bound_weights()
        padded_ends = pad_band_rows(torch.cat([end, end @ weights[2].T], -1), width)
        chunks = [rows] if rows_per_chunk is None else list(zip(rows[0].split(rows_per_chunk), rows[1].split(rows_per_chunk)))
        keep = torch.cat([
            ((self.target_logit_bounds(start, padded_ends, width, chunk_rows, weights).amax(-1) >= min_logit) & span_mask[chunk_rows]).any(-1)
            for chunk_rows in chunks
        ])
        return rows[0][keep], rows[1][keep]

    def target_bound_weights(self) -> tuple[torch.Tensor, ...]:
        """The target rows of W_O (eq. 17) pushed through the biaffine (eq. 10).

        W_O H_B[i, j] = sum_m s_m[i]^T V_m e_m[j] + (W_O W_s) s[i] + (W_O W_e) e[j] + W_O b_s, with
        V_m = U_m contracted with W_O over D~. With local attention, the logit adds W_O H_G, and H_G
        is a LayerNorm output gamma * z + beta with z of mean 0 and norm at most sqrt(D~), so W_O H_G
        is at most sqrt(D~) |W_O gamma - mean| + W_O beta per label (Cauchy-Schwarz); that and the
        classifier bias go into the start side's constant. Returns (V (heads, head size, N, head
        size), start weight (N, D'), end weight (N, D'), constant (N,)).
        """
        classifier = self.classifier.weight[: self.target_count]
        constant = self.classifier.bias[: self.target_count] + classifier @ self.biaffine.start_affine.bias + self.BOUND_TOLERANCE
        if self.residual_norm is not None:
            scaled = classifier * self.residual_norm.weight
            spread = (scaled - scaled.mean(-1, keepdim=True)).norm(dim=-1) * classifier.shape[-1] ** 0.5
            constant = constant + spread + classifier @ self.residual_norm.bias
        bilinear = torch.einsum("madc,nd->manc", self.biaffine.bilinear, classifier)
        return bilinear, classifier @ self.biaffine.start_affine.weight, classifier @ self.biaffine.end_affine.weight, constant

    def target_logit_bounds(
        self,
        start: torch.Tensor,
        padded_ends: torch.Tensor,
        width: int,
        rows: tuple[torch.Tensor, torch.Tensor],
        weights: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """Upper bounds (R, W, N targets) of the target logits of the band rows `rows`; exact without
        local attention (up to `BOUND_TOLERANCE`). `padded_ends` is [e[j]; (W_O W_e) e[j]] padded by
        `pad_band_rows`; `weights` is `target_bound_weights()`."""
        bilinear, start_weight, _, constant = weights
        heads, head_size, labels, _ = bilinear.shape
        start_rows = start[rows]
        per_head = start_rows.view(-1, heads, head_size).transpose(0, 1)
        forms = torch.bmm(per_head, bilinear.reshape(heads, head_size, labels * head_size))
        forms = forms.view(heads, -1, labels, head_size).permute(1, 0, 3, 2).reshape(-1, heads * head_size, labels)
        ends, end_terms = gather_band_rows(padded_ends, width, rows).split([start.shape[-1], labels], -1)
        bounds = torch.baddbmm(end_terms, ends, forms) + (start_rows @ start_weight.T + constant)[:, None, :]
        return bounds if self.width_bias is None else bounds + self.width_bias[:width, : self.target_count]

    def row_logits(
        self,
        start: torch.Tensor,
        band_ends: torch.Tensor,
        width: int,
        row_mask: torch.Tensor,
        rows: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """Logits (R, W, N) of the band rows starting at `rows` = (batch index, position index)."""
        biaffine = self.biaffine(start, band_ends, width, rows)
        if self.local_attention is None:
            logits = self.classifier(biaffine)
        else:
            attended = self.local_attention(biaffine, row_mask)
            grouped = self.residual_norm(biaffine + attended)
            logits = self.classifier(biaffine + grouped)
        return logits if self.width_bias is None else logits + self.width_bias[:width]


# ---------------------------------------------------------------------------------------------------
# 3. The loss
# ---------------------------------------------------------------------------------------------------


def span_loss(
    span_logits: torch.Tensor,
    span_labels: torch.Tensor,
    span_mask: torch.Tensor,
    label_weights: torch.Tensor,
    row_weights: torch.Tensor,
    negative_weight: float = 1.0,
) -> torch.Tensor:
    """Weighted binary cross-entropy over valid band cells (eqs. 18-19).

    Each (span, label) term is weighted by its label's weight (1 for targets, alpha_i for extension
    label i) and its row's weight (beta for synthetic rows, else 1); padding and cells past the text
    contribute nothing. The sum is divided by the number of valid spans, a count that depends on no
    weight, so changing one weight changes the loss by exactly its terms.
    """
    terms = F.binary_cross_entropy_with_logits(span_logits, span_labels.to(span_logits.dtype), reduction="none")
    weights = label_weights[None, None, None, :] * row_weights[:, None, None, None]
    if negative_weight != 1.0:
        weights = weights * torch.where(span_labels > 0, 1.0, negative_weight).to(terms)
    weighted = terms * weights * span_mask[..., None]
    return weighted.sum() / span_mask.sum().clamp(min=1)

# ---------------------------------------------------------------------------------------------------
# 4. The model
# ---------------------------------------------------------------------------------------------------


@dataclass
class KnowFreeOutput(ModelOutput):
    """Output of `KnowFreeModel.forward`.

    loss: weighted span BCE when `span_labels` are given.
    span_logits: (B, L, W, N_tgt + N_ext) in the (start, width) band layout.
    span_mask: (B, L, W) cells that are real spans of the text.
    """

    loss: torch.Tensor | None = None
    span_logits: torch.Tensor | None = None
    span_mask: torch.Tensor | None = None


INITIAL_LOG_ODDS = -4.6
"""Classifier bias at initialisation: sigmoid(-4.6) ~ 0.01, the prior that a span has a given label.
An untrained model then predicts nothing instead of every span, and early training is not swamped by
the gradient of the overwhelmingly negative cells."""


class KnowFreePreTrainedModel(PreTrainedModel):
    config_class = KnowFreeConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, KnowFreeMultiHeadBiaffine):
            init.normal_(module.bilinear, mean=0.0, std=0.02)
        elif isinstance(module, KnowFreeLabelClassifier):
            init.constant_(module.bias, INITIAL_LOG_ODDS)
        elif isinstance(module, CharacterProjection):
            init.zeros_(module.weight)
        elif isinstance(module, KnowFreeSpanHead) and module.width_bias is not None:
            init.zeros_(module.width_bias)


class KnowFreeModel(KnowFreePreTrainedModel):
    """Encoder + KnowFREE span head. `predict` returns character spans; extension labels are trained
    (they have output channels and loss terms) but never predicted.

    `processor` (a `KnowFreeProcessor`, saved and loaded with the weights) turns text into `forward`'s
    inputs and band logits back into spans; it is None when no tokenizer was saved beside the weights.
    """

    def __init__(self, config: KnowFreeConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config)
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None
        hidden_size = config.encoder_config.hidden_size
        self.piece_start_embedding = nn.Embedding(PIECE_POSITION_BUCKETS, hidden_size)
        self.piece_end_embedding = nn.Embedding(PIECE_POSITION_BUCKETS, hidden_size)
        self.character_projection = CharacterProjection(hidden_size, hidden_size, bias=False) if config.character_embeddings else None
        self.dropout = nn.Dropout(config.dropout)
        self.span_head = KnowFreeSpanHead(config, hidden_size)
        self.processor: KnowFreeProcessor | None = None
        self.post_init()

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        """The processor's tokenizer; setting it builds the processor around it and this config."""
        return None if self.processor is None else self.processor.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: PreTrainedTokenizerBase | None) -> None:
        self.processor = None if tokenizer is None else KnowFreeProcessor(tokenizer, self.config)

    # -- building and saving -------------------------------------------------------------------------

    @classmethod
    def from_encoder(
        cls,
        encoder: str | Path,
        target_labels: list[str],
        extension_labels: list[str] | None = None,
        **config_kwargs,
    ) -> "KnowFreeModel":
        """A fresh KnowFREE model on top of a pretrained encoder (a folder or a Hub id) and its tokenizer."""
        encoder_model = AutoModel.from_pretrained(encoder)
        config = KnowFreeConfig(
            encoder_config=encoder_model.config.to_dict(),
            target_labels=list(target_labels),
            extension_labels=list(extension_labels or []),
            **config_kwargs,
        )
        model = cls(config)
        encoder_state = {key: value for key, value in encoder_model.state_dict().items() if not key.startswith("pooler.")}
        model.encoder.load_state_dict(encoder_state)
        model.processor = KnowFreeProcessor(AutoTokenizer.from_pretrained(encoder), model.config)
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args, **kwargs) -> "KnowFreeModel":
        """Load weights and config, plus the processor when a tokenizer was saved beside them."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if kwargs.get("output_loading_info") else loaded
        hub_kwargs = {key: kwargs[key] for key in HUB_OPTIONS if key in kwargs}
        try:
            model.processor = KnowFreeProcessor.from_pretrained(pretrained_model_name_or_path, config=model.config, **hub_kwargs)
        except (OSError, ValueError):
            model.processor = None
        return loaded

    def save_pretrained(self, save_directory: str | Path, *args, **kwargs) -> None:
        """Save the processor (tokenizer), then weights, config and remote code (this file, the config,
        processor and pipeline files), so `predict` and `pipeline()` work after loading. The model's
        own save comes last, so its config.json is the one kept."""
        if self.processor is not None:
            self.processor.save_pretrained(save_directory)
        self.config.custom_pipelines = pipeline_entry()  # pipeline(model=..., trust_remote_code=True) finds its class
        super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def initialize_label_priors(self, text_lengths: list[int], spans: list[tuple[int, str]]) -> None:
        """Start each label's bias at the log-odds of its share of band cells in the training data.

        `text_lengths` are the training texts' lengths, `spans` the (width, label) of every training
        span. With BCE over L x W cells, positives are rare (about 1e-4 of cells for NER): starting
        from the true prior spares the optimizer hundreds of steps of pushing every logit down, which
        with Adam's bounded steps is most of a low-resource training budget. With a width limit the
        prior is per (width, label): the classifier bias holds a label's overall log-odds and
        `span_head.width_bias` the difference at each width, so a width no training span of the label
        has (0.5 of a span, smoothed) starts far below the widths it does have. Without it, a long
        cell that a start and an end of different entities both make look likely outscored the
        entities themselves (Weibo dev: 17 predicted spans of 8 or more characters, none right, each
        hiding shorter true ones under flat decoding). Unseen labels get the prior of one span. With
        negatives weighted by `config.negative_weight` the loss is lowest at the odds
        count / (weight x negatives), so that is where the biases start.
        """
        labels = {label: index for index, label in enumerate(self.config.labels)}
        unknown = sorted({label for _, label in spans} - set(labels))
        if unknown:
            raise ValueError(f"spans with labels the model does not have: {unknown}")
        head = self.span_head
        slots = head.width_bias.shape[0] if head.width_bias is not None else None
        counts = torch.zeros(len(labels), slots or 1)
        for width, label in spans:
            if slots is None or width <= slots:
                counts[labels[label], 0 if slots is None else width - 1] += 1
        if slots is None:
            cells = torch.tensor([float(sum(band_cell_count(length, None) for length in text_lengths))])
        else:
            cells = torch.tensor([float(sum(max(0, length - width + 1) for length in text_lengths)) for width in range(1, slots + 1)])
        cells = cells.clamp(min=2.0)

        def log_odds(positives: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
            rates = (positives / total).clamp(max=0.5)
            return torch.log(rates / ((1 - rates) * self.config.negative_weight))

        overall = log_odds(counts.sum(1).clamp(min=1.0), cells.sum())
        head.classifier.bias.copy_(overall)
        if head.width_bias is not None:
            head.width_bias.copy_((log_odds(counts.clamp(min=0.5), cells[None, :]) - overall[:, None]).T)

    # -- forward -------------------------------------------------------------------------------------

    def label_weights(self) -> torch.Tensor:
        """Loss weight per output channel: 1 for targets, alpha_i for extension label i."""
        weights = [1.0] * len(self.config.target_labels) + list(self.config.extension_label_weights)
        return torch.tensor(weights, device=self.device)

    def encode_characters(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        char_token_index: torch.Tensor,
        char_piece_start: torch.Tensor,
        char_piece_end: torch.Tensor,
        char_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encoder states gathered per character plus in-piece positions: (B, T) tokens -> (B, L, D).

        With `config.character_embeddings`, each character's own input embedding (the encoder's table,
        looked up by `char_ids`) is added through a projection that starts at zero."""
        token_states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        index = char_token_index[..., None].expand(-1, -1, token_states.shape[-1])
        char_states = token_states.gather(1, index)
        char_states = char_states + self.piece_start_embedding(char_piece_start) + self.piece_end_embedding(char_piece_end)
        if self.character_projection is not None:
            if char_ids is None:
                raise ValueError("this model reads each character's own embedding: pass char_ids (KnowFreeProcessor.encode makes them)")
            char_states = char_states + self.character_projection(self.encoder.get_input_embeddings()(char_ids))
        return self.dropout(char_states)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        char_token_index: torch.Tensor,
        char_piece_start: torch.Tensor,
        char_piece_end: torch.Tensor,
        char_mask: torch.Tensor,
        span_labels: torch.Tensor | None = None,
        synthetic: torch.Tensor | None = None,
        char_ids: torch.Tensor | None = None,
        min_score: float | None = None,
    ) -> KnowFreeOutput:
        """Span logits for every band cell; with `span_labels` also the weighted loss.

        The inputs are what `KnowFreeProcessor.encode` (prediction) or `training_batch` (training)
        makes; B windows of at most T tokens and L characters:
        - `input_ids`, `attention_mask` (B, T): the windows' tokens inside the tokenizer's special
          tokens, padded;
        - `char_token_index` (B, L): for each character, the token whose hidden state represents it;
        - `char_piece_start`, `char_piece_end` (B, L): the character's position counted from the first
          and from the last character of that token, in `PIECE_POSITION_BUCKETS` buckets (the last one
          for characters no token covers);
        - `char_mask` (B, L): True on real characters, False on padding;
        - `span_labels` (B, L, W, N): multi-hot targets in the band, target then extension labels;
        - `synthetic` (B,): rows whose loss is scaled by beta (`config.synthetic_weight`);
        - `char_ids` (B, L): each character's own vocabulary id, needed with `config.character_embeddings`;
        - `min_score` (prediction, without gradients): only cells whose best target label could score
          at least this are needed; band rows with none are not computed and hold the lowest float
          (`KnowFreeSpanHead`), so every cell at or above `min_score` keeps its exact logits.

        There is no catch-all keyword: a misspelled argument (`span_label=`) is a TypeError, not a
        batch silently trained without a loss.
        """
        char_states = self.encode_characters(input_ids, attention_mask, char_token_index, char_piece_start, char_piece_end, char_ids)
        span_logits, span_mask = self.span_head(char_states, char_mask, logit_of_score(min_score))
        loss = None
        if span_labels is not None:
            if span_labels.shape != span_logits.shape:
                raise ValueError(f"span_labels has shape {tuple(span_labels.shape)}, expected {tuple(span_logits.shape)}")
            row_weights = torch.ones(span_logits.shape[0], device=span_logits.device)
            if synthetic is not None:
                row_weights = torch.where(synthetic.to(torch.bool), self.config.synthetic_weight, 1.0).to(row_weights)
            loss = span_loss(span_logits, span_labels, span_mask, self.label_weights().to(span_logits.dtype), row_weights, self.config.negative_weight)
        return KnowFreeOutput(loss=loss, span_logits=span_logits, span_mask=span_mask)

    # -- prediction: processor -> forward -> processor --------------------------------------------------

    @torch.inference_mode()
    def predict(
        self,
        texts,
        batch_size: int = 8,
        threshold: float | None = None,
        decoding: str | None = None,
        max_tokens: int | None = None,
        show_progress_bar: bool = False,
        text_column: str = "text",
        time_limit: float | None = None,
    ) -> list[dict] | list[list[dict]]:
        """Spans of target labels with character `start`, `end` (exclusive), `label`, `score`, `text`.

        A string gives a list of spans; a list of strings, a `datasets.Dataset` (its `text_column`)
        or any iterable of strings a list of such lists, in order. Text longer than the encoder limit
        is read in overlapping windows and the spans merged, never truncated. `threshold` (one value
        for every label) defaults to the config's per-label thresholds, the ones calibrated on dev
        after training, and `decoding` ("flat"/"nested") to the config's. `time_limit` (seconds) stops
        with a TimeoutError once it is passed (checked between batches). `show_progress_bar` shows
        the encoder batches as they are done.
        """
        single = isinstance(texts, str)
        processor = self.require_processor()
        batch_texts = [texts] if single else processor.text_list(texts, text_column)
        nested = processor.is_nested(decoding)
        thresholds = processor.label_thresholds(threshold)
        candidates = self.span_candidates(batch_texts, batch_size, min(thresholds, default=1.0), max_tokens, show_progress_bar, time_limit)
        results = processor.post_process(batch_texts, candidates, thresholds, nested)
        return results[0] if single else results

    @torch.inference_mode()
    def span_candidates(
        self, texts: list[str], batch_size: int = 8, min_score: float = 0.5, max_tokens: int | None = None, show_progress_bar: bool = False,
        time_limit: float | None = None,
    ) -> list[list[SpanCandidate]]:
        """Every band cell whose best target label scores at least `min_score`, before decoding, per text.

        `predict` filters these by the label thresholds and decodes them; threshold calibration scores
        the same candidates once and then tries many thresholds without running the model again.
        """
        processor = self.require_processor()

        def run(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            output = self(**{key: value.to(self.device) for key, value in inputs.items()}, min_score=min_score)
            return output.span_logits, output.span_mask

        was_training = self.training
        self.eval()
        try:
            return processor.span_candidates(texts, run, batch_size, min_score, max_tokens, show_progress_bar, time_limit)
        finally:
            self.train(was_training)

    def export_onnx(self, directory: str | Path, quantize: bool | str = False, dynamo: bool = True) -> Path:
        """Write an ONNX Runtime copy of this model to `directory` (`onnx_knowfree.export_onnx`): the
        graph of encoder and span head, with `quantize` (True or "encoder", or "all") an int8 graph as
        well, the processor's tokenizer and config, and the code that loads them as
        `KnowFreeOnnxModel`. Imported here, not at the top, because that file imports this one and
        only exports need it; its relative import is what makes the Hub ship it with this file."""
        try:
            from .onnx_knowfree import export_onnx
        except ImportError:
            from onnx_knowfree import export_onnx
        return export_onnx(self, directory, quantize=quantize, dynamo=dynamo)

    def require_processor(self) -> KnowFreeProcessor:
        """The processor, or a clear error when the model was loaded without a tokenizer."""
        if self.processor is None:
            raise ValueError("this model has no tokenizer: set model.tokenizer or save one beside the weights")
        return self.processor


KnowFreeConfig.register_for_auto_class()
KnowFreeModel.register_for_auto_class("AutoModel")

__all__ = ["KnowFreeModel", "KnowFreePreTrainedModel", "KnowFreeOutput"]
