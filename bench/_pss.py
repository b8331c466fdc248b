"""Memory of a whole study: the driver and every Ray process it started, as PSS.

PSS (proportional set size, /proc/PID/smaps_rollup) splits each shared page between
the processes that map it, so summing it over processes counts an object-store page
once, however many trials read it. RSS would count it once per trial.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(root: int) -> list[int]:
    """`root` and all its descendants (Ray's gcs, raylet and workers descend from the driver)."""
    kids = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _is_trial(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(b"ray::ImplicitFunc")  # a Ray Tune function trial
    except OSError:
        return False


@dataclass
class Sampler:
    """Samples the summed PSS of the driver's process tree in a background thread.

    `peak` is over the whole run; `peak_trials` over samples while at least one trial
    was running (Ray names a running trial's process ``ray::ImplicitFunc...``), and
    `most_trials` the most trials seen running at once.
    """

    interval_s: float = 0.25
    peak: int = 0
    peak_trials: int = 0
    most_trials: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            pids = tree(me)
            total = sum(pss_bytes(p) for p in pids)
            trials = sum(_is_trial(p) for p in pids)
            self.samples += 1
            self.peak = max(self.peak, total)
            if trials:
                self.peak_trials = max(self.peak_trials, total)
                self.most_trials = max(self.most_trials, trials)
            self._stop.wait(self.interval_s)


def baseline_pss() -> int:
    """PSS of this process alone (the driver before Ray starts)."""
    return pss_bytes(os.getpid())


def load_note() -> str:
    """`uptime`'s load averages: other jobs share this machine's CPUs."""
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
        return "load average" + out.split("load average", 1)[1].strip()
    except (OSError, IndexError):
        return "load average unknown"


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"
