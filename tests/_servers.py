"""Real servers for tests and benchmarks: one home for their plumbing.

- `free_port()`: a TCP port nothing listens on (127.0.0.1).
- `running(cmd, log, ...)`: a context manager that starts `cmd` in its own process group with
  stdout and stderr in the file `log`, and on leaving always stops that whole group (SIGTERM,
  then SIGKILL after `grace` seconds) — so a server's own children (the Milvus Lite binary, a
  worker) never outlive the test.
- `wait_http(url, proc, log)` / `wait_port(port, proc, log)`: wait until the server answers
  (HTTP 200 / a TCP connect); a server that exits or does not come up within `timeout` raises
  `ServerFailed` naming what happened, with the tail of its log.
- `uvicorn_thread(app)`: an ASGI app served by uvicorn in a daemon thread of this process.

No pytest here: benchmarks use it too (benchmarks/api_load.py, benchmarks/api_fuzz.py). An
exception raised in a fixture is reported as a setup error, as `pytest.fail` was.

Compromise: `free_port` closes its socket before the server binds the port, so another process
could take the port in between; a test that then fails says so in the server's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"
TAIL = 3000  # characters of a server's log in a failure message


class ServerFailed(RuntimeError):
    """A server exited or did not come up; the message holds the tail of its log."""


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (see the module docstring's compromise)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_tail(log: Path | str | None, chars: int = TAIL) -> str:
    """The last `chars` characters of the file `log` ("" when there is none)."""
    if log is None:
        return ""
    try:
        return Path(log).read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


@contextlib.contextmanager
def running(cmd: Sequence[str], log: Path | str, *, env: Mapping[str, str] | None = None,
            cwd: Path | str | None = None, grace: float = 30) -> Iterator[subprocess.Popen]:
    """`cmd` running in its own session (process group), output in `log`; stopped on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc, grace)


def stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process group of `proc` (its leader started it with start_new_session),
    SIGKILL to the group after `grace` seconds; children left by a leader that already exited
    are signalled too."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _wait(ready, what: str, proc: subprocess.Popen | None, log, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerFailed(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerFailed(f"{what} did not come up within {timeout:g} s:\n{log_tail(log)}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 5) -> bool:
    """True when GET `url` answers 200 (connection errors and other statuses: False)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:  # URLError and HTTPError are OSErrors; so are refused and reset connections
        return False


def wait_http(url: str, proc: subprocess.Popen | None = None, log=None, *, timeout: float = 120,
              interval: float = 0.5, what: str | None = None) -> None:
    """Until GET `url` answers 200; `ServerFailed` when `proc` exits or `timeout` passes."""
    _wait(lambda: http_ok(url), what or f"the server at {url}", proc, log, timeout, interval)


def wait_port(port: int, proc: subprocess.Popen | None = None, log=None, *, host: str = HOST,
              timeout: float = 60, interval: float = 0.2, what: str | None = None) -> None:
    """Until a TCP connect to host:port succeeds; `ServerFailed` as for wait_http."""
    def ready() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    _wait(ready, what or f"the server on {host}:{port}", proc, log, timeout, interval)


@contextlib.contextmanager
def uvicorn_thread(app, port: int | None = None, *, timeout: float = 10, join: float = 10) -> Iterator:
    """`app` served by uvicorn on HOST:`port` (default: a free one) in a daemon thread; yields
    the `uvicorn.Server` (its port: `server.config.port`), asks it to exit on leaving."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port or free_port(), log_level="warning",
                                        timeout_graceful_shutdown=1))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    try:
        _wait(lambda: srv.started or not t.is_alive(), "uvicorn", None, None, timeout, 0.025)
        if not srv.started:
            raise ServerFailed("uvicorn did not start (its thread ended; see the log above)")
        yield srv
    finally:
        srv.should_exit = True
        t.join(join)
