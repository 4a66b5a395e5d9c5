"""Every built-in task loads from the data directory, with seeds, validation and test kept apart."""
import pytest
from markers import requires_data

from protege.tasks.kinds import kind_of
from protege.tasks.loaders import fingerprint
from protege.tasks.spec import builtin_tasks, load_task

EXPECTED = {  # task: (kind, test items) as published
    "trec6": ("classification", 500), "banking77": ("classification", 3080), "gsm8k": ("math", 1319),
    "nq_open": ("qa", 3610), "mbpp": ("code", 500), "humaneval": ("code", 164),
    "squad2": ("qa", 11873 - 377), "restaurant8k": ("extraction", 3731 - 187),
}


def test_expected_covers_every_builtin():
    assert sorted(EXPECTED) == builtin_tasks()


@requires_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_loads_with_disjoint_splits(name):
    spec = load_task(name)
    kind, n_test = EXPECTED[name]
    seeds, validation, test = spec.seed_examples(), spec.validation_examples(), spec.test_examples()
    assert spec.kind == kind and len(test) == n_test and seeds
    assert validation, f"{name}: every task needs a validation split for choices (issue 8)"
    assert len({t.id for t in test}) == len(test)
    test_texts = {fingerprint(t.text, t.context) for t in test}
    for split in (seeds, validation):
        assert not any(fingerprint(e.text, e.context) in test_texts for e in split), f"{name}: a test item leaks into seeds/val"
    assert not {e.id.split("-", 1)[1] for e in seeds} & {e.id.split("-", 1)[1] for e in validation} \
        or not isinstance(spec.validation, type(spec.seeds))
    kind_mod = kind_of(spec)
    for item in seeds[:2] + test[:2]:  # every item renders to a prompt and has a target answer
        messages = kind_mod.prompt(spec, item, seeds[:1])
        assert messages[-1]["role"] == "user" and item.text.strip()[:20] in messages[-1]["content"]
        assert isinstance(kind_mod.target(spec, item), str)


@requires_data
def test_squad_split_keeps_unanswerable_questions():
    test = load_task("squad2").test_examples()
    unanswerable = sum(1 for t in test if t.answers == [])
    assert 0.45 < unanswerable / len(test) < 0.55


@pytest.mark.parametrize("fmt, content, expected", [
    ("jsonl", '{"q": "a", "a": "yes"}\n{"q": "b", "a": \n', "line 2: not JSON"),
    ("jsonl", '{"q": "a", "a": "yes"}\n["q", "b"]\n', "line 2: unexpected shape: a JSON list"),
    ("trec", "NUM:count How many ?\nno-label-here\n", "line 2: expected `COARSE:fine question text`"),
])
def test_a_malformed_data_row_names_the_file_and_line(tmp_path, fmt, content, expected):
    from protege.errors import ConfigError
    from protege.tasks.loaders import read_rows

    path = tmp_path / f"data.{fmt}"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        read_rows(path, fmt)
    assert str(path) in str(err.value) and expected in str(err.value)
