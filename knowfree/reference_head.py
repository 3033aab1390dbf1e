"""The naive KnowFREE span head: eqs. 9-17 read literally over the full L x L grid.

It is the yardstick for the fast band implementation in `modeling_knowfree.py` (tests check they
agree, `benchmarks/bench_span_head.py` measures the gap). It reuses the fast head's parameters, so
both compute the same function; only the layout and the attention differ:
- H_B is built for every (start, end) pair, the lower triangle included;
- every grid row runs full attention over all L cells of the row, restricted by the mask of eq. 11
  (|j - j'| <= w) and by masking neighbours that are not spans (j' < i, or past the text);
- the (width, label) bias is added to cell (i, j) by looking up width j - i + 1 (cells wider than the
  band get none: the band has no such cells to compare with).
"""

import torch

from modeling_knowfree import KnowFreeSpanHead


def reference_span_logits(
    head: KnowFreeSpanHead, char_states: torch.Tensor, char_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Span logits on the full grid: (B, L, D) states -> logits (B, L, L, N) and valid mask (B, L, L)."""
    batch, length, _ = char_states.shape
    start = head.start_projection(char_states)
    end = head.end_projection(char_states)
    biaffine = head.biaffine
    start_heads = start.view(batch, length, biaffine.heads, biaffine.head_size)
    end_heads = end.view(batch, length, biaffine.heads, biaffine.head_size)
    grid = torch.einsum("bimx,mxoy,bjmy->bijo", start_heads, biaffine.bilinear, end_heads)
    grid = grid + biaffine.start_affine(start)[:, :, None, :] + biaffine.end_affine(end)[:, None, :, :]

    lengths = char_mask.sum(-1)
    positions = torch.arange(length, device=char_states.device)
    inside = positions[None, :] < lengths[:, None]
    valid = (positions[:, None] <= positions[None, :])[None] & inside[:, :, None] & inside[:, None, :]
    if head.local_attention is None:
        return with_width_bias(head, head.classifier(grid)), valid

    attention = head.local_attention
    shape = (batch, length, length, attention.heads, attention.head_size)
    query = attention.query(grid).view(shape)
    key = attention.key(grid).view(shape)
    value = attention.value(grid).view(shape)
    scores = torch.einsum("bijhd,bikhd->bihjk", query, key) / attention.head_size**0.5
    window = (positions[:, None] - positions[None, :]).abs() <= attention.window
    neighbour_is_span = valid[:, :, None, None, :]
    allowed = window[None, None, None] & neighbour_is_span
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    attended = torch.einsum("bihjk,bikhd->bijhd", scores.softmax(-1), value)
    attended = attention.norm(attended.reshape(batch, length, length, -1))
    grouped = head.residual_norm(grid + attended)
    return with_width_bias(head, head.classifier(grid + grouped)), valid


def with_width_bias(head: KnowFreeSpanHead, logits: torch.Tensor) -> torch.Tensor:
    """Grid logits (B, L, L, N) plus the head's bias of each cell's width, where the head has one."""
    if head.width_bias is None:
        return logits
    length, slots = logits.shape[1], head.width_bias.shape[0]
    positions = torch.arange(length, device=logits.device)
    offsets = positions[None, :] - positions[:, None]
    inside = (offsets >= 0) & (offsets < slots)
    return logits + head.width_bias[offsets.clamp(0, slots - 1)] * inside[..., None]


def band_to_grid(band: torch.Tensor, length: int) -> torch.Tensor:
    """Place (B, L, W, ...) band cells at their (start, end) grid position; cells outside stay zero."""
    batch, band_length, width = band.shape[:3]
    grid = band.new_zeros((batch, length, length) + tuple(band.shape[3:]))
    for offset in range(width):
        starts = torch.arange(0, max(0, min(band_length, length - offset)), device=band.device)
        grid[:, starts, starts + offset] = band[:, starts, offset]
    return grid
