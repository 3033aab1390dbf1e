"""ONNX Runtime for KnowFREE: export the encoder and span head as one ONNX graph, and predict with it.

The graph takes `KnowFreeProcessor.encode`'s tensors and returns `forward`'s `span_logits` and
`span_mask`; everything around it (windows, character alignment, candidates, thresholds, decoding)
stays in the processor, so `KnowFreeOnnxModel.predict` returns the spans of `KnowFreeModel.predict`.

    model.export_onnx("my-model-onnx", quantize=True)      # or: knowfree-export-onnx --model M --output_dir D --quantize
    onnx_model = KnowFreeOnnxModel.from_pretrained("my-model-onnx")
    onnx_model.predict(["马云在杭州创办了阿里巴巴集团。"])

This file is remote code like `modeling_knowfree.py` (whose `export_onnx` imports it, so the Hub ships
it with the model), which is why onnx and onnxruntime are imported inside `try` blocks where they are
used: transformers skips those when it checks a remote file's imports, so loading the PyTorch model
never needs them. The export folder holds this file and the ones it imports, so it loads with
transformers' dynamic-module loader without the knowfree package installed.
"""

import argparse
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import cached_file

try:
    from .modeling_knowfree import KnowFreeLocalAttention, KnowFreeModel, band_span_mask, logit_of_score
    from .processing_knowfree import HUB_OPTIONS, KnowFreeProcessor, SpanCandidate
except ImportError:
    from modeling_knowfree import KnowFreeLocalAttention, KnowFreeModel, band_span_mask, logit_of_score
    from processing_knowfree import HUB_OPTIONS, KnowFreeProcessor, SpanCandidate

logger = logging.getLogger("knowfree.onnx")

ONNX_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"
OPSET = 18
OUTPUT_NAMES = ("span_logits", "span_mask")
MIN_LOGIT_INPUT = "min_logit"
"""The graph's last input, a float32 scalar: rows none of whose cells can reach it are skipped, as in
`KnowFreeSpanHead.forward`; -inf computes every row. Graphs exported before it existed lack it."""
TOKEN_INPUTS = ("input_ids", "attention_mask")
CHARACTER_INPUTS = ("char_token_index", "char_piece_start", "char_piece_end", "char_mask")
EXPORT_TEXTS = ("知识融合让低资源序列标注更准 KnowFREE", "跨度标注")
"""The sample the exporter traces: two texts of different lengths, none of size 0 or 1 on any axis,
so no axis is specialised to the sample."""
CHECK_TEXTS = ("北京大学的张老师去上海开会。", "马云", "Hello world 你好世界 2024年，我爱北京天安门")
"""Shapes unlike the sample's: an exported graph that baked a sample size in fails on them."""
CHECK_TOLERANCE = 1e-3
QUANTIZED_PARTS = ("encoder", "all")
"""What `export_onnx(quantize=...)` makes int8; "encoder" is what `quantize=True` means. Measured side
by side (benchmarks/README.md, "ONNX Runtime int8", `benchmarks/onnx_int8.py`), per-channel weights,
test F1 and throughput over the fp32 graph: Weibo 0.5809 (fp32) -> 0.5776 at 1.35x (encoder) /
0.5784 at 1.39x (all); Resume (a 10-shot model) 0.7398 -> 0.7294 at 1.51x / 0.7299 at 1.54x. The two
tie within the noise (one span in F1, a few percent in speed): the F1 is lost in the encoder (int8 in
the head alone moves logits by 0.3, in the encoder alone by 8), and the head's int8 MatMuls save
little time, their activations being quantized on the fly. The default keeps the head float32: no
error added there. Per-tensor weights are no faster and lose more (Weibo 0.5543, Resume 0.7273).
Dynamic int8 takes activation ranges per batch, so its F1 moves with the batching (Weibo 0.559 to
0.578)."""
PROTOBUF_LIMIT = 2**31
"""A graph whose weights pass ONNX's 2 GiB protobuf limit keeps them in an external data file."""


def onnx_input_names(model: KnowFreeModel) -> tuple[str, ...]:
    """The graph's inputs: `encode`'s tensors that this model's `forward` reads."""
    needs_char_ids = model.character_projection is not None
    return TOKEN_INPUTS + CHARACTER_INPUTS + (("char_ids",) if needs_char_ids else ())


# ---------------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------------


def neighbour_attention(attention: KnowFreeLocalAttention, spans: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
    """`KnowFreeLocalAttention` (eqs. 11-15) on the module's weights, written for a symbolic band width.

    The module cuts a row into blocks whose size depends on the width, which an exporter can only
    fix to the sample's width. Here each cell scores its 2w + 1 neighbours directly: the keys and
    values are the row shifted by -w..w cells (zero-padded), non-span neighbours are masked as in the
    module, so every span cell gets the module's output. Input (R, W, D~) and mask (R, W); output
    (R, W, D~).
    """
    rows, width, hidden = spans.shape
    reach = 2 * attention.window + 1
    weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight])
    query, key, value = F.linear(spans, weight).view(rows, width, 3, attention.heads, attention.head_size).unbind(2)
    key = F.pad(key, (0, 0, 0, 0, attention.window, attention.window))
    value = F.pad(value, (0, 0, 0, 0, attention.window, attention.window))
    key_is_span = F.pad(span_mask, (attention.window, attention.window), value=False)
    scores = torch.stack([(query * key[:, shift : shift + width]).sum(-1) for shift in range(reach)], -1)
    near = torch.stack([key_is_span[:, shift : shift + width] for shift in range(reach)], -1)
    scores = scores.div(math.sqrt(attention.head_size)).masked_fill(~near[:, :, None, :], torch.finfo(spans.dtype).min)
    weights = scores.softmax(-1)
    attended = sum(weights[..., shift, None] * value[:, shift : shift + width] for shift in range(reach))
    return attention.norm(attended.reshape(rows, width, hidden))


class KnowFreeOnnxGraph(nn.Module):
    """What the ONNX file computes: `KnowFreeModel.forward` without the loss, on the model's own
    modules, in a form whose batch, token and character axes stay symbolic.

    Two things differ from `KnowFreeSpanHead.forward`, neither in value: the rows of real characters
    (NonZero of `char_mask`, as forward selects them) go through in one piece, not in chunks, and local
    attention is `neighbour_attention`. Logits of cells outside `span_mask`, which never become spans,
    may differ. The rows that cannot reach `min_logit` are skipped as forward skips them
    (`KnowFreeSpanHead.rows_reaching`) and hold the lowest float; with -inf every row is computed.
    Inputs: the tensors named by `onnx_input_names(model)`, in that order (`encode` makes them), then
    `min_logit` (a float32 scalar); outputs: `span_logits` (B, L, W, N) and `span_mask` (B, L, W).
    """

    def __init__(self, model: KnowFreeModel):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *inputs, min_logit = inputs
        named = dict(zip(onnx_input_names(self.model), inputs))
        char_mask = named.pop("char_mask")
        head = self.model.span_head
        states = self.model.encode_characters(**named)
        length = char_mask.shape[1]
        if head.max_span_width is None:
            width = length
        elif isinstance(length, torch.Tensor):  # the TorchScript tracer hands sizes out as tensors
            width = length.clamp(max=head.max_span_width)
        else:
            width = torch.sym_min(head.max_span_width, length)
        span_mask = band_span_mask(char_mask, width)
        rows = char_mask.nonzero(as_tuple=True)
        start, end = head.start_projection(states), head.end_projection(states)
        rows = head.rows_reaching(start, end, width, span_mask, rows, min_logit, rows_per_chunk=None)
        band_ends = head.biaffine.band_ends(end, width)
        biaffine = head.biaffine(start, band_ends, width, rows)
        features = biaffine
        if head.local_attention is not None:
            attended = neighbour_attention(head.local_attention, biaffine, span_mask[rows])
            features = biaffine + head.residual_norm(biaffine + attended)
        logits = head.classifier(features)
        if head.width_bias is not None:
            logits = logits + head.width_bias[:width]
        fill = torch.where(torch.isinf(min_logit) & (min_logit < 0), 0.0, torch.finfo(logits.dtype).min)
        return logits.new_zeros(span_mask.shape + logits.shape[-1:]).add_(fill).index_put(rows, logits), span_mask


# ---------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------


def _export_graph(model: KnowFreeModel, path: Path, exporter: str) -> None:
    """Write the graph to `path` with the "dynamo" (`torch.export`) or the "torchscript" exporter."""
    graph = KnowFreeOnnxGraph(model).eval()
    names = onnx_input_names(model)
    processor = model.require_processor()
    sample = processor(list(EXPORT_TEXTS))
    args = tuple(sample[name].to(model.device) for name in names) + (torch.tensor(-math.inf, device=model.device),)
    if exporter == "torchscript":
        axes = {name: {0: "batch", 1: "tokens" if name in TOKEN_INPUTS else "characters"} for name in names}
        axes["span_logits"] = axes["span_mask"] = {0: "batch", 1: "characters", 2: "width"}
        torch.onnx.export(
            graph, args, path, input_names=(*names, MIN_LOGIT_INPUT), output_names=OUTPUT_NAMES, opset_version=OPSET, dynamo=False, dynamic_axes=axes,
        )
        return
    # the longest window the processor makes: the encoder's position table allows no more
    longest = processor.max_tokens + len(processor.frame.prefix) + len(processor.frame.suffix)
    batch, tokens, characters = torch.export.Dim("batch"), torch.export.Dim("tokens", max=longest), torch.export.Dim("characters")
    shapes = (tuple({0: batch, 1: tokens if name in TOKEN_INPUTS else characters} for name in names) + (None,),)  # one entry: forward's *inputs
    external_data = sum(parameter.numel() * parameter.element_size() for parameter in model.parameters()) >= PROTOBUF_LIMIT
    torch.onnx.export(
        graph, args, path, input_names=(*names, MIN_LOGIT_INPUT), output_names=OUTPUT_NAMES, opset_version=OPSET,
        dynamo=True, dynamic_shapes=shapes, external_data=external_data, verbose=False,
    )


def character_side_nodes(path: Path) -> list[str]:
    """Names of the nodes of the graph at `path` that read the values of a character input, directly
    or through other nodes: the character gather, the span head and its projections. The others read
    the tokens' values alone, and are the encoder. Found from the data flow, not from node names,
    which each exporter spells its own way (ONNX lists a graph's nodes in topological order). Sizes
    do not count: the exporter may take the batch size an encoder Reshape needs from `char_mask`."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError("reading an ONNX graph needs onnx: pip install 'knowfree[onnx]'") from error

    reads_characters = set(CHARACTER_INPUTS) | {"char_ids"}
    names = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type not in ("Shape", "Size") and reads_characters.intersection(node.input):
            reads_characters.update(node.output)
            names.append(node.name)
    return names


def bound_side_nodes(path: Path) -> list[str]:
    """Names of the nodes of the graph at `path` that only serve the row bounds: every path from them to
    an output passes through the comparison with `min_logit`. They stay float32 in an int8 graph, so
    the bounds still bound the logits and skipping stays exact."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError("reading an ONNX graph needs onnx: pip install 'knowfree[onnx]'") from error

    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = list(graph.node)
    producer = {output: node for node in nodes for output in node.output}
    comparisons = {id(node) for node in nodes if MIN_LOGIT_INPUT in node.input}

    def ancestors(outputs: list[str], stop: set[int]) -> set[int]:
        found, pending = {}, [producer[name] for name in outputs if name in producer]
        while pending:
            node = pending.pop()
            if id(node) in found or id(node) in stop:
                continue
            found[id(node)] = node
            pending.extend(producer[name] for name in node.input if name in producer)
        return set(found)

    feeds_outputs = ancestors([output.name for output in graph.output], stop=comparisons)
    feeds_bounds = ancestors([name for node in nodes if id(node) in comparisons for name in node.input], stop=set())
    return [node.name for node in nodes if id(node) in feeds_bounds - feeds_outputs]


def quantize_graph(source: Path, target: Path, part: str = "encoder", per_channel: bool = True) -> None:
    """Write `source` with int8 weights to `target` (`onnxruntime.quantization.quantize_dynamic`:
    the MatMuls with a constant weight and the embedding Gathers), either `part` "all" of them but the
    row bounds' (`bound_side_nodes`) or the "encoder"'s alone, the head staying float32;
    `per_channel` gives every output column of a weight its own scale instead of one per matrix."""
    try:
        from onnxruntime.quantization import quantize_dynamic
    except ImportError as error:
        raise ImportError("int8 graphs need onnxruntime: pip install 'knowfree[onnx]'") from error
    if part not in QUANTIZED_PARTS:
        raise ValueError(f"the int8 part must be one of {QUANTIZED_PARTS}, got {part!r}")
    # the bounds' weight-only products (W_O pushed through the biaffine) read no character input,
    # but they are the head's, and a quantized weight they share with a float node breaks the quantizer
    excluded = bound_side_nodes(source) + (character_side_nodes(source) if part == "encoder" else [])
    excluded += [f"{name}_MatMul" for name in excluded]  # the quantizer first turns Gemm X into MatMul X_MatMul
    external_data = source.with_name(f"{source.name}.data").exists()
    quantize_dynamic(source, target, per_channel=per_channel, nodes_to_exclude=excluded, use_external_data_format=external_data)


def export_onnx(model: KnowFreeModel, directory: str | Path, quantize: bool | str = False, dynamo: bool = True) -> Path:
    """Write `directory` for `KnowFreeOnnxModel.from_pretrained` and return it.

    It holds `model.onnx` (opset 18; batch, token and character axes symbolic), with `quantize` also
    `model_quantized.onnx` (for CPUs: int8 weights per output channel in the "encoder" alone, which
    True means, or in "all" the graph; `quantize_graph`, `QUANTIZED_PARTS` for the measurements),
    the processor's tokenizer and config, and the remote-code files.

    The dynamo exporter (`torch.export`) is tried first, the TorchScript one after it fails or when
    `dynamo` is False. Each graph is run on texts shaped unlike the traced sample and compared with
    the PyTorch model; a graph that fails or differs by more than `CHECK_TOLERANCE` counts as a
    failed export, since an exporter that fixed a sample size in the graph still reports success.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("ONNX export needs onnx and onnxruntime: pip install 'knowfree[onnx]'") from error
    part = "encoder" if quantize is True else quantize
    if part and part not in QUANTIZED_PARTS:  # before the export, which takes a while
        raise ValueError(f"quantize must be True, False or one of {QUANTIZED_PARTS}, got {quantize!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    processor = model.require_processor()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the check runs beside PyTorch, on its thread budget
    failures = []
    was_training = model.training
    model.eval()
    try:
        for exporter in ("dynamo", "torchscript") if dynamo else ("torchscript",):
            try:
                _export_graph(model, directory / ONNX_FILE, exporter)
                exported = KnowFreeOnnxModel.from_pretrained(directory, session_options=options, processor=processor)
                difference = max_logit_difference(model, exported, list(CHECK_TEXTS))
            except Exception as error:  # exporters and sessions raise many error types; each one is a failed export
                failures.append(f"{exporter}: {type(error).__name__}: {error}")
                continue
            if difference <= CHECK_TOLERANCE:
                break
            failures.append(f"{exporter}: logits differ from PyTorch's by {difference:.2e}")
        else:
            raise RuntimeError("ONNX export failed:\n" + "\n".join(failures))
        for failure in failures:
            logger.warning("ONNX export, %s; the next exporter is used", failure)
        logger.info("exported %s with the %s exporter (opset %d): max |logit difference| %.2e", directory / ONNX_FILE, exporter, OPSET, difference)
        if part:
            quantize_graph(directory / ONNX_FILE, directory / QUANTIZED_FILE, part)
            quantized = KnowFreeOnnxModel.from_pretrained(directory, QUANTIZED_FILE, session_options=options, processor=processor)
            difference = max_logit_difference(model, quantized, list(CHECK_TEXTS))
            logger.info("int8 graph %s (%s): max |logit difference| %.2e", directory / QUANTIZED_FILE, part, difference)
    finally:
        model.train(was_training)
    processor.save_pretrained(directory)
    custom_object_save(KnowFreeOnnxModel, directory)
    return directory


# ---------------------------------------------------------------------------------------------------
# Prediction with ONNX Runtime
# ---------------------------------------------------------------------------------------------------


class KnowFreeOnnxModel:
    """An exported KnowFREE model run by ONNX Runtime, with `KnowFreeModel`'s `predict` and
    `span_candidates` (same arguments, same results). No PyTorch weights are loaded; torch still
    carries the processor's tensors to and from the session.
    """

    def __init__(self, session: "onnxruntime.InferenceSession", processor: KnowFreeProcessor):  # noqa: F821 (imported where used)
        self.session = session
        self.processor = processor
        self.input_names = [node.name for node in session.get_inputs()]

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        file_name: str = ONNX_FILE,
        providers: list[str] | None = None,
        session_options: "onnxruntime.SessionOptions | None" = None,  # noqa: F821 (imported where used)
        processor: KnowFreeProcessor | None = None,
        **hub_kwargs,
    ) -> "KnowFreeOnnxModel":
        """Load an export folder or Hub repo: `file_name` (`model_quantized.onnx` for the int8 graph)
        in an `onnxruntime.InferenceSession` (CPU unless `providers` says otherwise), and the
        processor saved beside it unless one is given. `hub_kwargs` are the processor's `HUB_OPTIONS`."""
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("KnowFreeOnnxModel needs onnxruntime: pip install 'knowfree[onnx]'") from error
        unknown = sorted(set(hub_kwargs) - set(HUB_OPTIONS))
        if unknown:
            raise TypeError(f"KnowFreeOnnxModel.from_pretrained got unexpected options {unknown}")
        path = cached_file(pretrained_model_name_or_path, file_name, **hub_kwargs)
        # weights past the protobuf limit sit in a .data file that onnxruntime reads from beside the graph
        cached_file(pretrained_model_name_or_path, f"{file_name}.data", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        session = onnxruntime.InferenceSession(path, sess_options=session_options, providers=providers or ["CPUExecutionProvider"])
        if processor is None:
            processor = KnowFreeProcessor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return cls(session, processor)

    def run(self, inputs: dict[str, torch.Tensor], min_score: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode`'s tensors -> (`span_logits`, `span_mask`), as `KnowFreeModel.forward` returns them
        (with `min_score`, rows that cannot reach it are skipped, as forward skips them)."""
        feed = {name: inputs[name].numpy() for name in self.input_names if name != MIN_LOGIT_INPUT}
        if MIN_LOGIT_INPUT in self.input_names:
            min_logit = logit_of_score(min_score)
            feed[MIN_LOGIT_INPUT] = torch.tensor(-math.inf if min_logit is None else min_logit, dtype=torch.float32).numpy()
        span_logits, span_mask = self.session.run(list(OUTPUT_NAMES), feed)
        return torch.from_numpy(span_logits), torch.from_numpy(span_mask)

    def span_candidates(
        self, texts: list[str], batch_size: int = 8, min_score: float = 0.5, max_tokens: int | None = None, show_progress_bar: bool = False,
        time_limit: float | None = None,
    ) -> list[list[SpanCandidate]]:
        """Every band cell whose best target label scores at least `min_score`, per text (see
        `KnowFreeModel.span_candidates`)."""
        return self.processor.span_candidates(
            texts, lambda inputs: self.run(inputs, min_score), batch_size, min_score, max_tokens, show_progress_bar, time_limit
        )

    # `KnowFreeModel.predict` itself: it reads texts, thresholds and decoding, then calls
    # `self.span_candidates` and the processor, which is all this class has to provide
    predict = KnowFreeModel.predict

    def require_processor(self) -> KnowFreeProcessor:
        """The processor saved beside the graph (`predict` asks for it as the PyTorch model's does)."""
        return self.processor


def max_logit_difference(model: KnowFreeModel, onnx_model: KnowFreeOnnxModel, texts: list[str], batch_size: int = 8, max_tokens: int | None = None) -> float:
    """Largest |PyTorch - ONNX Runtime| logit over the span cells of `texts`' windows (the cells that
    can become spans; see `KnowFreeOnnxGraph` for the others), `model` in eval mode, batches as
    `predict` makes them. Raises when the span masks differ."""
    processor = model.require_processor()
    largest = 0.0
    with torch.inference_mode():
        for batch in processor.batches(processor.windows(texts, max_tokens), batch_size):
            inputs = processor.encode(batch)
            output = model(**{key: value.to(model.device) for key, value in inputs.items()})
            span_logits, span_mask = onnx_model.run(inputs)
            if not torch.equal(span_mask, output.span_mask.cpu()):
                raise ValueError(f"the ONNX span mask {tuple(span_mask.shape)} differs from PyTorch's {tuple(output.span_mask.shape)}")
            largest = max(largest, (span_logits - output.span_logits.cpu()).abs()[span_mask].max().item())
    return largest


# ---------------------------------------------------------------------------------------------------
# knowfree-export-onnx
# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`knowfree-export-onnx --model M --output_dir D [--quantize [encoder|all]] [--torchscript]`."""
    parser = argparse.ArgumentParser(prog="knowfree-export-onnx", description="Export a KnowFREE model to ONNX Runtime.")
    parser.add_argument("--model", required=True, help="a saved model folder or Hub repo id")
    parser.add_argument("--output_dir", required=True, help="the folder to write (model.onnx, tokenizer, config, code)")
    parser.add_argument(
        "--quantize", nargs="?", const="encoder", default=False, choices=QUANTIZED_PARTS,
        help="also write model_quantized.onnx with int8 weights (per output channel) in the encoder alone (the default: "
        "Weibo test F1 0.5809 -> 0.5776 at 1.35x the fp32 graph's throughput) or in all the graph (0.5784 at 1.39x; a tie)",
    )
    parser.add_argument("--torchscript", action="store_true", help="use the TorchScript exporter instead of dynamo")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = KnowFreeModel.from_pretrained(arguments.model)
    export_onnx(model, arguments.output_dir, quantize=arguments.quantize, dynamo=not arguments.torchscript)
    print(Path(arguments.output_dir).resolve())
    return 0


__all__ = ["KnowFreeOnnxGraph", "KnowFreeOnnxModel", "export_onnx", "max_logit_difference", "quantize_graph"]
