"""E-SRResNet as a ckmsim :class:`~ckmsim.baselines.base.Method`: trained path networks behind fit/predict.

Two networks complete the two dominant paths (Sec. V-A): the primary-path model PGM_1/PAM_1, the
secondary-path model PGM_2/PAM_2, each from its own encoding
(:class:`~ckmsim.models.esrresnet.data.PathSREncoder`, rebuilt from the settings the network was trained
with). Each network corrects ckmsim's bicubic interpolation of the same lattice, which also gives what the
paper's networks do not predict: ``gain_db``, ``aoa_el_deg``, ``toa_s``, the departure angles and any path
beyond the networks' (and path 1 when no secondary model is given). The SCM of eq. (6) then follows from the
predicted PGM/PAM of both paths.

The method needs a uniform sub-sampling task, the observed ``path_gain_db`` and ``aoa_az_deg``, and the BS
position and carrier frequency in the observation's attrs. The networks are trained for one step ``factor``
(2): a coarser lattice (x4 with x2 networks, any multiple of ``factor``) is a documented cascade, in which
ckmsim's bicubic interpolation first fills the networks' own lattice from the observed one
(:func:`cascade_observation`) and the networks then super-resolve that lattice to the full grid.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.baselines.base import Method
from ckmsim.baselines.interpolation import Bicubic
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.degrade import Degradation, Observation, Subsample
from ckmsim.models.esrresnet.data import PRIOR_SETS, PathSREncoder
from ckmsim.models.esrresnet.snap import Snap, neighbour_azimuths, snap_azimuth, tune_snap


class ESRResNetMethod(Method):
    """Trained E-SRResNet (or SRResNet) path networks as a CKM construction method.

    Parameters
    ----------
    primary : str, Path or keras.Model
        The primary-path network (a ``.keras`` file or a model).
    secondary : str, Path, keras.Model or None
        The secondary-path network; None: path 1 from bicubic interpolation.
    primary_encoder, secondary_encoder : PathSREncoder, dict or None
        The encoding each network was trained with (a dict is :meth:`PathSREncoder.to_dict`, as stored in a
        run's provenance). None: the default encoder of path 0 (primary priors) or path 1 (secondary priors)
        at ``factor``.
    factor : int
        Sub-sampling step of the default encoders (2).
    label : str
        Name written to the predictions' ``method`` attribute (e.g. ``"srresnet"`` for the plain baseline).
    keep_observed : bool
        Data consistency: the observed lattice cells keep their measured PGM/PAM and the networks fill the
        others (as every interpolator does). The paper takes the network output everywhere (False).
    snaps : sequence of (Snap, dict or None), one per network, or None
        Snap decoding of each network's azimuths (:mod:`ckmsim.models.esrresnet.snap`, chosen on a validation
        city by :func:`tune_snaps`); None: the networks' azimuths as they are.

    Learned state after :meth:`fit`: ``models_`` (the loaded networks, one per path) and ``encoders_``.
    """

    name = "esrresnet"
    #: Reads its predicted map at the UE's position: no downlink pilot (see ``Method.downlink_pilot_overhead``)
    downlink_pilot_overhead = 0.0

    def __init__(self, primary, secondary=None, primary_encoder=None, secondary_encoder=None, factor: int = 2,
                 label: str = "esrresnet", keep_observed: bool = True, snaps=None):
        self.primary = primary
        self.secondary = secondary
        self.primary_encoder = _encoder(primary_encoder, PathSREncoder(0, PRIOR_SETS["primary"], factor))
        self.secondary_encoder = _encoder(secondary_encoder, PathSREncoder(1, PRIOR_SETS["secondary"], factor))
        self.factor = self.primary_encoder.factor
        self.label = label
        self.name = label
        self.keep_observed = bool(keep_observed)
        self.snaps = [] if snaps is None else [_snap(value) for value in snaps]
        if len(self.snaps) > 2:
            raise CkmsimError(f"snaps has one entry per network (at most 2). Received: {len(self.snaps)}")

    def fit(self, train=None, val=None) -> "ESRResNetMethod":
        """Load the trained networks (training itself is :func:`ckmsim.models.esrresnet.train.train_esrresnet`).

        ``train`` and ``val`` are ignored: the networks are trained once, offline, on a dataset store.
        """
        sources = [(self.primary, self.primary_encoder)]
        if self.secondary is not None:
            sources.append((self.secondary, self.secondary_encoder))
        self.models_, self.encoders_ = [], []
        for source, encoder in sources:
            model = _load(source)
            channels = [int(shape[-1]) for shape in input_shapes(model)]
            expected = [encoder.num_input_channels, encoder.num_output_channels, encoder.num_guide_channels]
            if channels != expected:
                raise CkmsimError(f"The path-{encoder.path} network takes inputs of {channels} channels, but its "
                                  f"encoder (priors {list(encoder.priors)}) gives {expected}: not the encoding it "
                                  f"was trained with")
            self.models_.append(model)
            self.encoders_.append(encoder)
        return self

    def unsupported_reason(self, observation: Observation) -> str | None:
        encoders = getattr(self, "encoders_", None) or [self.primary_encoder]
        if observation.factor is not None and observation.factor != self.factor \
                and observation.factor % self.factor == 0:
            # the cascade (cascade_observation) changes only the lattice step of what the encoders check
            observation = replace(observation, factor=self.factor)
        for encoder in encoders:
            reason = encoder.unsupported_reason(observation)
            if reason is not None:
                return f"{self.name}: {reason}"
        return Bicubic().unsupported_reason(observation)

    def predict(self, observation: Observation) -> xr.Dataset:
        """Complete PGM and PAM of the networks' paths; the other layers by bicubic interpolation.

        Input
        -----
        observation : Observation of the x``factor`` sub-sampling task, or of a multiple of ``factor``
            (cascade, see the module docstring)

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
        attrs = self._prediction_attrs(observation)
        if observation.factor != self.factor:
            observation = cascade_observation(observation, self.factor)
        bicubic = Bicubic().predict(observation)
        variables = {name: bicubic[name].values.copy() for name in bicubic.data_vars}
        candidates = {}  # radius [cells] -> the observed neighbour azimuths, shared by both networks
        for index, (model, encoder) in enumerate(zip(self.models_, self.encoders_)):
            inputs = encoder.inputs(observation, bicubic=bicubic)
            # {name: [1, ...]} -> [1, H, W, 4]
            output = np.asarray(model({name: value[None] for name, value in inputs.items()}, training=False))[0]
            gain_db, az_deg = encoder.decode(output, observation, keep_observed=self.keep_observed)
            snap = self.snaps[index] if index < len(self.snaps) else None
            if snap is not None:
                if snap.radius_cells not in candidates:
                    candidates[snap.radius_cells] = neighbour_azimuths(observation.values["aoa_az_deg"].values,
                                                                       observation.observed, snap.radius_cells)
                az_deg = snap_azimuth(az_deg, bicubic["aoa_az_deg"].values[encoder.path],
                                      candidates[snap.radius_cells], snap)
            variables["path_gain_db"][encoder.path] = gain_db
            variables["aoa_az_deg"][encoder.path] = az_deg
        return make_ckm(observation.grid, variables, attrs)


def cascade_observation(observation: Observation, factor: int) -> Observation:
    """The x``factor`` lattice of a coarser sub-sampling task, filled by ckmsim's bicubic interpolation.

    Every open cell of the x``factor`` lattice that the x``observation.factor`` lattice does not hold gets the
    :class:`~ckmsim.baselines.Bicubic` prediction of every observed layer; the measured cells keep their
    values (the spline interpolates them). The result is the x``factor`` task a network trained at
    ``factor`` completes; its ``task`` and ``degradation`` stay those of the original observation.

    Input
    -----
    observation : Observation with ``factor`` a multiple (> 1) of ``factor``
    factor : int
        The lattice step of the networks (2).

    Output
    ------
    Observation with ``factor = factor``, ``observed`` the open cells of the finer lattice, ``operator`` None
    """
    if observation.factor is None or observation.factor % factor or observation.factor == factor:
        raise CkmsimError(f"A cascade to the x{factor} lattice needs a coarser lattice whose step is a multiple "
                          f"of {factor}. Received: factor={observation.factor}")
    predicted = Bicubic().predict(observation)
    rows, cols = observation.grid.downsampled_indices(factor)
    lattice = np.zeros(observation.grid.shape, dtype=bool)
    lattice[np.ix_(rows, cols)] = True
    filled = lattice & ~observation.building & ~observation.observed
    values = observation.values.copy(deep=True)
    for name, layer in values.data_vars.items():
        if name in predicted and np.issubdtype(layer.dtype, np.floating):
            layer.values[...] = np.where(filled, predicted[name].values, layer.values)
    return replace(observation, values=values, observed=observation.observed | filled, factor=factor,
                   operator=None)


def tune_snaps(method: ESRResNetMethod, truths, factor: int, num_ant: int = 64,
               rmse_ratio: float = 0.98) -> tuple[list, list]:
    """Snap settings for each network of a fitted method, chosen on validation CKMs (:func:`.snap.tune_snap`).

    Scored cells: open, not measured, where the true path exists with an azimuth (Table I's cells).

    Input
    -----
    method : fitted ESRResNetMethod (its own ``snaps`` are ignored)
    truths : iterable of ground-truth CKMs of a validation city
    factor : int, the sub-sampling step to tune for

    Output
    ------
    (snaps, tables): one Snap or None per network, and the scores of every setting tried
    """
    plain = ESRResNetMethod(method.models_[0], method.models_[1] if len(method.models_) > 1 else None,
                            *method.encoders_, keep_observed=method.keep_observed).fit()
    cells = {encoder.path: ([], [], [], []) for encoder in plain.encoders_}
    for truth in truths:
        observation = Degradation([Subsample(factor)])(truth)
        network, bicubic = plain.predict(observation), Bicubic().predict(observation)
        lattice = cascade_observation(observation, plain.factor) if factor != plain.factor else observation
        candidates = neighbour_azimuths(lattice.values["aoa_az_deg"].values, lattice.observed, 2)
        for path, (net_az, bic_az, cand, true_az) in cells.items():
            true = truth["aoa_az_deg"].values[path]
            scored = (~truth["building"].values & (truth["path_gain_db"].values[path] > GAIN_FLOOR_DB)
                      & ~observation.observed & np.isfinite(true))
            net_az.append(network["aoa_az_deg"].values[path][scored])
            bic_az.append(bicubic["aoa_az_deg"].values[path][scored])
            cand.append(candidates[:, scored])
            true_az.append(true[scored])
    snaps, tables = [], []
    for encoder in plain.encoders_:
        net_az, bic_az, cand, true_az = cells[encoder.path]
        snap, table = tune_snap(np.concatenate(net_az), np.concatenate(bic_az), np.concatenate(cand, axis=1),
                                np.concatenate(true_az), num_ant=num_ant, rmse_ratio=rmse_ratio)
        snaps.append(snap)
        tables.append(table)
    return snaps, tables


def _snap(value) -> Snap | None:
    if value is None or isinstance(value, Snap):
        return value
    if isinstance(value, dict):
        return Snap.from_dict(value)
    raise CkmsimError(f"A snap setting must be a Snap, its dict or None. Received: {type(value).__name__}")


def _encoder(value, default: PathSREncoder) -> PathSREncoder:
    if value is None:
        return default
    if isinstance(value, PathSREncoder):
        return value
    if isinstance(value, dict):
        return PathSREncoder.from_dict(value)
    raise CkmsimError(f"An encoder must be a PathSREncoder or its dict. Received: {type(value).__name__}")


def input_shapes(model) -> list:
    """The network's input shapes in the order ``[lowres_maps, skip_maps, guide_maps]`` (those it has)."""
    shapes = model.input_shape
    if isinstance(shapes, dict):
        return [shapes[name] for name in ("lowres_maps", "skip_maps", "guide_maps")]
    return list(shapes) if isinstance(shapes, list) else [shapes]


def _load(source):
    """A Keras model from a model object or a ``.keras`` path."""
    if isinstance(source, (str, Path)):
        from ckmsim.models.esrresnet.network import load_esrresnet

        return load_esrresnet(source)
    if not hasattr(source, "input_shape"):
        raise CkmsimError(f"Expected a .keras path or a Keras model. Received: {type(source).__name__}")
    return source
