"""A trivial task kind written the way a user would add one: the answer is the input, said back.

Registered in a test with one line, `KINDS["echo"] = "echo_kind:ECHO"` (tests/test_task_kind_registry.py),
it runs through the whole pipeline; nothing else in protege knows about it. A class instance, to show that a
kind need not be a module.
"""
from __future__ import annotations

from protege.scoring.summaries import mean_metric, mean_of
from protege.tasks.kinds.chat import chat_with_shots, first_line, first_seeds


class EchoKind:
    NAME = "echo"
    METRICS = ("exact_match",)
    COLUMNS = [("exact_match", "said back")]
    SECONDARY_METRICS = ()
    REQUIRED_FIELDS = ("text",)
    LABELLED = False
    EXECUTES_CODE = False
    REWRITES_ANSWERS = False
    MAX_NEW_TOKENS = 8
    STOP = ["\n"]
    STOP_PATTERN = None
    FEW_SHOTS = 1
    GENERATION_MAX_NEW_TOKENS = 8
    MAX_TEXT_CHARS = 200
    COMPARED_FIELDS = ("text",)

    def check_spec(self, spec):
        return []

    def read_row(self, spec, row):
        return row, None

    def few_shot_examples(self, spec, shots):
        return first_seeds(spec, shots)

    def prompt(self, spec, item, shots=()):
        return chat_with_shots(spec, spec.description, lambda ex: ex.text, shots, item)

    def target(self, spec, item):
        return item.text

    def parse(self, spec, output):
        return first_line(output)

    def read_prediction(self, spec, value):
        return str(value)

    def score_items(self, spec, items, predictions, allow_code_execution):
        return [{"exact_match": float(p.strip() == it.text.strip())} for it, p in zip(items, predictions)]

    def item_score(self, metric, record):
        return float(record[metric])

    def item_correct(self, record):
        return bool(record["exact_match"])

    def summarize(self, spec, records, resamples):
        return {"n": len(records), **mean_metric("exact_match", records, resamples)}

    def metric_fn(self, spec, name):
        return lambda records: mean_of(name)(records, None)

    def generation_groups(self, spec, seeds):
        return {None: seeds}

    def generation_prompt(self, spec, group, shown, topic=None, persona=None):
        listed = "\n".join(f"- {e.text}" for e in shown)
        return [{"role": "user", "content": f"Examples:\n{listed}\nWrite one more, on one line."}]

    def generation_max_new_tokens(self, spec):
        return self.GENERATION_MAX_NEW_TOKENS

    def read_generated(self, spec, raw):
        text = first_line(raw)
        return ({"text": text}, None) if text else (None, "empty reply")

    def is_open_book(self, spec):
        return False

    def check_item(self, spec, item, open_book):
        return None

    def dedup_key(self, record, text_key):
        return text_key

    def answer_record(self, spec, item, text):
        return {"ok": False, "error": "an echo item's answer is its text"}


ECHO = EchoKind()
