"""Adding a training method touches its own module and one line of train/registry.py. Shown here: the method
below lives in this test module, one `setitem` registers it, and the whole flow (config validation, train
stage, the eval stage that loads its adapter) runs it. The built-in methods are found through the same table."""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.train import registry
from protege.train.method import TrainJob
from tiny import write_tiny_config


class Untrained:
    """The smallest method: a fresh LoRA adapter (its B matrices start at zero), saved as it is."""

    name = "untrained"

    def train(self, job: TrainJob) -> dict:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(job.student.model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear"))
        model.save_pretrained(job.stage / "adapter")
        model.unload()  # hand the shared student back without the adapter layers
        return {"method": self.name, "rows": len(job.rows)}


def test_a_method_registered_in_one_line_runs_through_the_whole_flow(tmp_path, tiny_model_dir, tiny_task,
                                                                      monkeypatch):
    monkeypatch.setitem(registry.METHODS, "untrained", (f"{__name__}:Untrained", "nothing"))  # the one line
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train={"method": "untrained"}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("eval")
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    assert summary.pop("stage_seconds") >= 0  # the pipeline adds the stage's wall time to every summary
    assert summary == {"method": "untrained", "rows": len(pipe._curated_rows()) + len(pipe.spec.seed_examples())}
    rows = {r["row"]: r for r in json.loads((pipe.stages["eval"] / "results.json").read_text())["rows"]}
    # an adapter that adds zero changes nothing: the "fine-tuned" student scores as its zero-shot baseline
    assert rows["fine-tuned"]["accuracy"] == rows["baseline (zero-shot)"]["accuracy"]


def test_an_unknown_method_is_refused_with_the_registered_ones(tmp_path, tiny_model_dir, tiny_task):
    from protege.errors import ConfigError

    with pytest.raises(ConfigError, match="'sfd' is not a training method; choose one of sft, kd, dpo, rl"):
        load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, train={"method": "sfd"}))


def test_every_registered_method_meets_the_protocol():
    for name in registry.METHODS:
        m = registry.method(name)
        assert m.name == name and callable(m.train)
