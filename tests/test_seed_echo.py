"""Seed echo: generated items that repeat a seed's passage or input are counted, and when they are common the
curate stage and the run report say what to change."""
import json

from protege.config import CurateConfig
from protege.report import render_markdown
from protege.store import StageDir
from protege.synth.curate import run_curate
from protege.synth.seed_echo import seed_echo
from protege.tasks.spec import DataSource, Example, TaskSpec

PASSAGES = ["The Nile flows north through Egypt into the Mediterranean Sea.",
            "Force is any interaction that, when unopposed, will change the motion of an object."]
SQUAD_LIKE = TaskSpec(name="rc", kind="qa", description="d", test=DataSource(path="unused.jsonl"),
                      seeds=[Example(text="Where does the Nile flow?", context=PASSAGES[0], answers=["north"]),
                             Example(text="What changes motion?", context=PASSAGES[1], answers=["Force"])])


def item(i, context, question="What is it?", answer="it", ok=True):
    return {"id": f"gen-{i}", "text": question, "context": context, "answers": [answer], "ok": ok,
            "raw": "", "teacher": "t", "tokens_in": 1, "tokens_out": 1}


def test_copied_passages_are_counted_as_curation_normalises_text_and_a_common_echo_gets_a_notice():
    copied = [item(i, PASSAGES[i % 2].upper().replace(" ", "  ")) for i in range(3)]
    new = [item(3, "A new passage about the Danube, which flows east.")]
    malformed = [item(4, PASSAGES[0], ok=False)]  # not well formed: not counted
    echo = seed_echo(SQUAD_LIKE, copied + new + malformed)
    assert {k: echo[k] for k in ("field", "items", "copies", "seeds")} == \
        {"field": "context", "items": 4, "copies": 3, "seeds": 2}
    assert echo["notice"].startswith("3 of 4 generated items repeat the passage of one of 2 seeds word for word")
    assert "generate.topics" in echo["notice"]


def test_a_rare_echo_is_counted_without_a_notice_and_none_is_none():
    items = [item(0, PASSAGES[0])] + [item(i, f"Passage number {i} about something else.") for i in range(1, 5)]
    echo = seed_echo(SQUAD_LIKE, items)
    assert echo["copies"] == 1 and echo["items"] == 5 and "notice" not in echo  # 20% < 25%
    assert seed_echo(SQUAD_LIKE, items[1:]) is None


def test_run_curate_keeps_the_echo_in_its_summary_and_the_run_report_shows_the_notice(tmp_path):
    stage = StageDir(tmp_path, "rc", "curate", "k")
    stage.start({})
    gen = [item(i, PASSAGES[0], question=f"Question {i} about the river?", answer="Nile") for i in range(4)]
    summary = run_curate(SQUAD_LIKE, CurateConfig(decontaminate=False, near_dup_cosine=None), stage, gen)
    assert summary["seed_echo"]["copies"] == 4 and len(summary["notices"]) == 1
    assert json.loads((stage / "curation.json").read_text())["notices"] == summary["notices"]
    text = render_markdown(SQUAD_LIKE, {"rows": [], "test_items": 0, "scoring": "generate", "versions": {}}, summary)
    assert f"- **{summary['notices'][0]}**" in text
