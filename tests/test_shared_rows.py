"""Shared evaluation rows (evaluate/shared_rows.py): a row on a slice of the test set reads its items from the same
row finished on the whole test set, and computes only when that row is missing, unfinished or lacks an item.

    pytest -q tests/test_shared_rows.py
"""
from protege.config import EvalConfig
from protege.evaluate.shared_rows import SharedRow
from protege.tasks.spec import load_task


def _row(folder, spec, limit, model="hf:m", scoring="likelihood"):
    return SharedRow(folder, spec, model, [], EvalConfig(max_test_items=limit), scoring)


def _records(items):
    return [{"id": it.id, "correct": i % 2 == 0} for i, it in enumerate(items)]


def test_a_slice_adopts_the_finished_whole_test_set_row_and_computes_nothing(tmp_path, tiny_task):
    spec = load_task(str(tiny_task))
    items = spec.test_examples()
    whole = _row(tmp_path, spec, None)
    whole.records_or_compute(spec, "hf:m", 0, items, False, lambda log: (log.append(_records(items)) or
                                                                        _records(items), {"peak_rss_mb": 1.0}), "x")
    computed = []
    part = _row(tmp_path, spec, 3)
    assert part.path != whole.path
    records, memory = part.records_or_compute(spec, "hf:m", 0, items[:3], False,
                                              lambda log: computed.append(1) or ([], {}), "x")
    assert computed == [] and records == _records(items)[:3]
    assert memory == {"peak_rss_mb": 1.0, "adopted_from": str(whole.path)}
    assert _row(tmp_path, spec, 3).finished(items[:3])  # finished in its own folder: read from there next time


def test_another_model_or_scoring_or_an_unfinished_whole_row_means_computing(tmp_path, tiny_task):
    spec = load_task(str(tiny_task))
    items = spec.test_examples()
    _row(tmp_path, spec, None).records_or_compute(spec, "hf:m", 0, items, False,
                                                  lambda log: (log.append(_records(items)) or _records(items), {}),
                                                  "x")
    _row(tmp_path / "b", spec, None).log.append(_records(items))  # records, no memory.json: still going, or killed
    for folder, model, scoring in ((tmp_path, "hf:other", "likelihood"), (tmp_path, "hf:m", "generate"),
                                   (tmp_path / "b", "hf:m", "likelihood")):
        computed = []
        _row(folder, spec, 3, model, scoring).records_or_compute(
            spec, model, 0, items[:3], False, lambda log: computed.append(1) or (_records(items[:3]), {}), "x")
        assert computed == [1], (folder, model, scoring)
