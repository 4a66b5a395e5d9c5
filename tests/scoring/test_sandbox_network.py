"""Attack: connect to a server the test runs on 127.0.0.1. With a network namespace it cannot be reached."""
import socket

import pytest

from sandbox_packages import imports_of

from protege.scoring.sandbox import isolation, run_many

DIAL = """
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    print("connected")
except OSError as e:
    print("blocked", type(e).__name__)
"""


def test_no_connection_reaches_a_local_listener(packages):
    iso = isolation()
    if not iso.network:
        pytest.skip(f"no network namespace here: {'; '.join(iso.notes)}")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        # Several workers, so fork servers started after the probe are checked too (they must not be weaker).
        results = run_many([imports_of(packages) + DIAL.format(port=listener.getsockname()[1])] * 4, workers=4,
                           allow_code_execution=True, packages=packages)
        assert all(r.network_isolated and r.stdout.startswith("blocked") for r in results), results
        with pytest.raises(BlockingIOError):
            listener.accept()
