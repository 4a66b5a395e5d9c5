"""PeakMemory sees a block's own allocation, and resets between blocks."""
import numpy as np
import pytest

from protege.evaluate.memory import PeakMemory


def test_peak_memory_follows_each_block():
    with PeakMemory() as small:
        pass
    if small.mb is None:
        pytest.skip("this kernel does not expose a resettable high-water mark")
    with PeakMemory() as big:
        block = np.ones(200 * 1024 * 1024 // 8)  # 200 MiB, touched
        del block
    with PeakMemory() as after:
        pass
    assert big.mb - small.mb > 150
    assert after.mb < big.mb - 150  # the mark was reset, not carried over
