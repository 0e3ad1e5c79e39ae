"""CKMDiff as a ckmsim :class:`~ckmsim.baselines.base.Method`: Alg. 2 on an observation's condition image.

``CKMDiffMethod.from_run(RUN)`` loads a run of :func:`~ckmsim.models.ckmdiff.train.train_ckmdiff` (the
diffusion stage's best model, which holds the frozen VAE and the condition encoder, and ``ckmdiff.json``).
:meth:`CKMDiffMethod.predict_samples` draws ``K`` maps per observation (seeded); :meth:`predict` returns
their per-cell mean in dB (``num_samples = 1``: one draw), building cells NaN. A trained model serves the
tasks it was trained on (the degradations of its run); other tasks are reported as unsupported rather than
answered by a network that never saw them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.baselines.base import Method
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import Observation
from ckmsim.models.ckmdiff import diffusion
from ckmsim.models.ckmdiff.data import CKMDiffEncoding
from ckmsim.models.ckmdiff.train import RUN_INFO
from ckmsim.validation import is_whole_number

#: Task name of the unconditional model (A = 0): an observation with no observed cell.
GENERATION_TASK = "generation"
#: The model of a training run (the diffusion stage's best) and of a shipped folder (no optimizer state).
RUN_MODEL_FILE = "ddm/best.keras"
SHIPPED_MODEL_FILE = "ckmdiff.keras"


def task_of(observation: Observation) -> str:
    """The observation's task, :data:`GENERATION_TASK` when no cell is observed (A = 0)."""
    return GENERATION_TASK if not np.asarray(observation.observed).any() else observation.task


def trained_task_reason(name: str, tasks, observation: Observation) -> str | None:
    """Why a gain network trained for ``tasks`` cannot complete ``observation`` (None when it can): a task it
    never saw, or no gain layer."""
    task = task_of(observation)
    if task not in tasks:
        return f"{name}: trained for tasks {list(tasks)}, not '{task}' (train a run with that degradation)"
    if "gain_db" not in observation.values:
        return f"{name}: the observation has no gain_db layer"
    return None


class CKMDiffMethod(Method):
    """Conditional latent decoupled diffusion (CKMDiff, Alg. 2).

    Parameters
    ----------
    run : path of a training run folder (``ddm/best.keras`` and ``ckmdiff.json``) or of a shipped one
        (``ckmdiff.keras`` and ``ckmdiff.json``, :func:`ckmsim.models.pretrained.pretrained_ckmdiff`)
    num_steps : int
        Sampling steps ``S`` of Alg. 2 (``1``: one network call, the posterior-mean estimate of ``z_0``).
    num_samples : int
        Maps drawn per observation; the prediction is their mean in dB.
    seed : int
        Seed of the sampler's noise (the same observation and seed give the same map).
    """

    name = "ckmdiff"

    def __init__(self, run: str | Path, num_steps: int = 10, num_samples: int = 1, seed: int = 0):
        for label, value in (("num_steps", num_steps), ("num_samples", num_samples)):
            if not is_whole_number(value, minimum=1):
                raise CkmsimError(f"{label} must be a positive integer. Received: {label}={value!r}")
        self.run = str(run)
        self.num_steps = int(num_steps)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        info = Path(run) / RUN_INFO
        if not info.is_file():
            raise CkmsimError(f"'{run}' is not a CKMDiff run folder: {RUN_INFO} is missing")
        self.info_ = json.loads(info.read_text())
        self.encoding_ = CKMDiffEncoding.from_dict(self.info_["encoding"])
        self.tasks_ = tuple(r.get("task", GENERATION_TASK) for r in self.info_["degradations"])

    @classmethod
    def from_run(cls, run, **kwargs) -> "CKMDiffMethod":
        return cls(run, **kwargs).fit()

    def fit(self, train=None, val=None) -> "CKMDiffMethod":
        """Load the trained model (training itself is :func:`~ckmsim.models.ckmdiff.train.train_ckmdiff`)."""
        import keras

        from ckmsim.models.ckmdiff.network import LatentDiffusion  # registers the layers too

        path = self.model_file()
        if not path.is_file():
            raise CkmsimError(f"CKMDiff run '{self.run}' has no trained diffusion model ({path} is missing)")
        model = keras.saving.load_model(path, compile=False)
        if not isinstance(model, LatentDiffusion):
            raise CkmsimError(f"{path} holds a {type(model).__name__}, not a CKMDiff LatentDiffusion model")
        self.model_ = model
        return self

    def model_file(self) -> Path:
        """The trained model: a run's ``ddm/best.keras``, else a shipped folder's ``ckmdiff.keras``."""
        shipped = Path(self.run) / SHIPPED_MODEL_FILE
        return shipped if shipped.is_file() else Path(self.run) / RUN_MODEL_FILE

    def task_of(self, observation: Observation) -> str:
        return task_of(observation)

    def unsupported_reason(self, observation: Observation) -> str | None:
        reason = trained_task_reason(self.name, self.tasks_, observation)
        if reason is not None:
            return reason
        shape = observation.grid.shape
        if any(n % 4 for n in shape):
            return f"{self.name}: the grid {shape} is not a multiple of 4 cells (the VAE down-samples x4)"
        return None

    def predict_samples(self, observation: Observation, num_samples: int | None = None,
                        seed: int | None = None, num_steps: int | None = None) -> np.ndarray:
        """``[K, num_y, num_x]`` gain [dB] of ``K`` draws of Alg. 2 (buildings NaN), float64.

        ``num_samples``, ``seed`` and ``num_steps`` override the method's own for this call (e.g. a sweep
        over the sampling steps with one loaded network)."""
        if num_steps is not None and not is_whole_number(num_steps, minimum=1):
            raise CkmsimError(f"num_steps must be a positive integer. Received: num_steps={num_steps!r}")
        if not hasattr(self, "model_"):
            raise CkmsimError(f"{self.name}: call fit() before predict() (it loads the trained model)")
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(reason)
        count = self.num_samples if num_samples is None else int(num_samples)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        cond = np.repeat(self.encoding_.condition(observation)[None], count, axis=0)
        gain_db = self.encoding_.gain_db(self.sample_pixels(cond, rng, num_steps)[..., 0])
        return np.where(np.asarray(observation.building, dtype=bool)[None], np.nan, gain_db)

    def sample_pixels(self, cond: np.ndarray, rng: np.random.Generator, num_steps: int | None = None) -> np.ndarray:
        """Alg. 2 then the VAE decoder, one draw per condition image: ``[K, H, W, 3] -> [K, H, W, 1]`` decoded
        pixels (not clipped), drawing the sampler's noise from ``rng``, in ``num_steps`` steps (default: the
        method's)."""
        model = self.model_
        features = model.condition_features(cond) if model.cond_encoder is not None else []
        count, num_y, num_x = cond.shape[:3]

        def predict(z_t, t):
            c, eps = model.predict_c_eps(z_t, t, features)
            return np.asarray(c), np.asarray(eps)

        shape = (count, num_y // 4, num_x // 4, model.vae.latent_channels)
        steps = self.num_steps if num_steps is None else int(num_steps)
        return np.asarray(model.decode(diffusion.sample(predict, shape, steps, rng)))

    def predict(self, observation: Observation) -> xr.Dataset:
        samples = self.predict_samples(observation)
        # mean of the draws in dB (buildings stay NaN)
        gain_db = samples.mean(axis=0)
        return make_ckm(observation.grid, {"gain_db": gain_db, "building": np.asarray(observation.building)},
                        self._prediction_attrs(observation))
