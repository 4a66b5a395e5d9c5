"""The run's student with its LoRA adapter merged in, saved as a plain Hugging Face folder with a model card.

    folder = export_hf(cfg, Path("out/my-student"))   # loads with AutoModelForCausalLM.from_pretrained(folder)

The folder holds safetensors weights (fp32, as protege trains), the tokenizer with its chat template, the
generation config, README.md (card.py) and `adapter/`: the unmerged adapter with the tokenizer beside it and its
base named as protege resolves it on any machine (`bundled:...`, `hf:<hub id>`) instead of this machine's path.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from protege.store import atomic_write_text


class NotTrained(RuntimeError):
    """The run's train stage has not finished: there is nothing to export yet."""


def finished_stages(cfg) -> dict:
    from protege.pipeline import Pipeline

    stages = Pipeline(cfg, progress=False, echo=lambda m: None).stages
    if not stages["train"].complete:
        raise NotTrained(f"the train stage {stages['train'].path} of this config has not finished: run `protege run` "
                         "(or `protege train`) on the same config and overrides first")
    return stages


def export_hf(cfg, out: Path, name: str | None = None) -> Path:
    """Merge the adapter into the student and write the folder (atomically: a half-written export never shows)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from protege.export.card import model_card
    from protege.models.resolve import model_dir

    stages = finished_stages(cfg)
    adapter = stages["train"] / "adapter"
    base_dir = model_dir(cfg.train.student)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        tokenizer.save_pretrained(tmp)
        shutil.copytree(adapter, tmp / "adapter")
        tokenizer.save_pretrained(tmp / "adapter")
        config_path = tmp / "adapter" / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = cfg.train.student  # resolves through protege on another machine
        config_path.write_text(json.dumps(config, indent=2))
        card = model_card(cfg, stages, name or out.name)
        atomic_write_text(tmp / "README.md", card)
        atomic_write_text(tmp / "adapter" / "README.md", card)  # in place of PEFT's empty template
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an export is meant to be shared
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
