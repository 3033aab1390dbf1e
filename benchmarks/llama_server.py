"""llama-cpp-python's OpenAI-compatible server with ggml's extra CPU buffer types switched off.

The 0.3.36 build that `../shared/llm/serve.sh` installs segfaults on CPUs with AMX (Sapphire Rapids
and later, the Intel machines here): any prompt longer than one token goes through
`ggml_backend_amx_mul_mat`, which crashes (exit 139 on the first chat request). Passing
`--n_batch 1` avoids it by evaluating prompts one token at a time, which made a 1.5b entity request
take about two minutes. Turning off the extra buffer types (`use_extra_bufts`, the AMX and repacked
weight layouts) keeps batched prompt evaluation on the ordinary CPU kernels: same replies, normal
speed. Run it with the server's own Python, which has llama_cpp; every argument goes to the server:

    ~/.cache/knowfree-llm/venv/bin/python benchmarks/llama_server.py \\
        --model ~/.cache/knowfree-llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --model_alias qwen \\
        --n_threads 2 --n_ctx 8192 --host 127.0.0.1 --port 8011

This file imports nothing of knowfree: it runs in the LLM's virtual environment, not the project's.
"""

import runpy

import llama_cpp.llama_cpp as llama_library

default_model_params = llama_library.llama_model_default_params


def model_params_without_extra_buffers():
    """The library's defaults with `use_extra_bufts` off (read by `Llama.__init__` at load time)."""
    params = default_model_params()
    params.use_extra_bufts = False
    return params


llama_library.llama_model_default_params = model_params_without_extra_buffers

if __name__ == "__main__":
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
