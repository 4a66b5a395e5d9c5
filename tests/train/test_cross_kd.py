"""Logit distillation across tokenizers: positions aligned by character offsets, the loss on the shared tokens;
with one tokenizer it is the same-tokenizer loss, and the vocabulary map is built once per pair."""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from protege.train import cross_tokenizer
from protege.train.cross_tokenizer import aligned_positions, token_bytes, vocabulary_map
from test_kd_method import _peaked_teacher
from tiny import CORPUS, build_tiny_model, write_tiny_config


def _run(tmp_path, name, model_dir, task, **kd):
    cfg = load_config(write_tiny_config(tmp_path / name, model_dir, task, train={"method": "kd", "kd": kd}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    return summary, JsonlLog(pipe.stages["train"] / "train_log.jsonl").read()


def test_positions_pair_where_both_tokens_start_at_the_same_character():
    # "def add" as [de][f][ add] (student) and [def][ ][add] (teacher): 'd' at 0 and ' ' at 3 are shared starts
    assert aligned_positions([0, 2, 3], [0, 3, 4]) == [(0, 0), (2, 1)]
    assert aligned_positions([0, 1, 2], [0, 1, 2]) == [(0, 0), (1, 1), (2, 2)]  # one tokenizer: every position


def test_two_tokenizers_align_where_their_tokens_start_together(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from protege.train.cross_tokenizer import answer_tokens

    other = build_tiny_model(tmp_path / "other", seed=3, corpus=["Paris Tokyo Hamlet NASA"], vocab_size=262)
    student, teacher = AutoTokenizer.from_pretrained(str(tiny_model_dir)), AutoTokenizer.from_pretrained(str(other))
    answer = "What is the capital of France ? Paris is a location ."
    _, s_ids, s_starts = answer_tokens(student, "Q: ", answer)
    _, t_ids, t_starts = answer_tokens(teacher, "Q: ", answer)
    pairs = aligned_positions(s_starts, t_starts)
    assert len(s_ids) < len(t_ids)  # the teacher's small vocabulary cuts the text finer
    assert len(pairs) == len(set(s_starts) & set(t_starts)) and len(pairs) < len(t_ids)
    assert all(s_starts[k] == t_starts[m] for k, m in pairs) and pairs[0] == (0, 0)


def test_byte_level_tokens_read_back_to_their_text(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    texts = token_bytes(tok)
    assert texts and all(texts[i].decode("utf-8", "replace") == tok.decode([i]) for i in list(texts)[:200]
                         if texts[i].isascii())


@pytest.mark.precision("fp32")
def test_one_tokenizer_through_the_alignment_is_the_same_tokenizer_loss(tmp_path, tiny_model_dir, tiny_task,
                                                                         monkeypatch):
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    teacher = f"hf:{_peaked_teacher(tmp_path / 'teacher')}"
    kd = {"teacher": teacher, "alpha": 0.5, "divergence": "jsd", "signal": "online", "temperature": 2.0}
    plain, plain_log = _run(tmp_path, "plain", tiny_model_dir, tiny_task, **kd)
    aligned, aligned_log = _run(tmp_path, "aligned", tiny_model_dir, tiny_task, cross_tokenizer="align", **kd)
    assert "cross_tokenizer" not in plain and aligned["cross_tokenizer"] and aligned["aligned_positions"] == 1.0
    assert [r["loss"] for r in aligned_log] == pytest.approx([r["loss"] for r in plain_log], rel=1e-5)
    assert [r["kd"] for r in aligned_log] == pytest.approx([r["kd"] for r in plain_log], rel=1e-5)


def test_a_teacher_with_another_tokenizer_distils_on_the_shared_tokens(tmp_path, tiny_model_dir, tiny_task,
                                                                       monkeypatch):
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    other = build_tiny_model(tmp_path / "other", seed=3, corpus=CORPUS[::-1] + ["yes no even odd"], vocab_size=270)
    summary, log = _run(tmp_path, "cross", tiny_model_dir, tiny_task, teacher=f"hf:{other}", alpha=0.5,
                        signal="online")
    assert summary["cross_tokenizer"] and summary["student_vocabulary"] != summary["teacher_vocabulary"]
    assert 0 < summary["shared_tokens"] < summary["student_vocabulary"]
    assert 0.3 < summary["aligned_positions"] <= 1.0  # yes/no answers: most start where the teacher's do
    assert all(r["kd"] > 0 for r in log)
    maps = list((tmp_path / "cache" / "vocab-maps").glob("*.pt"))
    assert len(maps) == 1

    def never(_tok):
        raise AssertionError("the vocabulary map was built again")

    monkeypatch.setattr(cross_tokenizer, "token_bytes", never)
    from transformers import AutoTokenizer

    student, teacher = (AutoTokenizer.from_pretrained(str(d)) for d in (tiny_model_dir, other))
    again = vocabulary_map(student, teacher)
    assert len(again.student_ids) == summary["shared_tokens"]


def test_the_teacher_reads_each_row_once_however_many_epochs(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    from protege.train import cross_kd

    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    read = []
    real = cross_kd.teacher_targets

    def counted(teacher, paired, *args, **kwargs):
        read.extend(tuple(p["input_ids"]) for p in paired)
        return real(teacher, paired, *args, **kwargs)

    monkeypatch.setattr(cross_kd, "teacher_targets", counted)
    other = build_tiny_model(tmp_path / "other", seed=3, corpus=CORPUS[::-1] + ["yes no even odd"], vocab_size=270)
    summary, log = _run(tmp_path, "cross", tiny_model_dir, tiny_task, teacher=f"hf:{other}", alpha=0.5)
    assert max(r["epoch"] for r in log) == 1  # two epochs ran
    assert read and len(read) == len(set(read))  # each row once, the second epoch from memory
    assert 0 < summary["teacher_seconds"] <= summary["seconds"]  # that pass is in the run's wall time
    assert all(r["kd"] > 0 for r in log)


@pytest.mark.precision("fp32")
def test_a_stopped_run_reads_the_teachers_pass_back_instead_of_redoing_it(tmp_path, tiny_model_dir, tiny_task,
                                                                          monkeypatch):
    from protege.train import cross_kd

    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    other = f"hf:{build_tiny_model(tmp_path / 'other', seed=3, corpus=CORPUS[::-1] + ['yes no'], vocab_size=270)}"
    _, whole = _run(tmp_path, "whole", tiny_model_dir, tiny_task, teacher=other, alpha=0.5)
    real = cross_kd.train_lora

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # the machine went away once the teacher's pass was done

    monkeypatch.setattr(cross_kd, "train_lora", stopped)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed", tiny_model_dir, tiny_task, teacher=other, alpha=0.5)
    saved = list((tmp_path / "resumed").rglob("teacher-targets/*.pt"))
    assert saved
    monkeypatch.setattr(cross_kd, "train_lora", real)
    read = []
    monkeypatch.setattr(cross_kd, "teacher_targets", lambda teacher, paired, *a, **k: read.append(paired))
    summary, resumed = _run(tmp_path, "resumed", tiny_model_dir, tiny_task, teacher=other, alpha=0.5)
    assert read == []  # every batch came back from the stage
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in whole], rel=1e-6)
    assert not any(p.exists() for p in saved)  # removed once the adapter is trained


def test_each_side_folds_onto_the_shared_tokens_and_a_bucket_for_its_own():
    import torch

    from protege.train.cross_tokenizer import VocabularyMap, fold

    # student tokens [a, b, c], teacher tokens [b, a, d, e]: a and b are shared
    vmap = VocabularyMap(torch.tensor([0, 1]), torch.tensor([1, 0]), 3, 4)
    s, t = torch.log_softmax(torch.randn(2, 3), -1), torch.log_softmax(torch.randn(2, 4), -1)
    assert torch.allclose(fold(s, vmap.student_ids, vmap.complete), s, atol=1e-6)  # [a, b, rest = c]
    want = torch.stack([t[:, 1], t[:, 0], torch.logsumexp(t[:, 2:], -1)], -1)  # [a, b, rest = d + e]
    assert torch.allclose(fold(t, vmap.teacher_ids, vmap.complete), want, atol=1e-6)


def test_a_rest_holding_almost_no_mass_stays_finite():
    """1 - sum(mapped) rounds to 0 in fp32 when the mapped tokens hold nearly everything (found on SmolLM2 <- Qwen:
    the loss was inf); the rest is summed from the unmapped entries instead."""
    import torch

    from protege.train.cross_tokenizer import fold

    logits = torch.tensor([[30.0, 0.0, -20.0, -25.0]])
    folded = fold(torch.log_softmax(logits, -1), torch.tensor([0, 1]), complete=False)
    assert torch.isfinite(folded).all() and folded[0, 2] < -40  # the rest: about e^-50 of the mass


def test_span_alignment_keeps_only_positions_where_both_predict_the_same_text():
    # "):\n    x" as [):][\n    ][x] (student) and [):\n][    ][x] (teacher): both start at 0 and at 7, but at 0 the
    # teacher's token is "):\n" and the student's "):" (another text); at 7 both are "x"
    s_starts, t_starts = [0, 2, 7], [0, 3, 7]
    assert aligned_positions(s_starts, t_starts) == [(0, 0), (2, 2)]
    ends = (cross_tokenizer.token_ends(s_starts, 8), cross_tokenizer.token_ends(t_starts, 8))
    assert ends == ([2, 7, 8], [3, 7, 8])
    assert aligned_positions(s_starts, t_starts, *ends) == [(2, 2)]
    # each template's end-of-turn text lies beyond the shared answer: the two end tokens still pair
    assert cross_tokenizer.token_ends([0, 5], 5) == [5, 5]


def test_span_pairs_of_two_real_rows_predict_the_same_token_text(tmp_path, tiny_model_dir):
    from protege.models.local import LocalLM
    from protege.train.cross_kd import pair_row

    other = build_tiny_model(tmp_path / "other", seed=3, corpus=["Paris Tokyo Hamlet NASA"], vocab_size=262)
    student, teacher = LocalLM.from_dir(tiny_model_dir), LocalLM.from_dir(other)
    prompt = [{"role": "user", "content": "Where is Paris ?"}]
    answer = "Paris is a location ."
    rows = {a: pair_row(student, teacher, prompt, answer, True, 256, align=a) for a in ("start", "span")}
    start, span = rows["start"][1]["pairs"], rows["span"][1]["pairs"]
    assert set(span) < set(start)  # the teacher's small vocabulary cuts some words finer: those positions go
    s_ids, t_ids = rows["span"][0]["input_ids"], rows["span"][1]["input_ids"]
    for s_pos, t_pos in span:  # position p predicts token p + 1
        s_text = student.tokenizer.decode([s_ids[s_pos + 1]]).strip()
        t_text = teacher.tokenizer.decode([t_ids[t_pos + 1]]).strip()
        assert s_text == t_text, (s_text, t_text)


def test_the_start_alignment_keeps_the_stage_keys_runs_had_before_span():
    from protege.config import KDConfig, OnPolicyConfig
    from protege.stage_keys import key_dump

    assert "align" not in key_dump(KDConfig(align="start")) and key_dump(KDConfig())["align"] == "span"
    assert "align" not in key_dump(OnPolicyConfig(align="start"))
