"""A task specialist: a model fine-tuned (LoRA SFT, merged) on human-written examples of a built-in task's own
training split, saved as an ordinary HF model directory to use as `hf:DIR` (a teacher, usually).

    python -m protege.lab.experiments.specialist gsm8k --rows 208:608 \\
        --out ~/.cache/protege/specialists/smollm2-135m-gsm8k

The rows come from the file the task's seeds are read from (GSM8K: its train split), and must not overlap the
task's seed or validation rows (the test set is a separate file, never read here). The cooperative experiment
uses one as its teacher: SmolLM2 tuned on GSM8K's worked solutions answers in their terse human style, which is
alien to the chatty instruct student, the situation TESSY (arXiv:2604.14164) studies.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

from protege.config import TrainConfig
from protege.store import StageDir, atomic_write_json


def training_rows(task: str, rows: str) -> list[dict]:
    """Examples of `task`'s seed file in the slice `rows`, refused when the slice overlaps the seeds or the
    validation rows."""
    from protege.tasks.loaders import load_examples
    from protege.tasks.spec import DataSource, load_task

    spec = load_task(task)
    if not isinstance(spec.seeds, DataSource):
        raise SystemExit(f"{task}: its seeds are written inline, so there is no training file to take rows from")
    source = spec.seeds.model_copy(update={"rows": rows, "skip_rows": None})
    examples = load_examples(spec, source, "specialist")
    taken = {e.text for e in examples}
    used = [e.text for e in spec.seed_examples() + spec.validation_examples() if e.text in taken]
    if used:
        raise SystemExit(f"--rows {rows}: {len(used)} of these rows are the task's seeds or validation items "
                         f"(e.g. {used[0][:60]!r}); take rows after them")
    return [e.model_dump(exclude_none=True) for e in examples]


def make_specialist(task: str, rows: str, out: Path, base: str, train: TrainConfig, progress: bool = True) -> dict:
    """Train, merge and save; returns the training summary (also written to OUT/specialist.json)."""
    from peft import PeftModel

    from protege.models.resolve import load_lm
    from protege.tasks.spec import load_task

    spec = load_task(task)
    examples = training_rows(task, rows)
    lm = load_lm(base)
    stage = StageDir(out.parent, out.name, "train", "lora")
    stage.start({"task": task, "rows": rows, "base": base, "train": train.model_dump()})
    from protege.train.sft import run_train

    summary = run_train(spec, train, stage, lm, examples, progress=progress)
    stage.finish(summary)
    # A copy: load_lm caches models in the process, and merging writes into the weights it wraps.
    merged = PeftModel.from_pretrained(copy.deepcopy(lm.model), str(stage / "adapter")).merge_and_unload()
    merged.save_pretrained(out)
    lm.tokenizer.save_pretrained(out)
    record = {"task": task, "rows": rows, "examples": len(examples), "base": base, "train": train.model_dump(),
              "summary": summary}
    atomic_write_json(out / "specialist.json", record)  # written last: the directory is complete
    return record


def main(argv: list[str]) -> None:
    import argparse

    from protege.models.resolve import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--rows", required=True, help='a slice of the seed file, e.g. "208:608"')
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--base", default=DEFAULT_MODEL)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--max-seq-len", type=int, default=512)
    args = parser.parse_args(argv)
    out = args.out.expanduser()
    if (out / "specialist.json").exists():
        print(f"{out} is already made; delete it to make it again")
        return
    train = TrainConfig(student=args.base, epochs=args.epochs, lr=args.lr, max_seq_len=args.max_seq_len,
                        include_seeds=False)
    record = make_specialist(args.task, args.rows, out, args.base, train)
    print(f"wrote {out} ({record['examples']} examples, loss {record['summary'].get('first_loss'):.3f} -> "
          f"{record['summary'].get('final_loss'):.3f}); use it as hf:{args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
