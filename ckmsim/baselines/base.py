"""The face every CKM construction method shows the evaluator, from bicubic interpolation to CKMDiff.

It is scikit-learn's estimator face: hyper-parameters are ``__init__`` arguments stored under the same names
and nothing is learned there; :meth:`Method.fit` learns (a no-op for interpolators) and returns ``self``,
keeping learned state in attributes ending in ``_``; :meth:`Method.predict` turns one
:class:`~ckmsim.maps.degrade.Observation` into a CKM without side effects. The evaluator never needs to
know which kind of method it holds.
"""

from __future__ import annotations

import abc
import inspect

import xarray as xr

from ckmsim.maps.degrade import Observation


class Method(abc.ABC):
    """A CKM construction method (abstract).

    Subclasses set the class attribute :attr:`name`, take every hyper-parameter as an ``__init__`` argument
    stored under the same name, and implement :meth:`predict`; learning methods also override :meth:`fit`.

    Attributes
    ----------
    name : str
        Short registry name, e.g. ``"bicubic"``; written to the ``method`` attribute of each prediction.
    downlink_pilot_overhead : float in [0, 1]
        Share :math:`\\rho` of the downlink resources the method spends on pilots to serve a UE; every rate the
        evaluator credits the method is :math:`(1-\\rho)` times what its decision earns. 0 (the default) for a
        method that reads a map at the UE's position, which sends no pilot; a method that refines its CSI
        with partial downlink pilots declares their share (e.g. LAD-CKM's 0.125,
        :data:`ckmsim.link.map_csi.PARTIAL_PILOT_OVERHEAD`). The measurements a map is built from are not
        downlink pilots of the served UE and are not charged here.
    """

    name: str = "method"
    downlink_pilot_overhead: float = 0.0

    def fit(self, train=None, val=None) -> "Method":
        """Learn from training data; the base implementation learns nothing.

        Input
        -----
        train, val : optional
            Training and validation data (a dataset of truth CKMs); ignored here.

        Output
        ------
        self : Method
        """
        return self

    @abc.abstractmethod
    def predict(self, observation: Observation) -> xr.Dataset:
        """Construct the full CKM from one observation, without side effects.

        Input
        -----
        observation : Observation
            Measured layers on the full ``[num_y, num_x]`` grid (NaN where unmeasured), the ``observed``
            and ``building`` masks ``[num_y, num_x]``, bool, and the sub-sampling ``factor`` (or None).

        Output
        ------
        ckm : xarray.Dataset
            A CKM on ``observation.grid`` (see :mod:`ckmsim.maps.ckm`), built with
            :func:`~ckmsim.maps.ckm.make_ckm`, with ``method`` and ``task`` in its attrs.
        """

    def unsupported_reason(self, observation: Observation) -> str | None:
        """Why this method cannot handle ``observation`` (e.g. a grid interpolator given scattered samples),
        or None when it can. The evaluator skips unsupported (method, task) pairs and lists them."""
        return None

    def get_params(self) -> dict:
        """Hyper-parameters by name, read back from the attributes named like the ``__init__`` arguments."""
        signature = inspect.signature(type(self).__init__)
        names = [p.name for p in signature.parameters.values()
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _prediction_attrs(self, observation: Observation) -> dict:
        """Provenance for a prediction: the observation's attrs (``grid`` is left to ``make_ckm``), plus
        ``method`` and ``task``."""
        attrs = {key: value for key, value in observation.attrs.items() if key != "grid"}
        attrs.update(method=self.name, task=observation.task)
        return attrs
