"""Progress of a long job on stderr: a tqdm bar (rate, ETA) on a terminal, a log line now and then elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_EVERY_S = 30.0  # between log lines when stderr is a file or a pipe: enough to see a job move, not a flood


class Progress:
    def __init__(self, total: int | None, unit: str, *, quiet: bool = False, done: int = 0, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.unit, self.quiet = total, unit, quiet
        self.done = self.start_done = done
        self.started = self.last_log = time.monotonic()
        self.bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit=unit, desc="embedding", file=self.stream, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet and time.monotonic() - self.last_log >= LOG_EVERY_S:
            self.last_log = time.monotonic()
            self._log()

    def _log(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        line = f"embedrt: {self.done}"
        if self.total:
            line += f"/{self.total} {self.unit}s ({100 * self.done / self.total:.0f}%)"
            if rate > 0 and self.total > self.done:
                line += f", ETA {_duration((self.total - self.done) / rate)}"
        else:
            line += f" {self.unit}s"
        print(f"{line}, {rate:.1f} {self.unit}s/s, {_duration(elapsed)} elapsed", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet:
            self._log()  # the last line always says how far the job got


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
