"""Whether a process still runs: what tells a killed writer's leftovers from a live writer's work."""

from __future__ import annotations

import os


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
