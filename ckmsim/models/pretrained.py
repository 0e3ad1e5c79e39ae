"""Trained networks shipped with ckmsim, and how they were made.

Each entry of :data:`PRETRAINED` is a folder under ``ckmsim/models/esrresnet/weights/`` holding

- one ``.keras`` file per network (architecture and weights, no optimizer state: a few MB),
- ``provenance.json``: the dataset config and training config that produced the networks (verbatim), the
  command lines, the package versions the dataset was traced with, best validation losses and training
  throughput, and the held-out scores measured on them (:func:`provenance`).

They are written by ``experiments/esrresnet/export_weights.py`` from a finished training run; nothing in
this module trains or changes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ckmsim.errors import CkmsimError

#: Folder of the shipped networks (package data).
WEIGHTS_DIR = Path(__file__).parent / "esrresnet" / "weights"
#: Shipped E-SRResNet configurations: name -> description.
PRETRAINED = {
    "esrresnet-cpu": "E-SRResNet, tiny CPU configuration (4 residual blocks of 32 (primary path) or 48 "
                     "(secondary) channels, pooled 4-head attention, MSFF after blocks 1-3), x2 "
                     "super-resolution of PGM/PAM of the two strongest paths at 28 GHz on 2 m cells (x4 as a "
                     "bicubic-then-network cascade), trained on eight procedural cities, validated on a ninth "
                     "(experiments/esrresnet/)",
}
#: Default shipped E-SRResNet (used by ``ckmsim quickstart``).
DEFAULT_ESRRESNET = "esrresnet-cpu"


def pretrained_dir(name: str) -> Path:
    """The folder of shipped networks ``name``; a clear error if there is no such entry or it is incomplete."""
    if name not in PRETRAINED:
        raise CkmsimError(f"Unknown pretrained network {name!r}; shipped: {sorted(PRETRAINED)}")
    folder = WEIGHTS_DIR / name
    if not (folder / "provenance.json").is_file():
        raise CkmsimError(f"Pretrained network {name!r} is missing its files under '{folder}' "
                          "(a broken install? reinstall ckmsim)")
    return folder


def provenance(name: str = DEFAULT_ESRRESNET) -> dict:
    """The ``provenance.json`` of a shipped network set: configs, commands, versions, losses, scores."""
    return json.loads((pretrained_dir(name) / "provenance.json").read_text())


def pretrained_esrresnet(name: str = DEFAULT_ESRRESNET, label: str = "esrresnet"):
    """The shipped E-SRResNet pair as an (unfitted) :class:`~ckmsim.models.esrresnet.method.ESRResNetMethod`.

    ``fit()`` loads the two networks (primary and secondary path), each with the encoding it was trained with
    (``provenance.json``: ``networks.<role>.encoder``) and the snap decoding chosen for it on the validation
    city (``networks.<role>.snap``, :mod:`ckmsim.models.esrresnet.snap`). The method solves the x``factor``
    uniform sub-sampling task it was trained for (x2), a coarser lattice of a multiple of it (x4) as a
    bicubic-then-network cascade (:func:`~ckmsim.models.esrresnet.method.cascade_observation`), and reports
    every other task as unsupported.
    """
    from ckmsim.models.esrresnet.method import ESRResNetMethod

    folder = pretrained_dir(name)
    networks = provenance(name)["networks"]
    files = {role: folder / networks[role]["file"] for role in ("primary", "secondary")}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise CkmsimError(f"Pretrained network {name!r}: missing file(s) {missing} (a broken install?)")
    return ESRResNetMethod(files["primary"], files["secondary"], primary_encoder=networks["primary"]["encoder"],
                           secondary_encoder=networks["secondary"]["encoder"], label=label,
                           snaps=[networks[role].get("snap") for role in ("primary", "secondary")])
