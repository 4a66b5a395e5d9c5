"""experiments/specialist.py: a model tuned on a task's own human-written training rows, saved to load as hf:DIR."""
import copy
import json

import pytest

from protege.config import TrainConfig
from protege.lab.experiments.specialist import make_specialist, training_rows


def _task(folder):
    """A math task whose seeds (rows :2) and validation (2:4) come from one train file of 8 rows."""
    folder.mkdir(parents=True)
    rows = [{"q": f"What is {i} + 1 ?", "a": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(8)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "test.jsonl").write_text(json.dumps({"q": "What is 9 + 1 ?", "a": "#### 10"}) + "\n")
    (folder / "task.yaml").write_text(
        "name: tinymath\nkind: math\ndescription: Solve the problem.\n"
        "seeds: {path: train.jsonl, rows: ':2', fields: {text: q, answers: a}}\n"
        "validation: {path: train.jsonl, rows: '2:4', fields: {text: q, answers: a}}\n"
        "test: {path: test.jsonl, fields: {text: q, answers: a}}\n")
    return str(folder / "task.yaml")


def test_rows_that_are_seeds_or_validation_items_are_refused(tmp_path):
    task = _task(tmp_path / "task")
    assert [r["text"] for r in training_rows(task, "4:8")] == [f"What is {i} + 1 ?" for i in range(4, 8)]
    with pytest.raises(SystemExit, match="seeds or validation"):
        training_rows(task, "3:6")


def test_the_specialist_is_a_merged_model_that_loads_and_differs_from_its_base(tmp_path, tiny_model_dir):
    import torch

    from protege.models.resolve import load_lm

    task = _task(tmp_path / "task")
    out = tmp_path / "specialist"
    train = TrainConfig(student=f"hf:{tiny_model_dir}", epochs=2, lr=1e-2, batch_size=2, lora_rank=4,
                        lora_alpha=8, include_seeds=False)
    record = make_specialist(task, "4:8", out, f"hf:{tiny_model_dir}", train, progress=False)
    assert record["examples"] == 4 and json.loads((out / "specialist.json").read_text())["rows"] == "4:8"
    tuned, base = load_lm(f"hf:{out}"), load_lm(f"hf:{tiny_model_dir}")
    assert not any("lora" in name for name, _ in tuned.model.named_parameters())  # merged, a plain model
    diffs = [not torch.equal(a, b) for a, b in zip(tuned.model.state_dict().values(), base.model.state_dict().values())]
    assert any(diffs)
    from peft import PeftModel  # the merged weights compute what the base with the trained adapter computes

    with_adapter = PeftModel.from_pretrained(copy.deepcopy(base.model), str(out / "train-lora" / "adapter")).eval()
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    with torch.no_grad():
        assert torch.allclose(tuned.model(ids).logits, with_adapter(ids).logits, atol=1e-4)
