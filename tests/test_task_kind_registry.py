"""Task kinds have one home each: the built-ins implement the TaskKind protocol, and a new kind is its own
module plus one registry line (tests/echo_kind.py runs through the whole pipeline)."""
import inspect
import json

import pytest

from protege.config import load_config
from protege.errors import ConfigError
from protege.pipeline import Pipeline
from protege.tasks.kinds import kind_named
from protege.tasks.kinds.protocol import TaskKind
from protege.tasks.kinds.registry import KINDS
from protege.tasks.spec import load_task
from tiny import write_tiny_config


def protocol_members() -> dict[str, object]:
    """Every name a kind must have: attributes (annotations) and methods, with the methods' signatures."""
    members = {name: None for name in TaskKind.__annotations__}
    members.update({name: inspect.signature(fn) for name, fn in vars(TaskKind).items()
                    if inspect.isfunction(fn) and not name.startswith("_")})
    return members


@pytest.mark.parametrize("name", list(KINDS))
def test_every_builtin_kind_has_every_protocol_name_with_its_parameters(name):
    kind = kind_named(name)
    assert isinstance(kind, TaskKind)
    assert kind.NAME == name
    for member, signature in protocol_members().items():
        assert hasattr(kind, member), f"{name} lacks {member}"
        if signature is not None:
            wanted = [p for p in signature.parameters if p != "self"]
            got = list(inspect.signature(getattr(kind, member)).parameters)
            assert len(got) == len(wanted), f"{name}.{member}{got}: the protocol has {wanted}"
    assert kind.METRICS and set(kind.METRICS) >= {k for k, _ in kind.COLUMNS} - set(kind.SECONDARY_METRICS)


def test_a_kind_missing_a_name_is_not_a_task_kind():
    class Partial:
        NAME = "partial"

    assert not isinstance(Partial(), TaskKind)


def test_an_unknown_kind_names_the_registered_ones(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\nkind: poetry\ndescription: d\nseeds: []\ntest: {path: t.yaml}\n")
    with pytest.raises(ConfigError) as e:
        load_task(str(tmp_path / "t.yaml"))
    assert "kind" in str(e.value) and "classification, extraction, qa, math, code" in str(e.value)


def write_echo_task(folder):
    folder.mkdir(parents=True, exist_ok=True)
    words = ["apple", "river", "stone", "cloud", "ember", "maple"]
    (folder / "test.jsonl").write_text("".join(json.dumps({"text": w}) + "\n" for w in words))
    (folder / "task.yaml").write_text(
        "name: echo\nkind: echo\ndescription: Say the word back.\n"
        "seeds:\n  - {text: lantern}\n  - {text: harbor}\n  - {text: violet}\n"
        "test: {path: test.jsonl}\n")
    return folder / "task.yaml"


def test_a_new_kind_is_its_module_plus_one_registry_line(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(KINDS, "echo", "echo_kind:ECHO")  # the one line; echo_kind.py is the module
    spec = load_task(str(write_echo_task(tmp_path / "task")))
    assert spec.headline_metric == "exact_match" and len(spec.test_examples()) == 6
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tmp_path / "task" / "task.yaml"))
    pipe = Pipeline(cfg, progress=False, echo=lambda *_: None)
    pipe.run("report")
    curation = json.loads((pipe.stages["curate"] / "curation.json").read_text())
    assert curation["input"] == 8 and curation["kept"] > 0
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert results["kind"] == "echo" and results["metric"] == "exact_match"
    assert [r["row"] for r in results["rows"]] == ["baseline (zero-shot)", "baseline (few-shot)", "fine-tuned",
                                                   "teacher (few-shot)"]
    assert all(r["n"] == 6 and 0 <= r["exact_match"] <= 1 for r in results["rows"])
    report = (pipe.stages["report"] / "report.md").read_text()
    assert "| said back |" in report  # the kind's own column
