"""Whether a process still runs: what tells a killed writer's leftovers from a live writer's work; and this process's memory.

Work dirs in the temp dir carry their process's PID (work_dir()); clean_stale_work_dirs() removes those of dead ones.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_WORK_DIR = re.compile(r"^embedrt-(?:fp32|build|int8|triton)-(?P<pid>\d+)-")


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists here (a reused PID counts as alive: its files are kept, never a live run's lost)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:
        return False
    return True


def resident_bytes() -> int | None:
    """This process's resident memory now (RSS), where the system says (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def work_dir(stage: str) -> tempfile.TemporaryDirectory:
    """A temporary dir for one stage ('fp32', 'build', 'int8' of an export; 'triton' for a server's backends), named
    with this PID so that clean_stale_work_dirs() can remove it if this process is killed."""
    return tempfile.TemporaryDirectory(prefix=f"embedrt-{stage}-{os.getpid()}-")


def clean_stale_work_dirs() -> list[Path]:
    """Remove the work_dir()s of dead processes from the temp dir; returns them."""
    done = []
    try:
        children = list(Path(tempfile.gettempdir()).iterdir())
    except OSError:
        return done
    for path in children:
        match = _WORK_DIR.match(path.name)
        if match and path.is_dir() and not path.is_symlink() and not pid_alive(int(match["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            done.append(path)
    return done
