"""A run directory belongs to one run: a lock while it trains, and no fresh run over another run's files.
:func:`run_lock` holds ``RUN/.lock`` (the owner's pid, host and start time) while a run or a bench writes there;
a lock of a process gone from this host is taken over. :func:`claim_fresh` refuses a new run over another's files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .checkpoint import ATOMIC_TMP_PREFIX, CHECKPOINT_DIR, GENERATOR_FILE, list_checkpoints
from .errors import GanzooError, UsageError
from .runlog import EVENTS_PREFIX, LOG_FILE

LOCK_FILE = ".lock"
#: Files a run writes at the top of its directory; any of them means the directory holds a run.
RUN_FILES = ("config.yaml", LOG_FILE, "result.json", "samples.png", GENERATOR_FILE)


def written_by_a_run(name: str) -> bool:
    """Whether a run directory's entry ``name`` is one a run writes (lock and temporaries included)."""
    return (name in (*RUN_FILES, CHECKPOINT_DIR, "samples", LOCK_FILE) or name.startswith(EVENTS_PREFIX)
            or (name.startswith(f"{LOCK_FILE}.") and name.endswith(".tmp")) or name.startswith(ATOMIC_TMP_PREFIX))


class RunLockedError(GanzooError):
    """Another live process is training in (or benchmarking into) this directory."""


class RunExistsError(UsageError):
    """A fresh run was asked for in a directory that holds another run."""


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        pass
    try:  # Linux: an orphaned worker that died waits as a zombie until something reaps it
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _read_owner(path: Path) -> dict:
    try:
        owner = json.loads(path.read_text(errors="replace")[:4096])
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def _create_with(path: Path, content: str) -> None:
    """Create ``path`` holding ``content`` at once (never empty), or raise ``FileExistsError``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        tmp.write_text(content)
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            raise
        except OSError:  # no hard links here (some network and FUSE file systems)
            pass
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
        except OSError:
            path.unlink(missing_ok=True)
            raise
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``run_dir/.lock`` for the duration of the block (see the module docstring)."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"--out {str(run_dir)!r} is a file, not a directory; choose another --out") from None
    except OSError as exc:
        raise GanzooError(f"cannot create run directory {str(run_dir)!r}: {exc.strerror}") from None
    path = run_dir / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(2):
        try:
            _create_with(path, json.dumps(me))
            break
        except FileExistsError:
            owner = _read_owner(path)
            pid, host = owner.get("pid"), owner.get("host")
            stale = host == me["host"] and isinstance(pid, int) and not _pid_alive(pid)
            if not stale and not (isinstance(pid, int) and isinstance(host, str)):
                raise RunLockedError(f"run directory {str(run_dir)!r} holds a lock file {str(path)!r} that names no "
                                     "process (not one ganzoo wrote); if no run is using this directory, delete the "
                                     "lock file, else choose another --out") from None
            if not stale:
                raise RunLockedError(f"run directory {str(run_dir)!r} is in use by process {pid} on host {host!r} "
                                     f"(since {owner.get('started', '?')}, lock file {str(path)!r}); wait for it to "
                                     "finish or choose another --out. If that process is gone (another host, a "
                                     "crash), delete the lock file.") from None
            path.unlink(missing_ok=True)  # its owner died: take the lock over
        except OSError as exc:  # a read-only folder, a full disk: nothing is left behind to block the next run
            raise GanzooError(f"cannot write lock file {str(path)!r}: {exc.strerror or exc}; free space or choose "
                              "a writable --out") from None
    try:
        yield path
    finally:
        if _read_owner(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def claim_fresh(run_dir: Path, overwrite: bool = False) -> None:
    """Refuse a fresh run in ``run_dir`` holding another run, unless ``overwrite``, which deletes that run's files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {str(run_dir)!r} is a file, not a directory; choose another --out")
    # the run it holds: its latest checkpoint, else its files
    found = list_checkpoints(run_dir) if run_dir.is_dir() else []
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    held = f"checkpoints up to {found[-1].name}" if found else ", ".join(present) or None
    if held is None:
        return
    if not overwrite:
        raise RunExistsError(f"run directory {str(run_dir)!r} already holds a run ({held}); continue it with --resume, "
                             "train into a new --out, or pass --overwrite to delete that run first")
    events = [path.name for path in run_dir.glob(f"{EVENTS_PREFIX}*")]
    for name in (CHECKPOINT_DIR, "samples", *RUN_FILES, *events):
        target = run_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
