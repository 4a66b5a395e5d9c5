"""Curation filters: per-kind schema checks, exact and MinHash near-duplicates (the first by id is kept), the
stage's files and summary, and config errors that name the field. No model is loaded here (cosine checks off)."""
import json

import numpy as np
import pytest

from protege.config import CurateConfig, load_config
from protege.errors import ConfigError
from protege.store import StageDir
from protege.synth.curate import curate, run_curate
from protege.synth.filters.dedup import near_duplicates
from protege.synth.filters.minhash import MinHashLSH, estimated_jaccard
from protege.tasks.text import natural_key
from protege.tasks.spec import DataSource, Example, Label, TaskSpec

NO_EMBED = dict(contam_cosine=None, near_dup_cosine=None)


def spec_of(kind: str, **fields) -> TaskSpec:
    seeds = fields.pop("seeds", [Example(text="a seed item of this task", label="yes")])
    return TaskSpec(name=f"t-{kind}", kind=kind, description="d", seeds=seeds,
                    test=DataSource(path="unused.jsonl"), **fields)


YESNO = spec_of("classification", labels=[Label(name="yes"), Label(name="no")])


def rec(i, text, **fields):
    return {"id": f"gen-{i}", "text": text, "ok": True, "raw": text, "teacher": "t", "tokens_in": 1,
            "tokens_out": 1, **fields}


def reasons(result) -> dict:
    return {r["id"]: r["reason"] for r in result.dropped}


# -- schema ------------------------------------------------------------------------------------------------
def test_schema_drops_malformed_unknown_label_and_length_and_keeps_only_example_fields():
    gen = [rec(0, "Is the sky blue on a clear day?", label="yes"),
           rec(1, "Is fire cold to the touch?", label="maybe"),
           rec(2, "???", label="no", ok=False, error="no Text: line"),
           rec(3, "short", label="no"),
           rec(4, "x" * 301, label="no"),
           rec(5, "Is this a valid question?", label=["yes"])]
    result = curate(YESNO, CurateConfig(**NO_EMBED), gen)
    assert reasons(result) == {"gen-1": "unknown_label", "gen-2": "malformed", "gen-3": "length",
                               "gen-4": "length", "gen-5": "malformed"}
    assert result.kept == [{"id": "gen-0", "text": "Is the sky blue on a clear day?", "label": "yes"}]
    bad = next(r for r in result.dropped if r["id"] == "gen-2")
    assert bad["dropped_by"] == "schema" and bad["detail"]["error"] == "no Text: line" and bad["raw"] == "???"


def test_schema_per_kind():
    qa = spec_of("qa", seeds=[Example(text="q?", context="a passage", answers=["a"])])
    qa_gen = [rec(0, "Who built the bridge?", context="The bridge was built by Ann in 1900.", answers=["Ann"]),
              rec(1, "Who painted the bridge?", context="The bridge was built by Ann in 1900.", answers=["Bob"]),
              rec(2, "When was the bridge built?", context="The bridge was built by Ann in 1900.", answers=[""]),
              rec(3, "Who sang at the opening?", context="The bridge was built by Ann in 1900.", answers=[]),
              rec(4, "Who built the old bridge?", answers=["Ann"])]
    assert reasons(curate(qa, CurateConfig(**NO_EMBED), qa_gen)) == {
        "gen-1": "answer_not_in_context", "gen-2": "empty_answer", "gen-4": "missing_context"}  # 3: unanswerable

    ex = spec_of("extraction", seeds=[Example(text="two people", spans=[("people", "two")])],
                 slots=[Label(name="people"), Label(name="time")])
    ex_gen = [rec(0, "a table for four at 7pm", spans=[["people", "four"], ["time", "7pm"]]),
              rec(1, "a table for four please", spans=[["colour", "four"]]),
              rec(2, "a table for five please", spans=[["people", "six"]]),
              rec(3, "nothing to extract here", spans=[])]
    assert reasons(curate(ex, CurateConfig(**NO_EMBED), ex_gen)) == {"gen-1": "unknown_slot",
                                                                      "gen-2": "span_not_in_text"}

    math = spec_of("math", seeds=[Example(text="1+1?", answers=["2"])])
    math_gen = [rec(0, "Ann has 3 apples and buys 4 more. How many now?", answers=["7"], reference="3+4=7\n#### 7"),
                rec(1, "Ann has 3 apples and buys 5 more. How many now?", answers=["seven"]),
                rec(2, "Ann has 3 apples and buys 6 more. How many now?", answers=["9"], reference="3+6=10\n#### 10")]
    assert reasons(curate(math, CurateConfig(**NO_EMBED), math_gen)) == {"gen-1": "non_numeric_answer",
                                                                          "gen-2": "reference_disagrees"}


def test_schema_code_needs_tests_entry_point_and_parsing():
    from protege.synth.filters.schema import SchemaCheck

    code = spec_of("code", seeds=[Example(text="add", tests="assert add(1, 2) == 3", entry_point="add")])
    good = "def add(a, b):\n    return a + b\n"
    gen = [rec(0, "Write a function to add two numbers.", reference=good, tests="assert add(1, 2) == 3",
               entry_point="add"),
           rec(1, "Write a function to add two integers.", reference=good, tests="", entry_point="add"),
           rec(2, "Write a function to sum two numbers.", reference=good, tests="assert add(1, 2) == 3",
               entry_point="plus"),
           rec(3, "Write a function to add up two numbers.", reference="def add(a, b) return a + b",
               tests="assert add(1, 2) == 3", entry_point="add"),
           rec(4, "Write a function adding two numbers.", reference=good, tests="assert plus(1, 2) == 3",
               entry_point="add"),
           rec(5, "Write a function to add numbers.", reference=good, tests="assert add(2, 2) == 4"),  # inferred
           rec(6, "Write a function to add numbers up.", reference=good, tests="assert plus(2, 2) == 4"),
           rec(7, "Complete the function.", reference=good, tests="def check(candidate):\n    assert candidate(1, 1) == 2")]
    check = SchemaCheck(code, CurateConfig(allow_code_execution=True))
    assert [v and v[0] for v in map(check, gen)] == [None, "no_tests", "no_entry_point_function", "syntax_error",
                                                     "tests_do_not_call_entry_point", None,
                                                     "tests_do_not_call_entry_point", "no_entry_point"]


def test_curated_code_rows_keep_entry_point_only_for_check_candidate_tests():
    from protege.synth.filters.schema import curated_row

    base = {"id": "gen-0", "text": "t", "reference": "def f():\n    return 1", "entry_point": "f", "ok": True,
            "raw": "...", "seed_ids": ["seed-0"]}
    assert curated_row({**base, "tests": "assert f() == 1"}) == {
        "id": "gen-0", "text": "t", "reference": "def f():\n    return 1", "tests": "assert f() == 1"}
    humaneval = "def check(candidate):\n    assert candidate() == 1"
    assert curated_row({**base, "tests": humaneval})["entry_point"] == "f"


# -- duplicates --------------------------------------------------------------------------------------------
def test_exact_duplicates_ignore_case_and_punctuation_and_keep_the_first_id():
    gen = [rec(2, "Is water wet, really?", label="yes"), rec(1, "is WATER wet really", label="yes")]
    result = curate(YESNO, CurateConfig(near_dup_jaccard=None, **NO_EMBED), gen)
    assert [r["id"] for r in result.kept] == ["gen-1"]  # smaller id wins although appended second
    assert result.dropped[0]["detail"] == {"duplicate_of": "gen-1"}


def test_minhash_catches_near_duplicates_and_keeps_distinct_items():
    base = "how do i reset the password of my online banking account from the mobile app"
    gen = [rec(0, base, label="yes"),
           rec(1, base + " please", label="yes"),  # one word added
           rec(2, base.replace("mobile", "android"), label="yes"),  # one word changed
           rec(3, "what is the weather going to be like in paris tomorrow morning", label="no"),
           rec(4, "how do i close my savings account and move the money elsewhere", label="no")]
    result = curate(YESNO, CurateConfig(near_dup_jaccard=0.7, **NO_EMBED), gen)
    assert [r["id"] for r in result.kept] == ["gen-0", "gen-3", "gen-4"]
    assert {r["id"]: r["reason"] for r in result.dropped} == {"gen-1": "near_duplicate", "gen-2": "near_duplicate"}
    assert all(r["detail"]["duplicate_of"] == "gen-0" and r["detail"]["jaccard"] >= 0.7 for r in result.dropped)
    assert result.filters["near_dedup"] == {"input": 5, "dropped": 2, "reasons": {"near_duplicate": 2},
                                            "seconds": result.filters["near_dedup"]["seconds"]}


def test_near_duplicate_tie_keeps_the_first_by_id_whatever_the_file_order():
    a = "please tell me how long a standard international bank transfer usually takes to arrive"
    b = a.replace("usually", "normally")
    gen = [rec(11, b, label="yes"), rec(9, a, label="yes"), rec(10, a + " today", label="yes")]
    result = curate(YESNO, CurateConfig(near_dup_jaccard=0.6, **NO_EMBED), gen)
    assert [r["id"] for r in result.kept] == ["gen-9"]  # gen-9 < gen-10 < gen-11 numerically, not as strings
    assert {r["detail"]["duplicate_of"] for r in result.dropped} == {"gen-9"}
    assert sorted(["gen-10", "gen-9", "gen-11"], key=natural_key) == ["gen-9", "gen-10", "gen-11"]


def test_minhash_estimate_tracks_true_jaccard_and_lsh_finds_similar_pairs_only():
    lsh = MinHashLSH(num_perm=128, bands=32)
    a = {f"s{i}" for i in range(100)}
    b = {f"s{i}" for i in range(10, 110)}  # Jaccard 90 / 110 = 0.82
    c = {f"t{i}" for i in range(100)}  # disjoint
    sa, sb, sc = lsh.signature(a), lsh.signature(b), lsh.signature(c)
    assert abs(estimated_jaccard(sa, sb) - 90 / 110) < 0.12
    assert estimated_jaccard(sa, sc) < 0.1
    lsh.insert("a", sa)
    assert lsh.query(sb) == ["a"] and lsh.query(sc) == []
    assert np.array_equal(MinHashLSH().signature(a), sa)  # stable: the same on every run


def test_near_duplicates_scale_to_thousands_of_distinct_items():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(500)]
    records = [{"id": f"g-{i}", "text": " ".join(rng.choice(vocab, 12))} for i in range(2000)]
    records.append({"id": "g-2000", "text": records[5]["text"] + " extra"})
    drops = near_duplicates(records, jaccard=0.8)
    assert list(drops) == [2000] and drops[2000][1]["duplicate_of"] == "g-5"


# -- the stage -----------------------------------------------------------------------------------------------
def test_run_curate_writes_data_drops_and_curation_report(tmp_path, tiny_task):
    from protege.tasks.spec import load_task

    spec = load_task(str(tiny_task))
    stage = StageDir(tmp_path, "tiny", "curate", "k")
    stage.start({})
    gen = [rec(0, "Is 14 an even number ?", label="yes"),  # not a test item: those ask about 0 to 11
           rec(1, "Is 3 an even number ?", label="no"),  # a test item, verbatim
           rec(2, "Is 3 an even number ?", label="no"),
           rec(3, "Is 21 an odd number or an even one?", label="maybe")]
    summary = run_curate(spec, CurateConfig(**NO_EMBED), stage, gen)
    assert summary["input"] == 4 and summary["kept"] == 1 and summary["test_reads"] == 1
    assert summary["dropped"] == {"unknown_label": 1, "contaminated_exact": 1, "duplicate": 1}
    assert summary["kept_per_label"] == {"yes": 1}
    rows = [json.loads(l) for l in (stage / "data" / "train.jsonl").open()]
    assert rows == [{"id": "gen-0", "text": "Is 14 an even number ?", "label": "yes"}]
    drops = [json.loads(l) for l in (stage / "drops.jsonl").open()]
    assert [(d["id"], d["dropped_by"]) for d in drops] == [("gen-1", "decontaminate"), ("gen-2", "exact_dedup"),
                                                           ("gen-3", "schema")]
    assert drops[0]["detail"]["match"] == "test-3" and drops[0]["detail"]["split"] == "test"
    report = json.loads((stage / "curation.json").read_text())
    assert list(report["filters"]) == ["schema", "exact_dedup", "decontaminate", "execution", "simplicity",
                                       "near_dedup", "near_dedup_embedding"]
    assert report["filters"]["execution"] == {"skipped": "only for code tasks; this one is classification"}
    assert sum(f.get("dropped", 0) for f in report["filters"].values()) == 3
    assert report["config"]["contam_ngram"] == 10

    from protege.report import render_markdown  # the report's curation line reads the summary

    results = {"rows": [], "test_items": 12, "scoring": "likelihood", "versions": {}}
    text = render_markdown(spec, results, summary)
    assert "4 generated, 1 kept; dropped: unknown_label 1, duplicate 1, contaminated_exact 1." in text
    assert "- decontaminate: 1 of 2 dropped (contaminated_exact 1)" in text


def test_code_task_without_allow_code_execution_names_the_field():
    code = spec_of("code", seeds=[Example(text="add", tests="assert add(1, 2) == 3", entry_point="add")])
    with pytest.raises(ConfigError, match=r"curate\.allow_code_execution.*curate\.allow_code_execution=true"):
        curate(code, CurateConfig(), [])


def test_config_rejects_bad_thresholds_naming_fields():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["curate.lsh_bands=30", "curate.contam_cosine=1.5"])
    text = str(err.value)
    assert "curate.lsh_bands (30) must divide curate.minhash_perms (128)" in text
    assert "curate.contam_cosine must be in (0, 1]" in text
    assert load_config(None, ["curate.contam_cosine=null"]).curate.contam_cosine is None
