"""A private, throwaway RabbitMQ node for the tests, and the pytest fixtures that share it.

The event manager talks to RabbitMQ, and the only honest test of that is a real broker: mocks do
not know how durable queues, publisher confirms or redelivery after a restart really behave. So a
test asks for `rabbitmq_node` / `rabbitmq_url` and gets a node of its own:

- private: its own temp dir (mnesia data, logs, config), its own HOME with its own
  `.erlang.cookie`, a unique node name, and free 127.0.0.1 ports for AMQP, Erlang distribution and
  epmd. A developer's broker on 5672, their `/etc/rabbitmq` config or a system epmd on 4369 are
  never touched, and two test sessions never collide.
- restartable: `stop()` and `start()` keep the node name, data dir and ports, so durable queues
  and persistent messages survive, as they would in production (the reconnect tests need that).
- cheap: no plugins (the management plugin alone costs seconds at boot), one node per session,
  started lazily by the first test that asks for it.

The server runs as the current user, root included: unlike PostgreSQL, RabbitMQ does not refuse
root, so no `rabbitmq` system user or chown dance is needed. /usr/lib/rabbitmq/bin/rabbitmq-server
is run directly because the /usr/sbin wrapper switches to the `rabbitmq` user and its /var paths.

Fixtures:
- `rabbitmq_node` (session): the running `RabbitNode`; stopped and deleted at session end (and,
  as a backstop, at interpreter exit or when pytest itself dies: see `_parent_death_signal`).
- `rabbitmq_url` (session): `amqp://guest:guest@127.0.0.1:PORT/`.
- `rabbitmq_restartable` (function): the same node, for tests that stop or kill it; the node is
  running again after the test, whether the test passed or not.

Without the server binaries (/usr/lib/rabbitmq/bin/rabbitmq-server, Debian's `rabbitmq-server`
package) these fixtures skip their tests, unless `REWARDS_TEST_REQUIRE_RABBITMQ=1` (set by
scripts/test.sh, which apt-installs the package), in which case they fail: CI can never pass by
quietly skipping the broker tests.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
REQUIRE_RABBITMQ = os.environ.get("REWARDS_TEST_REQUIRE_RABBITMQ") == "1"

# Same-process nodes get distinct names (the pid alone keeps parallel sessions apart).
_node_counter = itertools.count(1)

# The AMQP 0-9-1 protocol header and the frame types `_amqp_login` needs.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_FRAME_METHOD = 1
_FRAME_END = b"\xce"


class RabbitNodeError(RuntimeError):
    """The node could not be started or stopped; the message carries the end of its logs."""


def rabbitmq_installed() -> bool:
    """Whether the server and epmd binaries are present (Debian's `rabbitmq-server` package)."""
    return os.access(RABBITMQ_SERVER, os.X_OK) and _find_epmd() is not None


def _find_epmd() -> str | None:
    return shutil.which("epmd") or shutil.which("epmd", path="/usr/lib/erlang/bin")


def _free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (all held open until all are picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _parent_death_signal() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the pytest process dies.

    A SIGKILLed pytest runs no finalizer and no atexit hook; without this its broker (and epmd)
    would linger, holding ports and memory. SIGTERM makes the node stop cleanly. Linux only; a
    no-op elsewhere.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _preexec() -> Callable[[], None] | None:
    """The parent-death signal fires when the *thread* that forked exits, not the process.

    Only the main thread lives as long as pytest, so nodes started from other threads (for
    example `asyncio.to_thread(node.start)`) go without it rather than die with their thread.
    """
    if threading.current_thread() is threading.main_thread():
        return _parent_death_signal
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path}: missing)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path}: empty)"


# --- A minimal AMQP 0-9-1 client, just enough to prove the broker accepts logins. -----------------
# A dependency-free, synchronous check: the fixtures run outside and inside event loops alike, and
# an open TCP port alone does not mean the broker is ready (the listener opens before the default
# vhost and the guest user are guaranteed usable).


def _shortstr(value: bytes) -> bytes:
    return struct.pack("!B", len(value)) + value


def _longstr(value: bytes) -> bytes:
    return struct.pack("!I", len(value)) + value


def _send_method(sock: socket.socket, class_id: int, method_id: int, args: bytes) -> None:
    payload = struct.pack("!HH", class_id, method_id) + args
    sock.sendall(struct.pack("!BHI", _FRAME_METHOD, 0, len(payload)) + payload + _FRAME_END)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def _recv_method(sock: socket.socket) -> tuple[int, int, bytes]:
    while True:
        frame_type, _channel, size = struct.unpack("!BHI", _recv_exactly(sock, 7))
        payload = _recv_exactly(sock, size + 1)[:-1]
        if frame_type == _FRAME_METHOD:
            class_id, method_id = struct.unpack("!HH", payload[:4])
            return class_id, method_id, payload[4:]


def _expect(sock: socket.socket, class_id: int, method_id: int) -> bytes:
    got_class, got_method, args = _recv_method(sock)
    if (got_class, got_method) == (10, 50):  # connection.close: refused, with a reason
        (code,) = struct.unpack("!H", args[:2])
        text = args[3 : 3 + args[2]].decode(errors="replace")
        raise ConnectionError(f"the broker closed the connection: {code} {text}")
    if (got_class, got_method) != (class_id, method_id):
        raise ConnectionError(
            f"expected method {class_id}.{method_id}, got {got_class}.{got_method}"
        )
    return args


def _amqp_login(port: int, user: str, password: str, vhost: str, timeout: float = 5.0) -> None:
    """Open (and politely close) one AMQP connection; raises OSError when that is not possible."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_AMQP_HEADER)
        _expect(sock, 10, 10)  # connection.start
        response = b"\0" + user.encode() + b"\0" + password.encode()
        start_ok = struct.pack("!I", 0) + _shortstr(b"PLAIN") + _longstr(response)
        _send_method(sock, 10, 11, start_ok + _shortstr(b"en_US"))
        channel_max, frame_max, _heartbeat = struct.unpack("!HIH", _expect(sock, 10, 30)[:8])
        _send_method(sock, 10, 31, struct.pack("!HIH", channel_max, frame_max, 0))  # tune-ok
        _send_method(sock, 10, 40, _shortstr(vhost.encode()) + _shortstr(b"") + b"\0")  # open
        _expect(sock, 10, 41)  # open-ok
        _send_method(sock, 10, 50, struct.pack("!H", 200) + _shortstr(b"") + b"\0\0\0\0")
        _expect(sock, 10, 51)  # close-ok


# --- The node -------------------------------------------------------------------------------------


class RabbitNode:
    """One private RabbitMQ node: see the module docstring for why it looks the way it does.

    `start()` and `stop()` may be called any number of times; data and ports are kept in between.
    `close()` stops everything and deletes the temp dir. `last_start_seconds` and
    `last_stop_seconds` record how long the last start / stop took.
    """

    user = "guest"
    password = "guest"  # RabbitMQ's default user, usable from loopback only
    vhost = "/"

    def __init__(self, start_timeout: float = 60.0, stop_timeout: float = 30.0) -> None:
        if not rabbitmq_installed():
            raise RabbitNodeError(f"RabbitMQ is not installed ({RABBITMQ_SERVER} or epmd missing)")
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.node_name = f"navtest{os.getpid()}x{next(_node_counter)}@localhost"
        self.port, self.dist_port, self.epmd_port = _free_ports(3)
        self.last_start_seconds = 0.0
        self.last_stop_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.root = Path(tempfile.mkdtemp(prefix="nav-rewards-rabbitmq-"))
        try:
            self._write_files()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        # Backstop for sessions that end without running finalizers (close() unregisters it).
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / f"{self.node_name}.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive (not whether it accepts connections yet)."""
        return self._process is not None and self._process.poll() is None

    def _write_files(self) -> None:
        home = self.root / "home"
        for directory in (home, self.root / "mnesia", self.root / "log", self.root / "conf.d"):
            directory.mkdir()
        # Erlang refuses a cookie file that others can read.
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq's
        (self.root / "rabbitmq.conf").write_text(
            "loopback_users.guest = true\n"
            # A nearly full CI disk must not block publishers (the default limit is 50MB).
            "disk_free_limit.absolute = 1MB\n"
            "log.file.level = info\n"
        )

    def _environment(self) -> dict[str, str]:
        """A clean environment: nothing from the caller's RABBITMQ_* / ERL_* settings leaks in."""
        root = self.root
        return {
            "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(root / "home"),
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(root / "conf.d"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            # Our own epmd is already running (see _start_epmd); distribution on loopback only.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        }

    def _start_epmd(self) -> None:
        """Run epmd ourselves, in the foreground, so that `close()` knows which process to end.

        Left to itself the node would spawn a daemonized epmd that outlives every test session.
        """
        if self._epmd is not None and self._epmd.poll() is None:
            return
        epmd = _find_epmd()
        assert epmd is not None
        self._epmd = subprocess.Popen(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_preexec(),
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                raise RabbitNodeError(f"epmd did not start on 127.0.0.1:{self.epmd_port}")
            time.sleep(0.02)

    def start(self) -> None:
        """Start the node (a no-op when it is running) and wait until it accepts AMQP logins."""
        if self._closed:
            raise RabbitNodeError("this node was closed")
        if self.running:
            return
        began = time.monotonic()
        self._start_epmd()
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with (self.root / "log" / "server.out").open("ab") as out:
            # A session of its own: a Ctrl-C aimed at pytest must not hit the node mid-test; the
            # fixtures stop it in order.
            self._process = subprocess.Popen(
                [str(RABBITMQ_SERVER)],
                cwd=self.root,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_preexec(),
            )
        self._wait_ready(began, log_offset)
        self.last_start_seconds = time.monotonic() - began

    def _startup_complete(self, log_offset: int) -> bool:
        """Whether *this* boot logged completion: the port could belong to someone else."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(log_offset)
                return b"Server startup complete" in log.read()
        except OSError:
            return False

    def _wait_ready(self, began: float, log_offset: int) -> None:
        assert self._process is not None
        deadline = began + self.start_timeout
        last_error = "the AMQP port never opened"
        while True:
            status = self._process.poll()
            if status is not None:
                self._reap()
                self._fail(f"exited with status {status} while starting")
            if self._startup_complete(log_offset) and _port_open(self.port):
                try:
                    _amqp_login(self.port, self.user, self.password, self.vhost)
                except OSError as exc:
                    last_error = f"AMQP login failed: {exc}"
                else:
                    return
            if time.monotonic() > deadline:
                self.kill()
                self._fail(f"not ready after {self.start_timeout:.0f}s ({last_error})")
            time.sleep(0.05)

    def _fail(self, what: str) -> None:
        raise RabbitNodeError(
            f"RabbitMQ node {self.node_name} on 127.0.0.1:{self.port} {what}.\n"
            f"--- {self.log_file} (tail) ---\n{_tail(self.log_file)}\n"
            f"--- server output (tail) ---\n{_tail(self.root / 'log' / 'server.out')}"
        )

    def stop(self) -> None:
        """Stop the node cleanly (SIGTERM: RabbitMQ shuts down in order and flushes its stores).

        Waits until the process has exited and the AMQP port is closed, so that an immediate
        `start()` can bind the same port again.
        """
        process = self._process
        if process is None:
            return
        began = time.monotonic()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self._fail(f"did not stop within {self.stop_timeout:.0f}s (killed)")
        self._reap()
        deadline = time.monotonic() + 10
        while _port_open(self.port):
            if time.monotonic() > deadline:
                self._fail("exited but its AMQP port is still open")
            time.sleep(0.05)
        self.last_stop_seconds = time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL the node, like a crash: unacknowledged work must survive this too."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._reap()

    def _reap(self) -> None:
        """Kill helpers the node left in its process group (erl_child_setup, inet_gethost)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process = None

    def close(self) -> None:
        """Stop the node and its epmd and delete the temp dir. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            try:
                self.stop()
            except RabbitNodeError:
                self.kill()
        finally:
            if self._epmd is not None:
                self._epmd.terminate()
                try:
                    self._epmd.wait(5)
                except subprocess.TimeoutExpired:
                    self._epmd.kill()
                    self._epmd.wait()
                self._epmd = None
            shutil.rmtree(self.root, ignore_errors=True)

    def accepts_logins(self) -> bool:
        """Whether the node answers an AMQP login right now."""
        if not self.running:
            return False
        try:
            _amqp_login(self.port, self.user, self.password, self.vhost)
        except OSError:
            return False
        return True


# --- Fixtures -------------------------------------------------------------------------------------


def _require_rabbitmq() -> None:
    """Skip, or fail under REWARDS_TEST_REQUIRE_RABBITMQ=1, when RabbitMQ is not installed."""
    if rabbitmq_installed():
        return
    message = f"RabbitMQ server not installed ({RABBITMQ_SERVER} or epmd missing)"
    if REQUIRE_RABBITMQ:
        pytest.fail(
            f"REWARDS_TEST_REQUIRE_RABBITMQ=1 but {message}: "
            "apt-get install rabbitmq-server (scripts/test.sh does it)",
            pytrace=False,
        )
    pytest.skip(f"{message}: apt-get install rabbitmq-server, or use scripts/test.sh")


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitNode]:
    """The session's RabbitMQ node, started by the first test that asks for it."""
    _require_rabbitmq()
    node = RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.close()


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq_node: RabbitNode) -> str:
    """`amqp://guest:guest@127.0.0.1:PORT/` of the session's node."""
    return rabbitmq_node.url


@pytest.fixture
def rabbitmq_restartable(rabbitmq_node: RabbitNode) -> Iterator[RabbitNode]:
    """The session's node for a test that stops, kills or restarts it.

    Afterwards the node is running and accepting logins again, even if the test failed halfway,
    so that the tests after it do not inherit a dead broker.
    """
    yield rabbitmq_node
    if not rabbitmq_node.accepts_logins():
        rabbitmq_node.kill()
        rabbitmq_node.start()
