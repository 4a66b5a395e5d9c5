"""Dynamic batching for the server: many handler threads, one model, one worker thread.

Handler threads `submit` prompts and block; the worker takes whatever is waiting (up to `max_batch` prompts),
groups it by decoding settings (one `generate` call needs one GenerationConfig) and by prompt size (powers of two
of characters, so a short prompt is never padded to a long one's length), runs one `generate` per group, the
shortest prompts first, and hands each caller its answer. Requests that arrive while a batch runs wait and form
the next batch, so under load the batches grow by themselves. The server bounds every `generate` call in time
(GenerationConfig.max_seconds), so no request holds the worker for long.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from typing import Sequence

from protege.models.base import Generation, GenerationConfig, Prompt

# After the first request of an idle spell, wait this long for company: clients that fire together (a thread
# pool starting up) land in one batch instead of the first one running alone.
GATHER_S = 0.005


class Batcher:
    def __init__(self, lm, max_batch: int = 16):
        if max_batch < 1:
            raise ValueError(f"batch size must be >= 1 (got {max_batch})")
        self.lm = lm
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.stats = {"prompts": 0, "batches": 0, "max_batch": 0}
        self._thread = threading.Thread(target=self._run, name="protege-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[Generation]:
        """Answer these prompts (one request's worth) in whatever batches the worker forms; blocks."""
        futures = [Future() for _ in prompts]
        for prompt, future in zip(prompts, futures):
            self._queue.put((prompt, config, future))
        return [f.result() for f in futures]

    def call(self, fn):
        """Run fn() on the worker thread between batches (one pass over the model at a time); blocks."""
        future = Future()
        self._queue.put((None, fn, future))
        return future.result()

    def snapshot(self) -> dict:
        with self._lock:
            return {**self.stats, "queued": self._queue.qsize()}

    def _take(self) -> list[tuple]:
        items = [self._queue.get()]
        deadline = time.monotonic() + GATHER_S
        while len(items) < self.max_batch:
            try:
                items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return items

    def _run(self) -> None:
        while True:
            items = self._take()
            for _, fn, future in [item for item in items if item[0] is None]:  # calls: run them first, alone
                try:
                    future.set_result(fn())
                except Exception as e:
                    future.set_exception(e)
            groups: dict[tuple, list[tuple]] = {}
            for item in [item for item in items if item[0] is not None]:
                prompt, config = item[0], item[1]
                groups.setdefault((size_class(prompt), _key(config)), []).append(item)
            for _, group in sorted(groups.items(), key=lambda kv: kv[0][0]):
                with self._lock:  # max_batch: the most prompts one generate call has answered
                    self.stats["prompts"] += len(group)
                    self.stats["batches"] += 1
                    self.stats["max_batch"] = max(self.stats["max_batch"], len(group))
                try:
                    gens = self.lm.generate([p for p, _, _ in group], group[0][1])
                except Exception as e:  # the callers of this group get the error; the server keeps serving
                    for _, _, future in group:
                        future.set_exception(e)
                    continue
                for (_, _, future), gen in zip(group, gens):
                    future.set_result(gen)


def size_class(prompt: Prompt) -> int:
    """Prompts within a factor of two of each other in characters share a class."""
    text = prompt if isinstance(prompt, str) else "".join(str(m.get("content", "")) for m in prompt)
    return len(text).bit_length()


def _key(config: GenerationConfig) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in dataclasses.asdict(config).items())
