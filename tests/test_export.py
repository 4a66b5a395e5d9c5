"""protege export: the merged folder loads with plain transformers and answers as the adapter does, its card
carries the run's measured scores, the adapter goes with its tokenizer and a portable base name, and the Ollama
Modelfile prompts a ChatML student as protege trained it."""
import json

import pytest
from typer.testing import CliRunner

from protege.cli import app
from protege.config import load_config
from protege.export.hf import export_hf
from protege.export.ollama import write_modelfile
from protege.models.base import GenerationConfig
from protege.pipeline import Pipeline
from tiny import write_tiny_config


@pytest.fixture()
def finished_run(tmp_path, tiny_model_dir, tiny_task):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"forgetting": {"tasks": []}})
    Pipeline(load_config(path), progress=False, echo=lambda m: None).run("eval")
    return path


@pytest.mark.precision("fp32")  # equal greedy tokens: one computation path
def test_the_merged_folder_answers_as_the_adapter_does(finished_run, tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from protege.evaluate.stage import load_finetuned
    from protege.models.local import LocalLM
    from protege.tasks.kinds import kind_of
    from protege.tasks.spec import load_task

    cfg = load_config(finished_run)
    folder = export_hf(cfg, tmp_path / "out" / "student")
    assert AutoModelForCausalLM.from_pretrained(str(folder)) is not None  # plain transformers, no peft
    spec = load_task(cfg.task)
    prompts = [kind_of(spec).prompt(spec, item) for item in spec.test_examples()]
    settings = GenerationConfig(max_new_tokens=8, temperature=0.0)
    exported = LocalLM.from_dir(folder, name="exported").generate(prompts, settings)
    adapter = load_finetuned(cfg.train.student, Pipeline(cfg).stages["train"] / "adapter").generate(prompts, settings)
    assert [g.text for g in exported] == [g.text for g in adapter]
    card = (folder / "README.md").read_text()
    assert "fine-tuned" in card and "baseline (zero-shot)" in card and "| accuracy | macro-F1 |" in card
    assert f"teacher | hf:{tiny_model_dir}" in card
    adapter_config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == f"hf:{tiny_model_dir}"
    assert (folder / "adapter" / "tokenizer.json").exists()


def test_exporting_an_untrained_run_says_what_to_run(tmp_path, tiny_model_dir, tiny_task):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    result = CliRunner().invoke(app, ["export", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "has not finished: run `protege run`" in result.output
    assert not (tmp_path / "out").exists()


def test_a_chatml_student_gets_its_template_in_the_modelfile(tmp_path):
    path = write_modelfile(tmp_path, "student-q8_0.gguf", "{{ '<|im_start|>' + m['role'] }}")
    text = path.read_text()
    assert "FROM ./student-q8_0.gguf" in text and '<|im_start|>assistant' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text
    other = write_modelfile(tmp_path / "g", "x.gguf", "<start_of_turn>user").read_text()
    assert "TEMPLATE" not in other and "template stored in the GGUF file" in other


def _llama_cpp_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.real_model
@pytest.mark.skipif(not _llama_cpp_installed(), reason="llama-cpp-python is not installed (pip install "
                                                       "'protege[bench]', or make bench)")
@pytest.mark.precision("fp32")
def test_the_real_model_as_gguf_answers_as_in_transformers(tmp_path):
    from llama_cpp import Llama

    from protege.export.gguf import export_gguf
    from protege.models.local import LocalLM
    from protege.models.resolve import DEFAULT_MODEL, model_dir
    from protege.tasks.kinds import kind_of
    from protege.tasks.spec import load_task

    from markers import builtin_data_available

    if not builtin_data_available():
        pytest.skip("built-in data sets not found")
    gguf = export_gguf(model_dir(DEFAULT_MODEL), tmp_path / "smollm2-f16.gguf", "f16")
    spec = load_task("trec6")
    prompts = [kind_of(spec).prompt(spec, item) for item in spec.test_examples()[:20]]
    hf = LocalLM.from_dir(model_dir(DEFAULT_MODEL), name="hf", precision="fp32")
    ours = [g.text.strip() for g in hf.generate(prompts, GenerationConfig(max_new_tokens=8, temperature=0.0,
                                                                         stop=["\n"]))]
    llm = Llama(model_path=str(gguf), n_ctx=1024, verbose=False, n_threads=2)
    theirs = [llm.create_completion(hf.render(p), temperature=0.0, max_tokens=8,
                                    stop=["\n", "<|im_end|>"])["choices"][0]["text"].strip() for p in prompts]
    agree = sum(a == b for a, b in zip(ours, theirs))
    assert agree >= 19, list(zip(ours, theirs))  # 95% of 20
