"""benchmarks/llama_server.py without llama_cpp: a stand-in library module shows that the server's
model parameters come out with the extra (AMX) buffer types off and everything else left as it was."""

import importlib
import sys
import types
from dataclasses import dataclass

from conftest import REPO_ROOT


@dataclass
class StandInModelParams:
    use_extra_bufts: bool = True
    n_gpu_layers: int = 0
    use_mmap: bool = True


def test_the_server_loads_models_without_extra_buffer_types(monkeypatch):
    library = types.ModuleType("llama_cpp.llama_cpp")
    library.llama_model_default_params = lambda: StandInModelParams(n_gpu_layers=7)
    package = types.ModuleType("llama_cpp")
    package.llama_cpp = library
    monkeypatch.setitem(sys.modules, "llama_cpp", package)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_cpp", library)
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    monkeypatch.delitem(sys.modules, "llama_server", raising=False)

    importlib.import_module("llama_server")

    params = library.llama_model_default_params()  # what Llama.__init__ calls when it loads a model
    assert params == StandInModelParams(use_extra_bufts=False, n_gpu_layers=7, use_mmap=True)
