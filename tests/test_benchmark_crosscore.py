"""benchmarks/crosscore.py, the probe for stretches in which one core reads the other's
writes slowly: its variants compute what they say, a slow round is told apart, and a short
run prints its rounds and summary."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import crosscore, flow  # noqa: E402


def test_variants_compute_the_coupling_and_its_sum():
    x, s, t, _, _ = flow.operands()
    want = x * np.exp(s) + t + np.exp(s)
    calls = crosscore.variants()
    assert list(calls) == list(crosscore.VARIANTS)
    for name in ("+numpy", "+rows", "serial"):
        np.testing.assert_allclose(calls[name](), want, rtol=1e-5, atol=1e-5)
    from minigen.kernels.coupling import cpu
    assert cpu.PARALLEL_MIN == 1 << 14  # the serial variant puts the threshold back


def test_summary_counts_slow_rounds():
    fast = {"kernel": 85, "+numpy": 112, "+rows": 110, "serial": 183}
    slow = dict(fast, **{"+numpy": 550})
    assert not crosscore.is_slow(fast) and crosscore.is_slow(slow)
    lines = crosscore.summary([fast, fast, slow])
    assert lines[-1] == "slow rounds (+numpy over 2 x +rows): 1 of 3"
    assert "median    112 us" in lines[1] and "largest    550" in lines[1]


def test_a_short_run_prints_rounds_and_summary(capsys, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")  # main sets it; put back afterwards
    assert crosscore.main(["--seconds", "0.05", "--calls", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["time", "kernel", "+numpy", "+rows", "serial"]
    assert out[-1].startswith("slow rounds") and len(out) >= 7


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--calls", "0"], ["--threads", "0"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as e:
        crosscore.main(argv)
    assert e.value.code == 2
