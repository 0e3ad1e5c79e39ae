"""ckmsim: channel knowledge maps on ray-traced ground truth, scored by map error and achievable rate.

Import order matters: Mitsuba/Dr.Jit are imported before anything pulls in TensorFlow, because with
some TensorFlow releases XLA segfaults when the two LLVM runtimes are loaded the other way round.
"""

import os

# TensorFlow's C++ start-up chatter hides ckmsim's own messages; users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import drjit  # noqa: E402,F401  (see module docstring: must precede TensorFlow)
import mitsuba  # noqa: E402,F401

from ckmsim.errors import CkmsimError  # noqa: E402
from ckmsim.native import import_tensorflow  # noqa: E402  (defines a function; TensorFlow is not imported)

__version__ = "0.1.0"
__all__ = ["CkmsimError", "import_tensorflow", "__version__"]
