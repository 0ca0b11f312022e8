"""The on-disk cache: processes that need the same entry at once build it once (the ranks of a torchrun job)."""

import os
import subprocess
import sys
from pathlib import Path

_BUILD = """
import sys, time
import numpy as np
from augdiff.data.cache import cached_rows

def build():
    with open(sys.argv[1], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one builds
    return np.arange(12).reshape(4, 3), np.arange(6).reshape(2, 3)

train, valid = cached_rows("same-entry", build)
assert train.tolist() == np.arange(12).reshape(4, 3).tolist() and valid.shape == (2, 3)
"""


def test_two_processes_asking_for_one_entry_build_it_once(tmp_path):
    log = tmp_path / "builds.log"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "AUGDIFF_CACHE": str(tmp_path / "cache"), "PYTHONPATH": src}
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(log)], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert log.read_text().splitlines() == ["built"]
