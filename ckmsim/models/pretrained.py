"""Trained networks shipped with ckmsim, and how they were made.

Each entry of :data:`PRETRAINED` is a folder ``ckmsim/models/<package>/weights/<name>/`` of the network's own
package (:class:`Shipped`), holding

- one ``.keras`` file per network (architecture and weights, no optimizer state: a few MB),
- ``provenance.json``: the dataset config and training config that produced the networks (verbatim), the
  command lines, the package versions the dataset was traced with, best validation losses and training
  throughput, and the held-out scores measured on them (:func:`provenance`),
- what the network's Method needs besides (CKMDiff: its run description ``ckmdiff.json``).

They are written by the export script of each network's experiments (``experiments/esrresnet/export_weights.py``,
``experiments/ckmdiff/export_weights.py``) from a finished training run; nothing in this module trains or
changes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ckmsim.errors import CkmsimError

#: The models folder; each network's shipped sets lie in its package's ``weights/``.
MODELS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Shipped:
    """One shipped network set: the model package that holds it and what it is."""

    package: str
    description: str

    def folder(self, name: str) -> Path:
        return weights_dir(self.package) / name


#: Shipped network sets: name -> :class:`Shipped`.
PRETRAINED = {
    "esrresnet-cpu": Shipped(
        "esrresnet",
        "E-SRResNet, tiny CPU configuration (4 residual blocks of 32 (primary path) or 48 (secondary) channels, "
        "pooled 4-head attention, MSFF after blocks 1-3), x2 super-resolution of PGM/PAM of the two strongest "
        "paths at 28 GHz on 2 m cells (x4 as a bicubic-then-network cascade), trained on eight procedural "
        "cities, validated on a ninth (experiments/esrresnet/)"),
    "ckmdiff-cpu": Shipped(
        "ckmdiff",
        "CKMDiff, CPU configuration (VAE x4 to a 3-channel latent, two-branch UNet 32 x [1, 2, 4], Swin "
        "condition encoder embed 32, depths 2-2-2, window 4; 2.9 M parameters), one model for noisy x4 "
        "super-resolution, noisy 8 x 8 box inpainting, denoising, noiseless x2 / x4 sub-sampling and generation "
        "of 28 GHz gain maps (2 m cells, APs at 10 m), trained on nine procedural cities, validated on a tenth "
        "(experiments/ckmdiff/train-cpu-shipped.toml)"),
    "ladckm-cpu": Shipped(
        "ladckm",
        "LAD-CKM, CPU configuration (8 Fibonacci directions x 4 radial samples, width 16), and its baselines FIRE "
        "and NeRF2 at CPU sizes: downlink CSI at 6.765 GHz from the uplink CSI at 6.715 GHz (LAD-CKM also from "
        "rho = 0.125 downlink pilots), 52 subcarriers of 312.5 kHz, one network per (N_t, N_r), trained on "
        "coherence blocks of the OSM crossroads with moving cars and pedestrians (experiments/ladckm/)"),
}
#: Default shipped E-SRResNet (used by ``ckmsim quickstart``).
DEFAULT_ESRRESNET = "esrresnet-cpu"
#: Default shipped CKMDiff (the study method ``ckmdiff``).
DEFAULT_CKMDIFF = "ckmdiff-cpu"


def weights_dir(package: str) -> Path:
    """The folder of a model package's shipped sets (``ckmsim/models/<package>/weights``)."""
    return MODELS_DIR / package / "weights"


def pretrained_dir(name: str, package: str | None = None) -> Path:
    """The folder of shipped networks ``name``; a clear error if there is no such entry (of ``package``, when
    given) or it is incomplete."""
    shipped = {k: v for k, v in PRETRAINED.items() if package is None or v.package == package}
    if name not in shipped:
        raise CkmsimError(f"Unknown pretrained network {name!r}; shipped: {sorted(shipped)}")
    folder = shipped[name].folder(name)
    if not (folder / "provenance.json").is_file():
        raise CkmsimError(f"Pretrained network {name!r} is missing its files under '{folder}' "
                          "(a broken install? reinstall ckmsim)")
    return folder


def provenance(name: str = DEFAULT_ESRRESNET) -> dict:
    """The ``provenance.json`` of a shipped network set: configs, commands, versions, losses, scores."""
    return json.loads((pretrained_dir(name) / "provenance.json").read_text())


def _required_files(name: str, files) -> None:
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise CkmsimError(f"Pretrained network {name!r}: missing file(s) {missing} (a broken install?)")


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

    folder = pretrained_dir(name, "esrresnet")
    networks = provenance(name)["networks"]
    files = {role: folder / networks[role]["file"] for role in ("primary", "secondary")}
    _required_files(name, files.values())
    return ESRResNetMethod(files["primary"], files["secondary"], primary_encoder=networks["primary"]["encoder"],
                           secondary_encoder=networks["secondary"]["encoder"], label=label,
                           snaps=[networks[role].get("snap") for role in ("primary", "secondary")])


def pretrained_ladckm(network: str, name: str = "ladckm-cpu"):
    """One shipped CSI predictor of the LAD-CKM set as a :class:`~ckmsim.models.ladckm.method.LadCkmMethod`.

    ``network`` is its label in ``provenance.json`` (``networks[].file`` without ``.keras``, e.g.
    ``"ladckm-16x1-rho4"``, ``"fire-16x1"``); a clear error lists the shipped ones otherwise.
    """
    from ckmsim.models.ladckm.method import LadCkmMethod

    folder = pretrained_dir(name, "ladckm")
    shipped = [Path(n["file"]).stem for n in provenance(name)["networks"]]
    if network not in shipped:
        raise CkmsimError(f"Pretrained set {name!r} has no network {network!r}; shipped: {shipped}")
    _required_files(name, (folder / f"{network}.keras", folder / f"{network}.json"))
    return LadCkmMethod.from_files(folder / f"{network}.keras", folder / f"{network}.json", label=network)


def pretrained_ckmdiff(name: str = DEFAULT_CKMDIFF, num_steps: int = 2, num_samples: int = 4, seed: int = 0):
    """The shipped CKMDiff as an (unfitted) :class:`~ckmsim.models.ckmdiff.method.CKMDiffMethod`.

    The folder is a CKMDiff run folder in miniature (the model without optimizer state and ``ckmdiff.json``);
    the method serves the tasks the model was trained on (``provenance.json``: ``tasks``) and reports every
    other one as unsupported. ``num_steps`` (``S`` of Alg. 2), ``num_samples`` (maps averaged per
    observation) and ``seed`` as in the method.
    """
    from ckmsim.models.ckmdiff.method import SHIPPED_MODEL_FILE, CKMDiffMethod
    from ckmsim.models.ckmdiff.train import RUN_INFO

    folder = pretrained_dir(name, "ckmdiff")
    _required_files(name, (folder / SHIPPED_MODEL_FILE, folder / RUN_INFO))
    return CKMDiffMethod(folder, num_steps=num_steps, num_samples=num_samples, seed=seed)
