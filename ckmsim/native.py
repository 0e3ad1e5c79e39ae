"""The native libraries under ckmsim: TensorFlow imported without its C++ start-up noise.

(Mitsuba / Dr.Jit are imported by ``ckmsim/__init__.py`` before anything can pull in TensorFlow; see there.)

TensorFlow prints "Unable to register cuDNN factory ..." and similar lines at import, on CPU machines too,
straight to file descriptor 2 and before absl logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach
them. They are no error, but a user reads them as one. :func:`import_tensorflow` imports TensorFlow with
those lines (:data:`TENSORFLOW_NOISE`) dropped and every other line it prints passed on; the CLI's commands
and the tutorial notebooks call it first::

    import ckmsim
    ckmsim.import_tensorflow()
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile

#: TensorFlow's C++ start-up lines that are no error: CUDA plugins registered twice (printed on CPU machines
#: too, before absl logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach them).
TENSORFLOW_NOISE = re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
                              r"All log messages before absl::InitializeLog\(\) is called are written to STDERR")


def import_tensorflow():
    """Import TensorFlow (once) with :data:`TENSORFLOW_NOISE` dropped from stderr; returns the module.

    A no-op returning the module when TensorFlow is already imported. What else the import prints, and
    what it printed when it fails, reaches stderr.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    # The lines come from C++ straight to file descriptor 2, not through sys.stderr
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return importlib.import_module("tensorflow")
        finally:
            # also when the import fails: what it printed is the user's clue
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if not TENSORFLOW_NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
