"""KnowFREE: a biaffine span model with local span attention and extension labels.

Reads top to bottom as the forward pass:

1. character alignment: every character of the text gets one row of the span grid, whatever the
   tokenizer does (one WordPiece per character, or SentencePiece pieces covering several);
2. long-text windows: text longer than the encoder limit is cut into overlapping token windows;
3. the span head: start/end projections (eq. 9), multi-head biaffine (eq. 10), local multi-head
   attention over neighbouring spans of the same start (eqs. 11-16), the label classifier (eq. 17);
4. the loss (eqs. 18-20) and decoding (extension labels masked, flat or nested);
5. `KnowFreeModel`, a `PreTrainedModel` with `predict`.

Span convention everywhere: character offsets, `end` exclusive. Inside the model, spans live in a
band laid out as (start, width): grid cell [i, k] is the span of characters i..i+k (inclusive), so
its end offset is i + k + 1. With `max_span_width` W the band holds L x W cells instead of L x L.

This file depends only on torch, transformers and `configuration_knowfree.py`, so the Hub copy of
the two files is all `AutoModel.from_pretrained(..., trust_remote_code=True)` needs.
"""

import unicodedata
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
except ImportError:
    from configuration_knowfree import KnowFreeConfig


# ---------------------------------------------------------------------------------------------------
# 1. Character alignment
# ---------------------------------------------------------------------------------------------------

PIECE_POSITION_BUCKETS = 8
"""Characters 0..6 of a piece get their own position bucket, later ones share bucket 6; bucket 7 marks
a character that no token covers."""
UNCOVERED = PIECE_POSITION_BUCKETS - 1


def align_characters(
    text_length: int, token_offsets: list[tuple[int, int]]
) -> tuple[list[int], list[int], list[int]]:
    """Map every character to the token whose hidden state represents it.

    The alignment rule:
    - a character belongs to the last token whose offset range [start, end) contains it (special
      tokens have empty ranges and own nothing; a SentencePiece "▁" piece that the tokenizer maps
      onto the first character yields it to the real piece that follows);
    - a character no token covers (whitespace the tokenizer dropped) borrows the next covered
      token to its right, or the last one to its left at the end of the text;
    - since several characters may share a token ("中国" is one SentencePiece piece), each character
      also gets its position counted from the first and from the last character its token owns;
      uncovered characters get the bucket `UNCOVERED` in both.

    Returns three lists of length `text_length`: token index, position from the piece start and
    position from the piece end (both clipped to the buckets).
    """
    owner = [-1] * text_length
    for token_index, (start, end) in enumerate(token_offsets):
        for char in range(max(start, 0), min(end, text_length)):
            owner[char] = token_index
    first_owned: dict[int, int] = {}
    last_owned: dict[int, int] = {}
    for char, token_index in enumerate(owner):
        if token_index >= 0:
            first_owned.setdefault(token_index, char)
            last_owned[token_index] = char
    token_of_char = list(owner)
    next_covered = -1
    for char in range(text_length - 1, -1, -1):
        if owner[char] >= 0:
            next_covered = owner[char]
        else:
            token_of_char[char] = next_covered
    previous_covered = -1
    for char in range(text_length):
        if owner[char] >= 0:
            previous_covered = owner[char]
        elif token_of_char[char] < 0:
            token_of_char[char] = previous_covered
    if text_length and token_of_char[0] < 0:
        raise ValueError("the tokenizer produced no token covering any character of the text")
    from_start, from_end = [], []
    for char, token_index in enumerate(owner):
        if token_index < 0:
            from_start.append(UNCOVERED)
            from_end.append(UNCOVERED)
        else:
            from_start.append(min(char - first_owned[token_index], UNCOVERED - 1))
            from_end.append(min(last_owned[token_index] - char, UNCOVERED - 1))
    return token_of_char, from_start, from_end


# ---------------------------------------------------------------------------------------------------
# 2. Long-text windows
# ---------------------------------------------------------------------------------------------------


@dataclass
class TextWindow:
    """A piece of a text that fits the encoder.

    `char_start`/`char_end` locate the window in the full text; `token_ids` exclude special tokens;
    `token_offsets` are relative to the window; spans starting in [own_start, own_end) (full-text
    offsets) are the ones this window reports, so overlapping windows never report a span twice.
    """

    text_index: int
    text: str
    char_start: int
    char_end: int
    own_start: int
    own_end: int
    token_ids: list[int]
    token_offsets: list[tuple[int, int]]


def split_into_windows(
    text: str,
    text_index: int,
    tokenizer: PreTrainedTokenizerBase,
    max_tokens: int,
    overlap_tokens: int,
) -> list[TextWindow]:
    """Cut `text` into windows of at most `max_tokens` tokens (special tokens excluded).

    The text is tokenized once; windows are slices of that tokenization, so no window is
    re-tokenized differently from the whole. Consecutive windows share `overlap_tokens` tokens and
    the boundary of ownership sits in the middle of the shared part, so a span shorter than half the
    overlap is always seen whole by the window that owns its start.
    """
    if not text:
        return []
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    token_ids, offsets = encoding["input_ids"], [tuple(pair) for pair in encoding["offset_mapping"]]
    if len(token_ids) <= max_tokens:
        return [TextWindow(text_index, text, 0, len(text), 0, len(text), token_ids, offsets)]
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(f"overlap_tokens must be in [0, {max_tokens}), got {overlap_tokens}")
    stride = max_tokens - overlap_tokens
    token_starts = list(range(0, len(token_ids) - overlap_tokens, stride))
    bounds = []
    for first in token_starts:
        last = min(first + max_tokens, len(token_ids))
        char_start = 0 if first == 0 else offsets[first][0]
        char_end = len(text) if last == len(token_ids) else offsets[last][0]
        bounds.append((first, last, char_start, char_end))
        if last == len(token_ids):
            break
    windows = []
    for position, (first, last, char_start, char_end) in enumerate(bounds):
        own_start = 0 if position == 0 else windows[-1].own_end
        if position + 1 < len(bounds):
            own_end = (bounds[position + 1][2] + char_end) // 2
        else:
            own_end = len(text)
        window_offsets = [(start - char_start, end - char_start) for start, end in offsets[first:last]]
        windows.append(
            TextWindow(
                text_index=text_index,
                text=text[char_start:char_end],
                char_start=char_start,
                char_end=char_end,
                own_start=own_start,
                own_end=own_end,
                token_ids=token_ids[first:last],
                token_offsets=window_offsets,
            )
        )
    return windows


def spans_in_windows(windows: list[TextWindow], spans_per_text: list[list[tuple]]) -> list[list[tuple]]:
    """The (start, end, label) spans lying wholly inside each window, shifted to window offsets.

    Training uses it so that long texts are learnt window by window. A span that fits in no window
    could never be learnt, so it is an error rather than a silent loss.
    """
    placed: list[set] = [set() for _ in spans_per_text]
    per_window = []
    for window in windows:
        inside = []
        for span in spans_per_text[window.text_index]:
            start, end = span[0], span[1]
            if window.char_start <= start and end <= window.char_end:
                inside.append((start - window.char_start, end - window.char_start, *span[2:]))
                placed[window.text_index].add(span)
        per_window.append(inside)
    for text_index, spans in enumerate(spans_per_text):
        missing = set(spans) - placed[text_index]
        if missing:
            raise ValueError(f"spans {sorted(missing)} of text {text_index} fit in no encoder window")
    return per_window


def max_window_tokens(tokenizer: PreTrainedTokenizerBase, max_positions: int) -> int:
    """Text tokens that fit an encoder of `max_positions` once the tokenizer's special tokens are added."""
    limits = [max_positions]
    if tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    prefix, suffix = special_token_frame(tokenizer)
    return min(limits) - len(prefix) - len(suffix)


def text_windows(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, config: KnowFreeConfig, max_tokens: int | None = None
) -> list[TextWindow]:
    """All encoder windows of `texts`; the overlap is twice the widest span the model can emit."""
    max_tokens = max_tokens or max_window_tokens(tokenizer, getattr(config.encoder_config, "max_position_embeddings", 512))
    overlap_tokens = min(max_tokens // 2, 2 * (config.max_span_width or 64))
    windows: list[TextWindow] = []
    for text_index, text in enumerate(texts):
        windows.extend(split_into_windows(text, text_index, tokenizer, max_tokens, overlap_tokens))
    return windows


def pad_windows(windows: list[TextWindow], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Frame each window's tokens with the tokenizer's special tokens and pad: `input_ids`, `attention_mask`."""
    prefix, suffix = special_token_frame(tokenizer)
    rows = [prefix + window.token_ids + suffix for window in windows]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), max(len(row) for row in rows)), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[index, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def collate_windows(windows: list[TextWindow], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Pad a batch of windows into the tensors `KnowFreeModel.forward` takes."""
    prefix_length = len(special_token_frame(tokenizer)[0])
    batch_size = len(windows)
    max_chars = max(1, max(len(window.text) for window in windows))
    char_token_index = torch.zeros((batch_size, max_chars), dtype=torch.long)
    char_piece_start = torch.zeros((batch_size, max_chars), dtype=torch.long)
    char_piece_end = torch.zeros((batch_size, max_chars), dtype=torch.long)
    char_ids = torch.zeros((batch_size, max_chars), dtype=torch.long)
    char_mask = torch.zeros((batch_size, max_chars), dtype=torch.bool)
    for row, window in enumerate(windows):
        offsets = [(0, 0)] * prefix_length + window.token_offsets
        token_of_char, from_start, from_end = align_characters(len(window.text), offsets)
        length = len(token_of_char)
        if length:
            char_token_index[row, :length] = torch.tensor(token_of_char, dtype=torch.long)
            char_piece_start[row, :length] = torch.tensor(from_start, dtype=torch.long)
            char_piece_end[row, :length] = torch.tensor(from_end, dtype=torch.long)
            char_ids[row, :length] = torch.tensor(character_ids(window.text, tokenizer), dtype=torch.long)
            char_mask[row, :length] = True
    return {
        **pad_windows(windows, tokenizer),
        "char_token_index": char_token_index,
        "char_piece_start": char_piece_start,
        "char_piece_end": char_piece_end,
        "char_ids": char_ids,
        "char_mask": char_mask,
    }


def character_ids(text: str, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Each character's own vocabulary id (the unknown id where the vocabulary has no such piece).

    A SentencePiece vocabulary merges characters into pieces (e5 reads 的女人 as one piece), so the
    token state alone cannot tell a span starting at 女 from one starting at 的; the character's own
    embedding can (`KnowFreeConfig.character_embeddings`)."""
    unknown = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    ids = tokenizer.convert_tokens_to_ids(list(text))
    # full-width punctuation (，！) is in the vocabulary as its NFKC form (, !), as the tokenizer reads it
    normalized = tokenizer.convert_tokens_to_ids([unicodedata.normalize("NFKC", char) for char in text])
    return [
        normal if index in (None, unknown) and normal is not None else (unknown if index is None else index)
        for index, normal in zip(ids, normalized)
    ]


def special_token_frame(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after a text ([CLS] ... [SEP], <s> ... </s>).

    Found by encoding a probe text with and without special tokens, so it works for any tokenizer
    without relying on tokenizer-class specific helpers.
    """
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    framed = tokenizer("a", add_special_tokens=True)["input_ids"]
    for prefix_length in range(len(framed) - len(bare) + 1):
        if framed[prefix_length : prefix_length + len(bare)] == bare:
            return framed[:prefix_length], framed[prefix_length + len(bare) :]
    raise ValueError(f"cannot locate the text inside the special tokens of {type(tokenizer).__name__}")


# ---------------------------------------------------------------------------------------------------
# 3. The span head
# ---------------------------------------------------------------------------------------------------


def band_width(length: int, max_span_width: int | None) -> int:
    """Number of width slots the (start, width) band needs for `length` characters."""
    return max(1, length if max_span_width is None else min(max_span_width, length))


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


def gather_band_rows(features: torch.Tensor, width: int, rows: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Features of the span ends of the band rows starting at `rows` = (batch index, position index):
    (B, L, D) -> (R, W, D), where cell k of a row holds position + k, zeros past the end.

    One `index_select` on the text-padded features, so the backward pass scatters into a (B, L, D)
    gradient instead of zero-filling a (B, L, W, D) one.
    """
    batch, length, size = features.shape
    batch_index, position_index = rows
    padded = F.pad(features, (0, 0, 0, width - 1)).reshape(-1, size)
    first = batch_index * (length + width - 1) + position_index
    cells = first[:, None] + torch.arange(width, device=features.device)
    return padded.index_select(0, cells.reshape(-1)).view(len(first), width, size)


class KnowFreeMultiHeadBiaffine(nn.Module):
    """Multi-head biaffine scorer (eq. 10).

    The projection size D' is split into `biaffine_heads` blocks; each block has its own bilinear
    form into the D~ span features, and an affine term on [start; end] is added:
    H_B[i, j] = sum_m s_m[i]^T U_m e_m[j] + W_s s[i] + W_e e[j] + b.
    Input: start, end (B, L, D') and the R band rows to compute, `rows` = (batch index, position
    index) of their start character. Output: (R, W, D~).

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

    def forward(self, start: torch.Tensor, end: torch.Tensor, width: int, rows: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        _, length, projection = start.shape
        count = len(rows[0])
        flat_rows = rows[0] * length + rows[1]
        start_rows = start.reshape(-1, projection).index_select(0, flat_rows)
        band = gather_band_rows(self.end_affine(end), width, rows) + self.start_affine(start_rows)[:, None, :]
        end_heads = gather_band_rows(end, width, rows).view(count, width, self.heads, self.head_size).unbind(2)
        start_heads = start_rows.view(count, self.heads, self.head_size).unbind(1)
        for start_head, end_head, bilinear in zip(start_heads, end_heads, self.bilinear.unbind(0)):
            forms = (start_head @ bilinear.reshape(self.head_size, -1)).view(count, bilinear.shape[1], self.head_size)
            band = band.baddbmm_(end_head, forms.transpose(1, 2))
        return band


class KnowFreeLocalAttention(nn.Module):
    """Local multi-head attention over the span band (eqs. 11-15).

    Span (i, j) attends to the spans (i, j') of its own start row with |j - j'| <= w, skipping
    cells outside the text. In the (start, width) layout those are the cells (i, k') with
    |k - k'| <= w. A row of at most `BLOCK` + 2w cells is one block whose queries are scored against
    the whole row. A wider row is cut into blocks of about `BLOCK` cells, and the queries of a block
    are scored against the keys of that block widened by w on each side. A mask keeps exactly the
    |k - k'| <= w neighbours that are spans; every score matrix is at most block x (block + 2w), so
    no L x L attention matrix exists and the cost grows linearly with W. All blocks go through one
    fused `scaled_dot_product_attention` call on strided views of the q/k/v projection.
    Input (..., W, D~) and the band mask (..., W); output (..., W, D~), LayerNorm(concat of heads).
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
    `INFERENCE_CHUNK_ROWS`. A row's logits depend on that row alone, so this changes no value; it
    bounds the memory of long texts (a chunk holds at most that many rows of W cells), and it keeps
    the head's intermediates (the biaffine forms above all, 40,000 floats per row) small enough to
    be reused rather than mapped afresh on every call. On CPU it cut the head's time on the Weibo
    test by a third; 256 rows was the fastest of 128/256/512 at both W = 19 and W = 126
    (benchmarks/README.md).
    """

    INFERENCE_CHUNK_ROWS = 256

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

    def forward(self, char_states: torch.Tensor, char_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = band_width(char_states.shape[1], self.max_span_width)
        span_mask = band_span_mask(char_mask, width)
        start = self.start_projection(char_states)
        end = self.end_projection(char_states)
        rows = char_mask.nonzero(as_tuple=True)
        rows_per_chunk = max(1, len(rows[0])) if torch.is_grad_enabled() else self.INFERENCE_CHUNK_ROWS
        chunks = [
            self.row_logits(start, end, width, row_mask, (batch_index, position_index))
            for batch_index, position_index, row_mask in zip(
                rows[0].split(rows_per_chunk), rows[1].split(rows_per_chunk), span_mask[rows].split(rows_per_chunk)
            )
        ]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        return logits.new_zeros(span_mask.shape + logits.shape[-1:]).index_put(rows, logits), span_mask

    def row_logits(
        self,
        start: torch.Tensor,
        end: torch.Tensor,
        width: int,
        row_mask: torch.Tensor,
        rows: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """Logits (R, W, N) of the band rows starting at `rows` = (batch index, position index)."""
        biaffine = self.biaffine(start, end, width, rows)
        if self.local_attention is None:
            logits = self.classifier(biaffine)
        else:
            attended = self.local_attention(biaffine, row_mask)
            grouped = self.residual_norm(biaffine + attended)
            logits = self.classifier(biaffine + grouped)
        return logits if self.width_bias is None else logits + self.width_bias[:width]


# ---------------------------------------------------------------------------------------------------
# 4. Loss and decoding
# ---------------------------------------------------------------------------------------------------


def extension_label_weight(target_label_counts: list[int], extension_label_count: int) -> float:
    """alpha_i = 0.5 * C_hat / C_i (appendix G, eq. 20), capped at 1.

    C_hat is the mean count of the target labels, C_i the count of extension label i; frequent
    extension labels (POS tags, words) get small weights so they do not drown the targets.
    """
    if extension_label_count <= 0:
        raise ValueError("an extension label with no occurrences has no weight")
    mean_target = sum(target_label_counts) / len(target_label_counts) if target_label_counts else 0.0
    return min(1.0, 0.5 * mean_target / extension_label_count)


def span_label_grid(
    spans: list[list[tuple[int, int, int]]], length: int, width: int, num_labels: int
) -> torch.Tensor:
    """Multi-hot targets in the band layout: per row, spans as (start, end exclusive, label index).

    Returns (B, length, width, num_labels). A span wider than the band cannot be learnt, so it is an
    error here; callers choose `max_span_width` from their data.
    """
    grid = torch.zeros((len(spans), length, width, num_labels))
    for row, row_spans in enumerate(spans):
        for start, end, label in row_spans:
            if not 0 <= start < end <= length:
                raise ValueError(f"row {row}: span ({start}, {end}) outside 0..{length}")
            if end - start > width:
                raise ValueError(f"row {row}: span ({start}, {end}) is wider than the band width {width}")
            grid[row, start, end - start - 1, label] = 1.0
    return grid


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


@dataclass
class SpanCandidate:
    """A scored span in full-text character offsets."""

    start: int
    end: int
    label: int
    score: float


def spans_above(candidates: list[SpanCandidate], thresholds: list[float]) -> list[SpanCandidate]:
    """The candidates whose score reaches the threshold of their label (`thresholds[label index]`)."""
    return [candidate for candidate in candidates if candidate.score >= thresholds[candidate.label]]


def decode_spans(candidates: list[SpanCandidate], nested: bool) -> list[SpanCandidate]:
    """Greedy decoding by descending score.

    Flat: keep a span only if it overlaps no kept span. Nested: keep it unless it crosses a kept
    span (partial overlap) or repeats a kept span's offsets; nesting is allowed.
    """
    kept: list[SpanCandidate] = []
    for candidate in sorted(candidates, key=lambda span: (-span.score, span.start, span.end)):
        conflict = False
        for other in kept:
            overlap = candidate.start < other.end and other.start < candidate.end
            if not overlap:
                continue
            inside = other.start <= candidate.start and candidate.end <= other.end
            outside = candidate.start <= other.start and other.end <= candidate.end
            same = (candidate.start, candidate.end) == (other.start, other.end)
            if not nested or same or not (inside or outside):
                conflict = True
                break
        if not conflict:
            kept.append(candidate)
    return sorted(kept, key=lambda span: (span.start, -span.end))


# ---------------------------------------------------------------------------------------------------
# 5. The model
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
    base_model_prefix = "knowfree"
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
    (they have output channels and loss terms) but never predicted."""

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
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()

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
        model.tokenizer = AutoTokenizer.from_pretrained(encoder)
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args, **kwargs) -> "KnowFreeModel":
        """Load weights and config, plus the tokenizer saved beside them when there is one."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if kwargs.get("output_loading_info") else loaded
        hub_options = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
        tokenizer_kwargs = {key: kwargs[key] for key in hub_options if key in kwargs}
        try:
            model.tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, config=model.config, **tokenizer_kwargs)
        except (OSError, ValueError):
            model.tokenizer = None
        return loaded

    def save_pretrained(self, save_directory: str | Path, *args, **kwargs) -> None:
        """Save weights, config and remote code, and the tokenizer so `predict` works after loading."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

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
                raise ValueError("this model reads each character's own embedding: pass char_ids (collate_windows makes them)")
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
        **kwargs,
    ) -> KnowFreeOutput:
        """Span logits for every band cell; with `span_labels` (B, L, W, N) also the weighted loss.

        `synthetic` (B,) marks rows whose loss is scaled by beta (`config.synthetic_weight`).
        """
        char_states = self.encode_characters(input_ids, attention_mask, char_token_index, char_piece_start, char_piece_end, char_ids)
        span_logits, span_mask = self.span_head(char_states, char_mask)
        loss = None
        if span_labels is not None:
            if span_labels.shape != span_logits.shape:
                raise ValueError(f"span_labels has shape {tuple(span_labels.shape)}, expected {tuple(span_logits.shape)}")
            row_weights = torch.ones(span_logits.shape[0], device=span_logits.device)
            if synthetic is not None:
                row_weights = torch.where(synthetic.to(torch.bool), self.config.synthetic_weight, 1.0).to(row_weights)
            loss = span_loss(span_logits, span_labels, span_mask, self.label_weights().to(span_logits.dtype), row_weights, self.config.negative_weight)
        return KnowFreeOutput(loss=loss, span_logits=span_logits, span_mask=span_mask)

    # -- prediction ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(
        self,
        texts: str | list[str],
        batch_size: int = 8,
        threshold: float | None = None,
        decoding: str | None = None,
        max_tokens: int | None = None,
    ) -> list[dict] | list[list[dict]]:
        """Spans of target labels with character `start`, `end` (exclusive), `label`, `score`, `text`.

        A string gives a list of spans, a list of strings a list of such lists. Text longer than the
        encoder limit is read in overlapping windows and the spans merged, never truncated.
        `threshold` (one value for every label) defaults to the config's per-label thresholds, the
        ones calibrated on dev after training, and `decoding` ("flat"/"nested") to the config's.
        """
        single = isinstance(texts, str)
        batch_texts = [texts] if single else texts
        decoding = decoding or self.config.decoding
        if decoding not in ("flat", "nested"):
            raise ValueError(f"decoding must be 'flat' or 'nested', got {decoding!r}")
        thresholds = self.config.target_thresholds() if threshold is None else [threshold] * len(self.config.target_labels)
        candidates = self.span_candidates(batch_texts, batch_size, min(thresholds, default=1.0), max_tokens)
        results = []
        for text, text_candidates in zip(batch_texts, candidates):
            kept = decode_spans(spans_above(text_candidates, thresholds), nested=decoding == "nested")
            results.append(
                [
                    {
                        "start": span.start,
                        "end": span.end,
                        "label": self.config.target_labels[span.label],
                        "score": span.score,
                        "text": text[span.start : span.end],
                    }
                    for span in kept
                ]
            )
        return results[0] if single else results

    @torch.inference_mode()
    def span_candidates(
        self, texts: list[str], batch_size: int = 8, min_score: float = 0.5, max_tokens: int | None = None
    ) -> list[list[SpanCandidate]]:
        """Every band cell whose best target label scores at least `min_score`, before decoding, per text.

        `predict` filters these by the label thresholds and decodes them; threshold calibration scores
        the same candidates once and then tries many thresholds without running the model again.
        """
        if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
            raise TypeError("predict() takes a string or a list of strings")
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer: set model.tokenizer or save one beside the weights")
        was_training = self.training
        self.eval()
        try:
            windows = text_windows(list(texts), self.tokenizer, self.config, max_tokens)
            return self._candidates(windows, len(texts), batch_size, min_score)
        finally:
            self.train(was_training)

    def _candidates(
        self, windows: list[TextWindow], num_texts: int, batch_size: int, threshold: float
    ) -> list[list[SpanCandidate]]:
        """Best target label per band cell above the threshold, in full-text offsets, per text.

        Extension channels are sliced off before scoring, so they can never be predicted. Windows are
        batched in order of token count, which is what the encoder pads to (sorting by characters
        padded the Weibo test to 13% more tokens); the head computes only the rows of real
        characters, so uneven character counts in a batch cost it little.
        """
        candidates: list[list[SpanCandidate]] = [[] for _ in range(num_texts)]
        num_targets = len(self.config.target_labels)
        order = sorted(range(len(windows)), key=lambda index: (len(windows[index].token_ids), len(windows[index].text)))
        for batch_start in range(0, len(order), batch_size):
            batch_windows = [windows[index] for index in order[batch_start : batch_start + batch_size]]
            features = {key: value.to(self.device) for key, value in collate_windows(batch_windows, self.tokenizer).items()}
            output = self(**features)
            scores, labels = output.span_logits[..., :num_targets].sigmoid().max(-1)
            selected = (scores >= threshold) & output.span_mask
            rows, starts, widths = selected.nonzero(as_tuple=True)
            chosen_scores = scores[rows, starts, widths].tolist()
            chosen_labels = labels[rows, starts, widths].tolist()
            for row, start, width, score, label in zip(rows.tolist(), starts.tolist(), widths.tolist(), chosen_scores, chosen_labels):
                window = batch_windows[row]
                absolute_start = window.char_start + start
                if window.own_start <= absolute_start < window.own_end:
                    candidates[window.text_index].append(
                        SpanCandidate(absolute_start, absolute_start + width + 1, label, score)
                    )
        return candidates


KnowFreeConfig.register_for_auto_class()
KnowFreeModel.register_for_auto_class("AutoModel")

__all__ = ["KnowFreeModel", "KnowFreePreTrainedModel", "KnowFreeOutput"]
