"""docs/baselines.md holds one section per model: measuring a model adds or replaces its own section only, and
--card puts the full HumanEval/MBPP scores next to the model card's."""
import protege.evaluate.baselines_doc as doc
from markers import requires_data


def fake_result(model, spec, shots=0, limit=None, **_):
    value = 0.5 if limit is None else 0.25
    return {"task": spec.name, "kind": spec.kind, "metric": spec.headline_metric, "shots": shots,
            "test_items": limit or 164, "git": "abc", "date": "2026-12-02", "versions": {},
            "summary": {spec.headline_metric: value, f"{spec.headline_metric}_ci": [value - 0.1, value + 0.1],
                        "tokens_in_mean": 10.0, "tokens_out_mean": 5.0}}


@requires_data  # the specs of humaneval and mbpp are loaded (their items are not scored here)
def test_each_model_has_its_own_section_and_prose_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(doc, "evaluate_model", fake_result)
    out = tmp_path / "baselines.md"
    out.write_text("# Baselines\n\nWritten by a person.\n")
    for model in ("bundled:smollm2-135m-instruct", "bundled:qwen2.5-coder-0.5b-instruct"):
        doc.write_baselines(model, out, ["humaneval"], 100, str(tmp_path), f"protege baselines --model {model}",
                            echo=lambda *_: None)
    first = out.read_text()
    assert first.startswith("# Baselines\n\nWritten by a person.\n")
    assert first.count("protege:baselines bundled:smollm2-135m-instruct start") == 1
    assert first.count("protege:baselines bundled:qwen2.5-coder-0.5b-instruct start") == 1
    doc.write_baselines("bundled:qwen2.5-coder-0.5b-instruct", out, ["humaneval"], 100, str(tmp_path), "again",
                        card=True, echo=lambda *_: None)
    second = out.read_text()
    assert second.split("protege:baselines bundled:qwen")[0] == first.split("protege:baselines bundled:qwen")[0]
    assert "Reproduce with `again`" in second and second.count("protege:baselines bundled:qwen2.5-coder-0.5b"
                                                                "-instruct start") == 1
    # the card table: every item zero-shot (164 here), next to the published 61.6
    assert "| humaneval | 164 | 50.0 [40.0, 60.0] | 61.6 | -11.6 |" in second
    assert "| mbpp | 164 | 50.0 [40.0, 60.0] | 52.4 | -2.4 |" in second


def test_a_model_without_published_numbers_cannot_ask_for_the_card(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setattr(doc, "evaluate_model", fake_result)
    with pytest.raises(ValueError, match="no published numbers"):
        doc.run_card("hf:some/model", str(tmp_path), echo=lambda *_: None)


@requires_data
def test_card_only_scores_the_card_tasks_in_full_and_nothing_else(tmp_path, monkeypatch):
    calls = []

    def recorded(model, spec, shots=0, limit=None, **kw):
        calls.append((spec.name, shots, limit))
        return fake_result(model, spec, shots, limit, **kw)

    monkeypatch.setattr(doc, "evaluate_model", recorded)
    out = tmp_path / "baselines.md"
    doc.write_baselines("bundled:qwen2.5-coder-1.5b-instruct", out, None, 100, str(tmp_path),
                        "protege baselines --model bundled:qwen2.5-coder-1.5b-instruct --card-only", echo=lambda *_: None,
                        card_only=True)
    assert calls == [("humaneval", 0, None), ("mbpp", 0, None)]
    text = out.read_text()
    assert "| humaneval | 164 | 50.0 [40.0, 60.0] | 70.7 | -20.7 |" in text
    assert "| task | kind | metric | shots |" not in text and "Measured on: git abc, 2026-12-02" in text


@requires_data
def test_card_only_with_tasks_scores_only_those_of_the_card(tmp_path, monkeypatch):
    import pytest

    calls = []
    monkeypatch.setattr(doc, "evaluate_model", lambda model, spec, **kw: calls.append(spec.name) or fake_result(
        model, spec, **kw))
    out = tmp_path / "baselines.md"
    doc.write_baselines("bundled:qwen2.5-coder-0.5b-instruct", out, ["humaneval"], 100, str(tmp_path), "cmd",
                        echo=lambda *_: None, card_only=True)
    assert calls == ["humaneval"] and "| humaneval | 164 |" in out.read_text() and "| mbpp |" not in out.read_text()
    with pytest.raises(ValueError, match="scores only humaneval, mbpp"):
        doc.write_baselines("bundled:qwen2.5-coder-0.5b-instruct", out, ["trec6"], 100, str(tmp_path), "cmd",
                            echo=lambda *_: None, card_only=True)


@requires_data
def test_limited_cells_and_card_table_are_rewritten_only_by_the_run_that_measures_them(tmp_path, monkeypatch):
    """A run of limited cells on a machine without the card's finished cells keeps the card table (its own section),
    and goes above it; a card run keeps the limited cells."""
    monkeypatch.setattr(doc, "evaluate_model", fake_result)
    model, out = "bundled:qwen2.5-coder-0.5b-instruct", tmp_path / "baselines.md"
    out.write_text("# Baselines\n")
    doc.write_baselines(model, out, None, 100, str(tmp_path), "card run", echo=lambda *_: None, card_only=True)
    out.write_text(out.read_text() + "\nA person's reading of the card rows.\n")
    doc.write_baselines(model, out, ["trec6"], 100, str(tmp_path), "cells run", echo=lambda *_: None)
    text = out.read_text()
    cells, card = text.index("protege:baselines bundled:qwen"), text.index("protege:baselines-card bundled:qwen")
    assert cells < card < text.index("A person's reading")
    assert "| trec6 | classification |" in text and "| humaneval | 164 | 50.0 [40.0, 60.0] | 61.6 | -11.6 |" in text
    assert "Reproduce with `card run`" in text and "Reproduce with `cells run`" in text
    doc.write_baselines(model, out, None, 100, str(tmp_path), "card again", echo=lambda *_: None, card_only=True)
    again = out.read_text()
    assert "| trec6 | classification |" in again and "Reproduce with `card again`" in again
    assert again.count("| humaneval | 164 |") == 1 and "A person's reading" in again
