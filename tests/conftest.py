"""Fixtures shared by the test modules."""

import contextlib
import logging
import os
import re
import signal
import tempfile

# No test reaches the Hugging Face Hub: huggingface_hub reads this when it is first imported, so
# it is set before any test module imports it (the package tests read hf:// names from a
# hand-made cache).
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch

from rrn.data import make_synthetic_dataset


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run every test on one intra-op thread.

    The tensors in tests are tiny: OpenMP's thread hand-offs cost more than they save, and far
    more when another process holds the second core (a 16-unit GRU step: 1.5 ms on 1 thread,
    280 ms on 2; the quick demo: 6 s vs 30 s). One thread also makes CPU kernels bitwise
    reproducible, which the equality tests rely on.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_acts():
    """Ctrl-C behaves as in a terminal, however the suite was started.

    A shell without job control starts a background command (``make test &``, ``nohup``) with
    SIGINT ignored; Python then never installs its handler, and the processes tests start
    inherit the ignored signal: the tests of Ctrl-C would fail for a reason outside rrn.
    A handled signal is reset to its default in a child at exec, so this reaches them too.
    """
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True, scope="session")
def rrn_cache_home():
    """rrn's cache (the ONNX exports of the onnxruntime engine) in a folder of the session's,
    removed at its end: the suite leaves nothing in ~/.cache. Set in the environment, so the
    `rrn stream` and `rrn serve` processes that tests start share it."""
    before = os.environ.get("RRN_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="rrn-test-cache-") as folder:
        os.environ["RRN_CACHE_HOME"] = folder
        yield folder
        if before is None:
            del os.environ["RRN_CACHE_HOME"]
        else:
            os.environ["RRN_CACHE_HOME"] = before


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """2 classes x 4 videos of 6 frames at 32 px (`rrn synth`): 4 train and 4 test videos."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), classes=2, videos_per_class=4, frames=6, size=32, seed=0
    )


@pytest.fixture
def logs_warning(caplog):
    """``pytest.warns`` for the library's warnings, which are logged (WARNING, logger ``rrn``):
    ``with logs_warning(r"regex"): ...`` fails unless a warning logged inside matches."""

    @contextlib.contextmanager
    def expect(match: str = ""):
        start = len(caplog.records)
        with caplog.at_level(logging.WARNING, logger="rrn"):
            yield
        said = [r.getMessage() for r in caplog.records[start:] if r.levelno >= logging.WARNING]
        assert any(re.search(match, m) for m in said), f"no warning matching {match!r}: {said}"

    return expect
