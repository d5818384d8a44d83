"""minigen.memory: importing minigen leaves malloc alone; mg.keep_freed_memory() asks glibc
to keep freed memory, unless the user says otherwise."""
import subprocess
import sys

import pytest

IMPORT_ONLY = "import minigen; print(minigen.memory.tuned)"
CALL = "import minigen as mg; print(mg.keep_freed_memory(), mg.memory.tuned)"


def run(check, env_extra):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")
           and k != "MINIGEN_MALLOC"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_import_leaves_malloc_alone():
    assert run(IMPORT_ONLY, {}) == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_keep_freed_memory_tunes_glibc_malloc_unless_told_not_to():
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").gnu_get_libc_version
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert run(CALL, {}) == "True True"
    assert run(CALL, {"MINIGEN_MALLOC": "system"}) == "False False"
    assert run(CALL, {"MALLOC_ARENA_MAX": "2"}) == "False False"  # the user tunes malloc
