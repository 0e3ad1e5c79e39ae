"""LAD-CKM as a CSI predictor: a trained run's network behind ``predict_downlink(h_ul, h_dl)``.

LAD-CKM predicts CSI, not a map: its face is that of the location-agnostic CSI methods of issue 16 (LAD-CKM,
NeRF2, FIRE): it takes a UE's uplink CSI and, when it uses pilots, the true downlink CSI from which only the
pilot pattern is read, and returns the downlink CSI on the measured subcarriers. It declares the downlink
pilot overhead :math:`\\rho` it consumes (:attr:`LadCkmMethod.downlink_pilot_overhead`), which the rate pays.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.models.ladckm.data import LadCkmEncoding
from ckmsim.models.ladckm.train import RUN_INFO


class LadCkmMethod:
    """A trained LAD-CKM, FIRE or NeRF2 (``RUN/best.keras`` and ``RUN/ladckm.json``, :mod:`ckmsim.models.ladckm.train`).

    Parameters
    ----------
    model : the Keras :class:`~ckmsim.models.ladckm.network.LadCkm`
    encoding : LadCkmEncoding of the run
    num_bs_antennas, num_ue_antennas : the arrays it was trained for
    batch_size : UEs per forward pass
    label : name in study tables
    """

    def __init__(self, model, encoding: LadCkmEncoding, num_bs_antennas: int, num_ue_antennas: int,
                 batch_size: int = 16, label: str = "ladckm"):
        self.model, self.encoding = model, encoding
        self.num_bs_antennas, self.num_ue_antennas = int(num_bs_antennas), int(num_ue_antennas)
        self.batch_size = int(batch_size)
        self.label = label
        self.seconds_per_ue = None

    @classmethod
    def from_run(cls, run: str | Path, which: str = "best", **kwargs) -> "LadCkmMethod":
        """A run folder's ``<which>.keras`` (``"best"`` or ``"last"``) with its ``ladckm.json``."""
        run = Path(run)
        return cls.from_files(run / f"{which}.keras", run / RUN_INFO, **kwargs)

    @classmethod
    def from_files(cls, model_path: str | Path, info_path: str | Path, **kwargs) -> "LadCkmMethod":
        """A saved network and its run record (a run folder's, or a shipped set's ``<label>.keras`` and
        ``<label>.json``)."""
        import keras

        import ckmsim.models.fire.network  # noqa: F401  (registers the layers for loading)
        import ckmsim.models.ladckm.network  # noqa: F401
        import ckmsim.models.nerf2.network  # noqa: F401

        model_path, info_path = Path(model_path), Path(info_path)
        for path in (model_path, info_path):
            if not path.is_file():
                raise CkmsimError(f"'{path.parent}' holds no finished LAD-CKM network: {path.name} is missing")
        info = json.loads(info_path.read_text())
        kwargs.setdefault("label", info.get("model_kind", "ladckm"))
        return cls(keras.saving.load_model(model_path, compile=False), LadCkmEncoding(**info["encoding"]),
                   info["num_bs_antennas"], info["num_ue_antennas"], **kwargs)

    @property
    def downlink_pilot_overhead(self) -> float:
        """:math:`\\rho` of the pilot pattern it reads (0 for an uplink-only run)."""
        return self.encoding.pilot_overhead(self.num_bs_antennas, self.num_ue_antennas)

    def predict_downlink(self, h_ul: np.ndarray, h_dl: np.ndarray | None = None) -> np.ndarray:
        """Downlink CSI ``[U, N_used, N_r, N_t]`` complex64 from the uplink CSI ``[U, K, N_t, N_r]`` (and, for a
        run with pilots, the downlink CSI ``[U, K, N_r, N_t]`` of which only the pilots are read)."""
        h_ul = np.asarray(h_ul)
        if h_ul.ndim != 4 or h_ul.shape[2:] != (self.num_bs_antennas, self.num_ue_antennas):
            raise CkmsimError(f"This LAD-CKM was trained for N_t={self.num_bs_antennas}, N_r={self.num_ue_antennas}: "
                              f"h_ul must be [U, K, {self.num_bs_antennas}, {self.num_ue_antennas}]. "
                              f"Received: {h_ul.shape}")
        inputs, scale = self.encoding.encode(h_ul, h_dl)
        started = time.perf_counter()
        out = [np.asarray(self.model({name: values[i:i + self.batch_size] for name, values in inputs.items()}))
               for i in range(0, len(scale), self.batch_size)]
        self.seconds_per_ue = (time.perf_counter() - started) / max(1, len(scale))
        return self.encoding.decode(np.concatenate(out), scale)
