"""minigen.memory: glibc is asked to keep freed memory, unless the user says otherwise."""
import subprocess
import sys

import pytest

CHECK = "import minigen; print(minigen.memory.tuned)"


def run(env_extra):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")
           and k != "MINIGEN_MALLOC"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_import_tunes_glibc_malloc_unless_told_not_to():
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").gnu_get_libc_version
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert run({}) == "True"
    assert run({"MINIGEN_MALLOC": "system"}) == "False"
    assert run({"MALLOC_ARENA_MAX": "2"}) == "False"   # the user tunes malloc: left alone
