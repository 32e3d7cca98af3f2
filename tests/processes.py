"""Test-only processes: torchrun with two CPU ranks, killed as a group on a timeout."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def torchrun_two(*args: str, timeout: float = 300) -> None:
    """Run ``torchrun --standalone --nproc_per_node 2 ARGS`` (gloo, one thread per rank) and
    assert it succeeded. The run gets a session of its own, so that on a timeout
    its workers die with it instead of lingering."""
    beside = Path(sys.executable).with_name("torchrun")
    runner = str(beside) if beside.exists() else shutil.which("torchrun")
    proc = subprocess.Popen(
        [runner, "--standalone", "--nproc_per_node", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
