"""The loop every per-item evaluation shares: skip items already in the log, score the rest chunk by chunk,
append each chunk's records as it finishes (a kill loses at most one chunk), return records in item order.

    records = evaluate_in_chunks(items, log, chunk=8, score_chunk=lambda batch: [...], desc="eval")
"""
from __future__ import annotations

from typing import Callable, Sequence

from tqdm.auto import tqdm

from protege.store import JsonlLog
from protege.tasks.spec import Example


def evaluate_in_chunks(items: Sequence[Example], log: JsonlLog, chunk: int,
                       score_chunk: Callable[[list[Example]], list[dict]], desc: str = "eval",
                       progress: bool = True) -> list[dict]:
    done = log.ids()
    pending = [it for it in items if it.id not in done]
    bar = tqdm(total=len(pending), desc=desc, disable=not progress, unit="item")
    for start in range(0, len(pending), chunk):
        batch = pending[start : start + chunk]
        log.append(score_chunk(batch))
        bar.update(len(batch))
    bar.close()
    by_id = {r["id"]: r for r in log.read()}
    return [by_id[it.id] for it in items]
