"""Skip markers shared by test modules (a module, not conftest: tests/cooperative has its own conftest, and two
modules named conftest cannot both be imported by name)."""
import pytest


def builtin_data_available() -> bool:
    from protege.tasks.spec import data_dir

    return (data_dir() / "trec" / "TREC_10.label").exists()


requires_data = pytest.mark.skipif(not builtin_data_available(),
                                   reason="built-in data sets not found: set PROTEGE_DATA (see README)")


def native_bf16() -> bool:
    from protege.models.precision import bf16_fast

    return bf16_fast("cpu")


requires_native_bf16 = pytest.mark.skipif(
    not native_bf16(), reason="this CPU has no native bf16 (AMX or AVX-512 BF16): bf16 runs emulated, too slowly "
                              "for a real model; the tiny-model bf16 tests still force the path")


def teachers_installed() -> bool:
    """`make teachers` has run: every chunk package of both Qwen2.5-Coder teachers is importable."""
    import importlib.util

    from protege.models.gguf_parts import QWEN_CODER_05B, QWEN_CODER_15B

    return all(importlib.util.find_spec(m) for m in QWEN_CODER_05B.modules + QWEN_CODER_15B.modules)


requires_teachers = pytest.mark.skipif(not teachers_installed(),
                                       reason="the Qwen2.5-Coder teachers are not installed: run `make teachers`")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="no GPU here (torch.cuda.is_available() is False): "
                                                                "scripts/gpu-check.sh runs these where one is")
