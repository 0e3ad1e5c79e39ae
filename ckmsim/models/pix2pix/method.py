"""The conditional baselines as a ckmsim :class:`~ckmsim.baselines.base.Method`: one network call on an
observation's condition image.

``Pix2PixMethod.from_run(RUN)`` loads a run of :func:`~ckmsim.models.pix2pix.train.train_pix2pix` (the
trainer's ``best.keras`` and ``pix2pix.json``): a :class:`~ckmsim.models.pix2pix.network.Pix2Pix`, whose
generator maps the condition image to pixels, or a RadioUNet
(:class:`~ckmsim.models.crossap.network.CrossApUNet`), which does so itself. The method's name is the run's
model (``"pix2pix"`` or ``"radiounet"``). Like CKMDiff, a trained model serves the tasks of its run's
degradations; others are reported as unsupported rather than answered by a network that never saw them.
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
from ckmsim.models.ckmdiff.data import CKMDiffEncoding
from ckmsim.models.ckmdiff.method import trained_task_reason
from ckmsim.models.pix2pix.train import RUN_INFO

#: The trained model of a run (the lowest validation reconstruction loss).
RUN_MODEL_FILE = "best.keras"


class Pix2PixMethod(Method):
    """pix2pix (cGAN) or RadioUNet on CKMDiff's condition image.

    Parameters
    ----------
    run : path of a training run folder (``best.keras`` and ``pix2pix.json``)
    """

    name = "pix2pix"

    def __init__(self, run: str | Path):
        self.run = str(run)
        info = Path(run) / RUN_INFO
        if not info.is_file():
            raise CkmsimError(f"'{run}' is not a pix2pix / RadioUNet run folder: {RUN_INFO} is missing")
        self.info_ = json.loads(info.read_text())
        self.name = self.info_["model"]
        self.encoding_ = CKMDiffEncoding.from_dict(self.info_["encoding"])
        self.tasks_ = tuple(record["task"] for record in self.info_["degradations"])

    @classmethod
    def from_run(cls, run) -> "Pix2PixMethod":
        return cls(run).fit()

    def fit(self, train=None, val=None) -> "Pix2PixMethod":
        """Load the trained network (training itself is :func:`~ckmsim.models.pix2pix.train.train_pix2pix`)."""
        import keras

        from ckmsim.models.crossap.network import CrossApUNet
        from ckmsim.models.pix2pix.network import Pix2Pix  # registers the layers too

        path = Path(self.run) / RUN_MODEL_FILE
        if not path.is_file():
            raise CkmsimError(f"{self.name} run '{self.run}' has no trained model ({path} is missing)")
        model = keras.saving.load_model(path, compile=False)
        if isinstance(model, Pix2Pix):
            self.network_ = model.generator
        elif isinstance(model, CrossApUNet):
            self.network_ = model
        else:
            raise CkmsimError(f"{path} holds a {type(model).__name__}, not a Pix2Pix or RadioUNet model")
        return self

    def unsupported_reason(self, observation: Observation) -> str | None:
        reason = trained_task_reason(self.name, self.tasks_, observation)
        if reason is not None:
            return reason
        multiple = getattr(getattr(self, "network_", None), "size_multiple", 1)
        shape = observation.grid.shape
        if any(n % multiple for n in shape):
            return f"{self.name}: the grid {shape} is not a multiple of {multiple} cells (the network's down-sampling)"
        return None

    def predict_pixels(self, observation: Observation) -> np.ndarray:
        """The network's ``[num_y, num_x]`` pixels (not clipped) for one observation, float32."""
        if not hasattr(self, "network_"):
            raise CkmsimError(f"{self.name}: call fit() before predict() (it loads the trained model)")
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(reason)
        # [1, num_y, num_x, 3] -> [1, num_y, num_x, 1]
        cond = self.encoding_.condition(observation)[None]
        return np.asarray(self.network_(cond, training=False))[0, ..., 0]

    def predict(self, observation: Observation) -> xr.Dataset:
        building = np.asarray(observation.building, dtype=bool)
        gain_db = np.where(building, np.nan, self.encoding_.gain_db(self.predict_pixels(observation)))
        return make_ckm(observation.grid, {"gain_db": gain_db, "building": building},
                        self._prediction_attrs(observation))
