"""Simulated kills for resume tests: let the training loop save its n-th checkpoint, then stop the run."""
from __future__ import annotations


def die_after_checkpoint(monkeypatch, n: int = 2):
    """Patch train/loop.py so the run raises KeyboardInterrupt right after its n-th checkpoint is on disk;
    returns a function that undoes the patch (call it before resuming)."""
    import protege.train.loop as loop

    real_save, calls = loop._save_checkpoint, {"n": 0}

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt(f"simulated kill after checkpoint {n}")

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    return lambda: monkeypatch.setattr(loop, "_save_checkpoint", real_save)
