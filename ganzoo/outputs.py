"""Output files and folders: one rule for everything a command writes to a path the user names:

- An existing output is replaced only with ``overwrite=True`` (``--overwrite``); an empty folder counts as new.
- A symbolic link at the output path is never written through: ``overwrite`` replaces the link itself.
- An output is written under a temporary name and moved into place once complete; failures are a
  :class:`~ganzoo.errors.GanzooError` naming the output.

:func:`check_output` applies the first two before any work; :class:`PendingOutput` (:func:`atomic_file`) writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import GanzooError, UsageError

#: Prefix of the temporary names outputs are written under before they are moved into place.
TMP_PREFIX = ".ganzoo-tmp-"


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parent(path: Path, option: str) -> None:
    """Create the folder ``path`` goes into; a file in the way is the user's mistake, named."""
    for parent in (path.parent, *path.parent.parents):
        if os.path.lexists(parent):
            if not parent.is_dir():
                what = "a symbolic link to no folder" if parent.is_symlink() else "a file"
                raise UsageError(f"{option} {str(path)!r}: {str(parent)!r} is {what}, not a folder; choose another "
                                 f"{option}")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"cannot create the folder of {option} {str(path)!r}: {exc.strerror or exc}") from None


def check_output(path: str | Path, overwrite: bool = False, *, directory: bool = False, option: str = "-o",
                 replaceable: Callable[[Path], str | None] | None = None) -> Path:
    """Check that ``path`` may receive a new output (a folder with ``directory``) under the module's rule, and
    create the folder it goes into; ``replaceable(folder)`` says why a non-empty folder may not be replaced (or
    ``None``). Raises :class:`~ganzoo.errors.UsageError` naming ``option`` and the path."""
    path = Path(path).expanduser()
    what = "folder" if directory else "file"
    _make_parent(path, option)
    if not os.path.lexists(path):
        return path
    if path.is_symlink():
        if not overwrite:
            raise UsageError(f"{option} {str(path)!r} is a symbolic link; ganzoo never writes through one. Pass "
                             f"--overwrite (overwrite=True) to replace the link itself with the new {what} (its "
                             f"target is left alone), or choose another {option}")
        return path
    if not directory:
        if path.is_dir():
            raise UsageError(f"{option} {str(path)!r} is a folder; name a file")
        if not overwrite:
            raise UsageError(f"{option} {str(path)!r} already exists; pass --overwrite (overwrite=True) to replace "
                             f"it, or choose another {option}")
        return path
    if not path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file; name a new or empty folder")
    try:
        if not any(path.iterdir()):
            return path
        if not overwrite:
            raise UsageError(f"{option} {str(path)!r} is a folder that is not empty; pass --overwrite "
                             f"(overwrite=True) to replace it, or give a new or empty folder")
        reason = replaceable(path) if replaceable is not None else None
    except OSError as exc:
        raise GanzooError(f"cannot read the folder {option} {str(path)!r}: {exc.strerror or exc}") from None
    if reason is not None:
        raise UsageError(f"{option} {str(path)!r} is not empty and {reason}; --overwrite does not delete it: "
                         "give a new or empty folder")
    return path


def write_error(path: Path, exc: OSError) -> GanzooError:
    """The error for an output that could not be written (a full disk, no permission), naming it."""
    return GanzooError(f"cannot write {str(path)!r}: {exc.strerror or exc}; nothing was written there (whatever "
                       "was there before is unchanged): free some space or choose another place")


class PendingOutput:
    """A temporary file (or folder) beside ``path`` that :meth:`commit` makes ``path``."""
    def __init__(self, path: str | Path, directory: bool = False) -> None:
        self.path, self.directory = Path(path), directory
        try:
            if directory:
                self.tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.path.parent))
            else:
                fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=self.path.suffix, dir=self.path.parent)
                os.close(fd)
                self.tmp = Path(name)
            os.chmod(self.tmp, (0o777 if directory else 0o666) & ~current_umask())  # mk*temp make 0700 / 0600
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def discard(self) -> None:
        """Remove the temporary file or folder (quietly: this runs while another error is on its way)."""
        if self.directory:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def commit(self) -> Path:
        """Move the finished temporary onto ``path`` (replacing a link or a folder there as a whole)."""
        try:
            if self.directory:
                self._commit_dir()
            else:
                with open(self.tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise write_error(self.path, exc) from None
        return self.path

    def _commit_dir(self) -> None:
        path, old = self.path, None
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():  # out of the way first: a folder that is not empty cannot be replaced by a rename
            old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=path.parent))
            os.replace(path, old / path.name)
        try:
            os.replace(self.tmp, path)
        except OSError:
            if old is not None:
                os.replace(old / path.name, path)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield the temporary path of a :class:`PendingOutput` for ``path``, committed when the block succeeds."""
    pending = PendingOutput(path, directory)
    try:
        yield pending.tmp
    except OSError as exc:
        pending.discard()
        raise write_error(pending.path, exc) from None
    except BaseException:
        pending.discard()
        raise
    pending.commit()
