"""A run folder belongs to one run.

`minigen train` claims its folder before it writes anything there: it creates the folder
if needed (so an --out that cannot be written is found before training, not after), takes
its lock, and refuses a folder that holds a run unless it resumes that run or was told to
overwrite it. The lock is the file `run.lock`, holding the owner's pid, locked with
flock(2): the kernel drops a flock with the process that held it, so a lock file left
behind by a killed run is known to be stale and is taken over, while a live owner makes a
second process stop with its pid in the message.
"""
import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile

LOCK = "run.lock"
# the files of a run besides the pictures of its samples (which metrics.json lists)
RUN_FILES = ("checkpoint.npz", "log.csv", "metrics.json")
SAMPLE_PICTURES = ("samples.png", "samples.txt")


class RunFolderError(ValueError):
    pass


class RunFolder:
    """The run folder at `path` and what it holds."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def run_files(self):
        """The files of a run in this folder: checkpoint, log, metrics and the pictures that
        metrics.json lists (samples.png where it lists none)."""
        names = list(RUN_FILES) + list(SAMPLE_PICTURES)
        try:
            with open(self.file("metrics.json")) as f:
                names += json.load(f).get("pictures", [])
        except (OSError, ValueError, AttributeError):
            pass
        return [name for name in dict.fromkeys(names) if os.path.isfile(self.file(name))]

    def describe(self):
        """What run this folder holds, for a message: the model, data and step from its
        checkpoint where it can be read, and the run's files."""
        from . import checkpoint
        what = "a run"
        try:
            state = checkpoint.load(self.file("checkpoint.npz"))
            what = (f"a run of {state['model']} on {state['data']} at step {state['step']} "
                    f"of {state['config']['steps']}")
        except (checkpoint.CheckpointError, KeyError, TypeError):
            pass
        return f"{what} ({', '.join(self.run_files())})"

    def clear(self):
        """Remove the files of the run this folder holds (train --overwrite)."""
        for name in self.run_files():
            os.unlink(self.file(name))


@contextlib.contextmanager
def claim(path, resume=False, overwrite=False):
    """Hold the run folder at `path` for one training process: create it (removed again on
    the way out if it is left empty), lock it, and refuse one holding a run unless `resume`
    (continue it) or `overwrite` (the caller replaces it: RunFolder.clear). Yields the
    RunFolder."""
    folder = RunFolder(path)
    if os.path.exists(folder.path) and not os.path.isdir(folder.path):
        raise RunFolderError(f"{folder.path} is a file, not a run folder (--out names the "
                             f"folder a run writes into)")
    if resume and not os.path.isdir(folder.path):
        raise RunFolderError(f"no run to resume: {folder.path} does not exist")
    created = not os.path.exists(folder.path)
    try:
        os.makedirs(folder.path, exist_ok=True)
    except OSError as e:
        raise RunFolderError(f"cannot create the run folder {folder.path}: "
                             f"{e.strerror}") from None
    try:
        with lock(folder.path):
            if not resume and not overwrite and folder.run_files():
                raise RunFolderError(
                    f"{folder.path} holds {folder.describe()}: continue it with --resume, "
                    f"replace it with --overwrite, or train into another --out")
            yield folder
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(folder.path)  # only if nothing was written there


@contextlib.contextmanager
def lock(folder):
    """Hold `folder`'s lock file for the block; a live owner is a RunFolderError naming its
    pid. The file is removed on the way out, while still locked."""
    path = os.path.join(folder, LOCK)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunFolderError(f"{folder} is not writable ({e.strerror}): a run needs to "
                                 f"write there") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "pid unknown"
            os.close(fd)
            raise RunFolderError(f"{folder} is in use by another minigen process ({owner}); "
                                 f"wait for it to end or stop it") from None
        # the owner before us may have removed the file after we opened it: lock it anew
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)  # a stale owner's pid, if any, goes
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


@contextlib.contextmanager
def scratch(folder):
    """A new empty folder inside `folder` for the block, removed with what is left in it:
    pictures are drawn there and then moved to their names, so a model's companion pictures
    never land on files they were not meant for."""
    try:
        path = tempfile.mkdtemp(dir=folder, prefix=".minigen-")
    except OSError as e:
        raise RunFolderError(f"{folder} is not writable ({e.strerror})") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_name(folder, stem, suffix):
    """folder/stem-1.suffix, or -2, -3, ...: the first that does not exist."""
    k = 1
    while os.path.exists(os.path.join(folder, f"{stem}-{k}{suffix}")):
        k += 1
    return os.path.join(folder, f"{stem}-{k}{suffix}")
