"""Keep TensorFlow's start-up chatter out of what users read, without hiding real errors."""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["quiet_tensorflow", "QUIET_ENV"]

#: environment for any process that imports TensorFlow (kernels and the evaluator)
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


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
