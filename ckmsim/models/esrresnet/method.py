"""E-SRResNet as a ckmsim :class:`~ckmsim.baselines.base.Method`: trained path networks behind fit/predict.

Two networks complete the two dominant paths (Sec. V-A): the primary-path model PGM_1/PAM_1, the
secondary-path model PGM_2/PAM_2, each from its own low-resolution input
(:class:`~ckmsim.models.esrresnet.data.LowResPathEncoder`). What the paper's networks do not predict comes
from a stated simple rule: **bicubic interpolation** of the same lattice (:class:`~ckmsim.baselines.Bicubic`)
for ``gain_db``, ``aoa_el_deg``, ``toa_s`` and any path beyond the networks' (and for path 1 when no
secondary model is given). The SCM of eq. (6) then follows from the predicted PGM/PAM of both paths.

The method needs the x``factor`` uniform sub-sampling task (``Observation.factor == factor``), the observed
``path_gain_db`` and ``aoa_az_deg``, and the BS position and carrier frequency in the observation's attrs
(for the BS map and the Friis LoS test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.baselines.base import Method
from ckmsim.baselines.interpolation import Bicubic
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import Observation
from ckmsim.models.esrresnet.data import PRIOR_SETS, LowResPathEncoder, decode_path_maps


class ESRResNetMethod(Method):
    """Trained E-SRResNet (or SRResNet) path networks as a CKM construction method.

    Parameters
    ----------
    primary : str, Path or keras.Model
        The primary-path network (a ``.keras`` file or a model), input channels ``2 + len(primary_priors)``.
    secondary : str, Path, keras.Model or None
        The secondary-path network; None: path 1 from bicubic interpolation.
    primary_priors, secondary_priors : tuple of str
        Priors of each network's input (:data:`~ckmsim.models.esrresnet.data.PRIOR_SETS`).
    factor : int
        Sub-sampling step the networks were trained for (2).
    label : str
        Name written to the predictions' ``method`` attribute (e.g. ``"srresnet"`` for the plain baseline).
    keep_observed : bool
        Data consistency: the observed lattice cells keep their measured PGM/PAM and the networks fill the
        others (as every interpolator does). The paper takes the network output everywhere (False); a network
        never reproduces its input exactly, and with a 64-element array an angle off by a beamwidth
        (about 2 deg) already loses most of the SCM similarity of eq. (9) at a measured cell.

    Learned state after :meth:`fit`: ``models_`` (the loaded networks, one per path) and ``encoders_``.
    """

    name = "esrresnet"
    #: Reads its predicted map at the UE's position: no downlink pilot (see ``Method.downlink_pilot_overhead``)
    downlink_pilot_overhead = 0.0

    def __init__(self, primary, secondary=None, primary_priors=PRIOR_SETS["primary"],
                 secondary_priors=PRIOR_SETS["secondary"], factor: int = 2, label: str = "esrresnet",
                 keep_observed: bool = True):
        self.primary = primary
        self.secondary = secondary
        self.primary_priors = tuple(primary_priors)
        self.secondary_priors = tuple(secondary_priors)
        self.factor = factor
        self.label = label
        self.name = label
        self.keep_observed = bool(keep_observed)

    def fit(self, train=None, val=None) -> "ESRResNetMethod":
        """Load the trained networks (training itself is :func:`ckmsim.models.esrresnet.train.train_esrresnet`).

        ``train`` and ``val`` are ignored: the networks are trained once, offline, on a dataset store.
        """
        sources = [(0, self.primary, self.primary_priors)]
        if self.secondary is not None:
            sources.append((1, self.secondary, self.secondary_priors))
        self.models_, self.encoders_ = [], []
        for path, source, priors in sources:
            model = _load(source)
            encoder = LowResPathEncoder(path=path, priors=priors, factor=self.factor)
            channels = int(model.input_shape[-1])
            if channels != encoder.num_input_channels:
                raise CkmsimError(f"The path-{path} network takes {channels} input channels, but priors {priors} "
                                  f"give {encoder.num_input_channels}. Received: priors={priors!r}")
            self.models_.append(model)
            self.encoders_.append(encoder)
        return self

    def unsupported_reason(self, observation: Observation) -> str | None:
        encoders = getattr(self, "encoders_", None) or [LowResPathEncoder(0, self.primary_priors, self.factor)]
        for encoder in encoders:
            reason = encoder.unsupported_reason(observation)
            if reason is not None:
                return f"{self.name}: {reason}"
        return Bicubic().unsupported_reason(observation)

    def predict(self, observation: Observation) -> xr.Dataset:
        """Complete PGM and PAM of the networks' paths; the other layers by bicubic interpolation.

        Input
        -----
        observation : Observation of the x``factor`` sub-sampling task (see the module docstring)

        Output
        ------
        ckm : xarray.Dataset
            ``path_gain_db`` and ``aoa_az_deg`` of paths 0 (and 1) from the networks, every other float layer
            of the observation from :class:`~ckmsim.baselines.Bicubic`, ``building``; attrs ``method``, ``task``.
        """
        if not hasattr(self, "models_"):
            raise CkmsimError(f"{self.name}: call fit() before predict() (it loads the trained networks)")
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(reason)
        base = Bicubic().predict(observation)
        variables = {name: base[name].values.copy() for name in base.data_vars}
        for model, encoder in zip(self.models_, self.encoders_):
            # [1, h, w, c_in] -> [1, factor h, factor w, 2]
            pixels = np.asarray(model(encoder.inputs(observation)[None], training=False))[0]
            gain_db, az_deg = decode_path_maps(pixels, observation.building)
            if self.keep_observed:
                seen = observation.observed
                gain_db = np.where(seen, observation.values["path_gain_db"].values[encoder.path], gain_db)
                az_deg = np.where(seen, observation.values["aoa_az_deg"].values[encoder.path], az_deg)
            variables["path_gain_db"][encoder.path] = gain_db
            variables["aoa_az_deg"][encoder.path] = az_deg
        return make_ckm(observation.grid, variables, self._prediction_attrs(observation))


def _load(source):
    """A Keras model from a model object or a ``.keras`` path."""
    if isinstance(source, (str, Path)):
        from ckmsim.models.esrresnet.network import load_esrresnet

        return load_esrresnet(source)
    if not hasattr(source, "input_shape"):
        raise CkmsimError(f"Expected a .keras path or a Keras model. Received: {type(source).__name__}")
    return source
