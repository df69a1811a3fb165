"""Follow a document literally: take its ```sh blocks, run every command in one bash session as
an operator at a terminal would (variables and `cd` carry over), start the commands that end
in `&` in the background with their output in a log, and wait until each says it is ready.

Tests use it for docs/identity.md and the README's deployment section, and for what
`cityedge district init` prints. Logs of background processes stay available, so tests of
what an operator reads (log lines, refusals) can run against the same district.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Background", "Shell", "commands", "printed_steps", "sh_blocks", "venv_env", "with_settings"]

# What a background process prints once it serves (so the next command may rely on it).
READY: tuple[tuple[str, str], ...] = (
    ("mosquitto", r"mosquitto version \S+ running"),
    ("api serve", r"api: listening on"),
    ("cloud ingest", r"ingest: subscribed"),
    ("edge run", r"agent \S+ started"),
)


def sh_blocks(markdown: str, section: str | None = None) -> list[str]:
    """The ```sh blocks of `markdown` (only those under the heading `section`, when given)."""
    if section is not None:
        markdown = _section(markdown, section)
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)


def _section(markdown: str, heading: str) -> str:
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", markdown, flags=re.M)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = markdown[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def commands(block: str) -> list[str]:
    """One entry per command: backslash continuations joined, a heredoc kept with its body."""
    out: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.endswith("\\"):
            command = command[:-1] + " " + next(lines).strip()
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", command)
        if heredoc:
            body = []
            for more in lines:
                body.append(more)
                if more.strip() == heredoc.group(1):
                    break
            command = "\n".join([command, *body])
        out.append(command)
    return out


def with_settings(blocks: Sequence[str], settings: dict[str, str]) -> list[str]:
    """All commands, the first block (the document's settings) replaced by `settings`.

    The document's settings block must set exactly the variables the test supplies, so a
    new setting in the document fails here instead of running with a production value.
    """
    documented = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", blocks[0]))
    assert documented == set(settings), (
        f"the settings block sets {sorted(documented)}, not {sorted(settings)}"
    )
    exports = [f"export {k}={v}" for k, v in settings.items()]
    return exports + [c for block in blocks[1:] for c in commands(block)]


def printed_steps(output: str) -> list[str]:
    """The commands `cityedge district init` printed (`  $ ...` lines), in order."""
    return [line.split("$ ", 1)[1] for line in output.splitlines() if line.startswith("  $ ")]


@dataclass
class Background:
    command: str
    pid: int
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{self.pid}").exists() and "zombie" not in _status(self.pid)

    def count(self, pattern: str) -> int:
        """How many log lines match `pattern` (e.g. a refusal that must be logged once, not per retry)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if re.search(pattern, line))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log.read_text(errors="replace") if self.log.exists() else ""):
                return
            if not self.alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.command!r} never printed /{pattern}/; its log:\n{self.tail()}")

    def uid(self) -> int:
        for line in _status(self.pid).splitlines():
            if line.startswith("uid:"):
                return int(line.split()[1])
        raise AssertionError(f"no uid for pid {self.pid}")


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return ""


@dataclass
class Shell:
    """One bash session; `run` waits for a command, `start` leaves it running with a log."""

    workdir: Path
    env: dict[str, str]
    background: list[Background] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, cwd=self.workdir, env=self.env, start_new_session=True,
        )  # fmt: skip
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._n = 0

    def _read(self) -> None:
        assert self._bash.stdout is not None
        for line in self._bash.stdout:
            self._lines.put(line)

    def _send(self, text: str, marker: str, timeout: float) -> tuple[list[str], str]:
        assert self._bash.stdin is not None
        self._bash.stdin.write(text + f"\necho {marker} $? $!\n")
        self._bash.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out after {timeout}s: {text}\n{''.join(out)}") from None
            if line.startswith(marker):
                return out, line
            out.append(line)

    def run(self, command: str, timeout: float = 120.0, check: bool = True) -> str:
        self._n += 1
        self.transcript.append(command)
        out, status = self._send(command, f"__done_{self._n}__", timeout)
        rc = int(status.split()[1])
        if check and rc != 0:
            raise AssertionError(f"exit {rc}: {command}\n{''.join(out)}\n{self.logs()}")
        return "".join(out)

    def start(self, command: str, ready: str | None = None, timeout: float = 60.0) -> Background:
        """`command` in the background (as `command &` would), its output in a log file."""
        self._n += 1
        self.transcript.append(command + " &")
        log = self.workdir / f"bg-{self._n}.log"
        _, status = self._send(f"{command} > {log} 2>&1 &", f"__started_{self._n}__", 10)
        proc = Background(command, int(status.split()[2]), log)
        self.background.append(proc)
        pattern = ready or next((p for key, p in READY if key in command), None)
        if pattern is not None:
            proc.wait_for(pattern, timeout)
        return proc

    def follow(self, steps: Sequence[str], before: Callable[[str], None] | None = None) -> list[str]:
        """Run `steps` in order (`... &` in the background); the foreground commands' outputs."""
        outputs = []
        for step in steps:
            if before is not None:
                before(step)
            if step.rstrip().endswith("&") and not step.rstrip().endswith("&&"):
                self.start(step.rstrip()[:-1].rstrip())
            else:
                outputs.append(self.run(step))
        return outputs

    def logs(self) -> str:
        return "\n".join(f"--- {p.command}\n{p.tail(20)}" for p in self.background)

    def close(self) -> None:
        for proc in reversed(self.background):
            if proc.alive():
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(p.alive() for p in self.background) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in self.background:
            if proc.alive():
                os.kill(proc.pid, signal.SIGKILL)
        self._bash.kill()
        self._bash.wait(10)
        for pipe in (self._bash.stdin, self._bash.stdout):
            if pipe is not None:
                pipe.close()


def venv_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a test shell runs in: this checkout's `cityedge` first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", **(extra or {})}
