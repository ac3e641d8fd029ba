"""Keep TensorFlow's start-up chatter out of what users read, without hiding real errors."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager

__all__ = ["quiet_tensorflow", "QUIET_ENV", "TF_NOISE", "tensorflow_notices_dropped"]

#: environment for any process that imports TensorFlow (kernels and the evaluator)
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

#: TensorFlow's start-up notices, printed by abseil before any log level applies (TensorFlow
#: 2.21 prints them whatever TF_CPP_MIN_LOG_LEVEL says); only these exact lines are dropped,
#: never anything else
TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I0000 [^\n]*\] (oneDNN custom operations are on|This TensorFlow binary is optimized)"
    r"[^\n]*|To enable the following instructions: [^\n]*rebuild TensorFlow[^\n]*)\n?", re.M)


def quiet_tensorflow() -> None:
    """Silence C++ info logs and Python-side retracing notices; errors still propagate.

    Must run before TensorFlow is imported for the C++ part to take effect.
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # absl and tf log their notices at WARNING; exceptions are raised, not logged, so nothing
    # that stops a run is lost here.
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras\.src\..*")


@contextmanager
def tensorflow_notices_dropped():
    """While TensorFlow's libraries load, catch what is written to file descriptor 2 (where
    abseil writes, below Python), then write it back without ``TF_NOISE``'s lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            rest = TF_NOISE.sub("", caught.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
