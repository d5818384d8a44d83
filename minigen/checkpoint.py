"""The one checkpoint format: a single .npz holding every array of a nested state (model,
optimiser, random generators) plus a JSON description of everything that is not an array.

Writes are atomic: the file is written beside its destination under a temporary name and
then renamed over it, so a crash mid-write never leaves a half-written checkpoint.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "minigen-checkpoint-1"


class CheckpointError(ValueError):
    pass


def _split(tree, arrays, path):
    """Replace every array in a nested dict/list by a reference into `arrays`."""
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, str):
                raise TypeError(f"checkpoint keys must be strings, got {k!r} at {path}")
        return {k: _split(v, arrays, f"{path}/{k}") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, arrays, f"{path}/{i}") for i, v in enumerate(tree)]
    if isinstance(tree, np.ndarray) or hasattr(tree, "__cuda_array_interface__"):
        key = f"a{len(arrays)}"
        arrays[key] = tree if isinstance(tree, np.ndarray) else tree.get()
        return {"__array__": key}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _join(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


def save(path, state):
    """Write the nested `state` (dicts, lists, arrays, JSON scalars) to `path` atomically."""
    arrays = {}
    meta = json.dumps({"format": FORMAT, "state": _split(state, arrays, "")})
    write_atomically(path, lambda f: np.savez(
        f, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8), **arrays))


def save_array(path, array):
    """Write one array as a .npy file at `path`, atomically (np.load reads it back)."""
    write_atomically(path, lambda f: np.save(f, array))


def write_atomically(path, write):
    """write(f) into a temporary file beside path, then rename it over path: a reader (or
    a run killed half-way) never sees a partial file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}-")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; a plain one is not
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path):
    """The state saved by `save`; a missing, truncated or foreign file is a CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        if not zipfile.is_zipfile(path):  # np.load would try a .npy or a pickle next
            raise CheckpointError(f"{path} is corrupt or not a minigen checkpoint (not a "
                                  f"complete .npz archive)")
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["__meta__"]).decode())
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a minigen checkpoint (format "
                                      f"{meta.get('format') if isinstance(meta, dict) else None!r})")
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except (CheckpointError, PermissionError):
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError,
            json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt or not a minigen checkpoint "
                              f"({type(e).__name__}: {e})") from None
    return _join(meta["state"], arrays)
