"""`ckmsim csi-study CONFIG`: location-agnostic downlink-CSI predictors against location-based maps (issue 16).

LAD-CKM's study (``experiments/ladckm/study-cpu.toml``): on the test UEs of a dynamic-CSI store, for every BS x
UE array of the config (UPAs of :func:`ckmsim.data.dynamic.upa_shape`), over the measured subcarriers of
:class:`~ckmsim.models.ladckm.data.LadCkmEncoding`, every scheme's downlink CSI picks the DFT beam pair of
eq. (10) and the true channel gives the rate of eq. (11), each scheme paying the downlink pilot overhead it
declares:

- **perfect CSI** (the bound, no pilot), **beam sweep** (every DFT pair measured, its overhead paid),
  **random beam**;
- **uplink** (angle reciprocity): the pair chosen on the uplink CSI transposed, no downlink pilot -- what an FDD
  BS does without any map, and the bar a downlink predictor has to clear;
- **location-based CKM** with UE position error sigma [m]: the sample's static per-path map (traced without the
  moving objects) read at the cell of the *reported* position (true position plus N(0, sigma^2) per horizontal
  axis, :func:`ckmsim.link.map_csi.reported_cells`), its paths turned into CSI by the code that made the true
  CSI (:func:`ckmsim.raytrace.csi.mimo_ofdm_channel`), no pilot;
- every trained LAD-CKM, FIRE or NeRF2 (run folders, or networks of a shipped set) whose arrays are studied,
  paying the pilot fraction it declares, also with both inputs corrupted to each ESNR (eq. (22), AWGN; the
  networks trained on clean inputs). Runs that differ only in their training seed are one scheme: its row is
  the mean over seeds, with the sample standard deviation of the rate and the NMSE, and each seed's row is kept.

A run trained on another split than the study's is refused: its training UEs would be among the test UEs.

Outputs in ``out``: ``results.json``, ``report.md``, ``rate_vs_antennas_nr<N_r>.png`` (the paper's Fig. 6),
``rate_vs_position_error_<N_t>x<N_r>.png`` (the location-based map against every location-agnostic line) and,
with ESNRs, ``rate_vs_esnr_<N_t>x<N_r>.png`` (Fig. 7).
"""

from __future__ import annotations

import glob
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_table_keys, is_finite_number, is_whole_number, read_toml

#: The paper's OFDM bandwidth [Hz].
PAPER_BANDWIDTH_HZ = 20e6
#: Name of the references' rows (every other row is a location-based map or a trained predictor).
REFERENCE_ROWS = ("perfect_csi", "beam_sweep", "random_beam", "uplink")


# ----------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------

def parse_array(value) -> tuple[int, int]:
    """``"16x4"`` (or ``[16, 4]``) -> ``(N_t, N_r)``."""
    try:
        pair = tuple(int(v) for v in value.lower().split("x")) if isinstance(value, str) else tuple(value)
    except (ValueError, TypeError):
        pair = ()
    if len(pair) != 2 or not all(is_whole_number(v, minimum=1) for v in pair):
        raise CkmsimError(f"An array is 'N_txN_r' with positive integers, e.g. '16x1'. Received: {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class CsiStudyConfig:
    """Everything a CSI study depends on (module docstring).

    dataset : dynamic-CSI store
    out : output folder
    arrays : ``(N_t, N_r)`` pairs studied
    runs : LAD-CKM / FIRE / NeRF2 run folders
    pretrained : networks of the shipped set ``pretrained_set`` (:func:`ckmsim.models.pretrained.pretrained_ladckm`)
    sigmas_m : UE position errors [m] of the location-based map (empty: no location-based rows)
    esnr_db : ESNRs [dB] at which every network is also scored on corrupted inputs
    num_used : subcarriers scored, nearest the carrier, DC excluded (the paper's 52 of 64); every network must
        predict these (its encoding's ``num_used``)
    split_by, test_blocks, val_blocks : the test UEs (:func:`ckmsim.models.ladckm.train.split_csi`); every
        network must have been trained on the same split
    tx_power_dbm, bandwidth_hz : the link budget (0 dBm over the paper's 20 MHz)
    seed : position errors, ESNR noise and the random beam
    """

    dataset: str
    out: str = "csi-study-out"
    arrays: tuple[tuple[int, int], ...] = ((8, 1), (16, 1), (32, 1))
    runs: tuple[str, ...] = ()
    pretrained: tuple[str, ...] = ()
    pretrained_set: str = "ladckm-cpu"
    sigmas_m: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0)
    esnr_db: tuple[float, ...] = ()
    num_used: int = 52
    split_by: str = "block"
    test_blocks: int = 4
    val_blocks: int = 2
    tx_power_dbm: float = 0.0
    bandwidth_hz: float = PAPER_BANDWIDTH_HZ
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "arrays", tuple(parse_array(a) for a in self.arrays))
        if not self.arrays:
            raise CkmsimError("arrays is empty: study at least one N_txN_r pair, e.g. '16x1'")
        for name in ("sigmas_m", "esnr_db"):
            values = tuple(getattr(self, name))
            if not all(is_finite_number(v) for v in values):
                raise CkmsimError(f"{name} must be a list of numbers. Received: {name}={list(values)!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if any(s < 0 for s in self.sigmas_m):
            raise CkmsimError(f"sigmas_m are position errors and must be >= 0. Received: {list(self.sigmas_m)}")
        if self.split_by not in ("block", "area"):
            raise CkmsimError(f"split by must be 'block' or 'area'. Received: {self.split_by!r}")
        for name, minimum in (("test_blocks", 1), ("val_blocks", 0), ("seed", 0), ("num_used", 2)):
            if not is_whole_number(getattr(self, name), minimum=minimum):
                raise CkmsimError(f"{name} must be an integer >= {minimum}. Received: {name}={getattr(self, name)!r}")
        if not (is_finite_number(self.bandwidth_hz) and self.bandwidth_hz > 0) or not is_finite_number(self.tx_power_dbm):
            raise CkmsimError(f"bandwidth_hz must be > 0 and tx_power_dbm a number. Received: bandwidth_hz="
                              f"{self.bandwidth_hz!r}, tx_power_dbm={self.tx_power_dbm!r}")
        for name in ("runs", "pretrained"):
            values = tuple(getattr(self, name))
            if not all(isinstance(v, str) and v for v in values):
                raise CkmsimError(f"{name} must be a list of non-empty strings. Received: {name}={list(values)!r}")
            object.__setattr__(self, name, values)

    @property
    def split_record(self) -> dict:
        """The split as a training run records it (``ladckm.json``: ``split``)."""
        return {"by": self.split_by, "test_blocks": int(self.test_blocks), "val_blocks": int(self.val_blocks)}


_SECTIONS = {"study": {"dataset", "out", "arrays", "runs", "pretrained", "pretrained_set", "sigmas_m", "esnr_db",
                       "num_used", "seed"},
             "split": {"by", "test_blocks", "val_blocks"},
             "link": {"tx_power_dbm", "bandwidth_hz"}}


def expand_runs(patterns, config: CsiStudyConfig | None = None, log=print) -> tuple[str, ...]:
    """Run folders from paths and glob patterns (relative to the cwd, as the training configs' ``out``): a path
    must exist; of the folders a pattern matches, those that hold no finished network (training still going)
    and, given ``config``, those trained on another split than its own are left out, and a pattern that
    matches none is said, each with a line in ``log``. (A path named explicitly is checked when it is loaded.)"""
    from ckmsim.models.ladckm.train import RUN_INFO

    runs = []
    for pattern in patterns:
        if not glob.has_magic(pattern):
            if not Path(pattern).is_dir():
                raise CkmsimError(f"Run folder '{pattern}' does not exist")
            runs.append(pattern)
            continue
        matched = sorted(p for p in glob.glob(pattern) if Path(p).is_dir())
        if not matched:
            log(f"  {pattern}: matches no run folder")
        for run in matched:
            if not ((Path(run) / RUN_INFO).is_file() and (Path(run) / "best.keras").is_file()):
                log(f"  {run}: no finished network yet, left out")
                continue
            split = json.loads((Path(run) / RUN_INFO).read_text()).get("split", {})
            if config is not None and not same_split(split, config):
                log(f"  {run}: trained on the split {split}, not the study's; left out")
                continue
            runs.append(run)
    return tuple(dict.fromkeys(runs))


def load_csi_study_config(path: str | Path, out: str | None = None, log=print) -> CsiStudyConfig:
    """Read and validate a CSI-study TOML: ``[study]`` (the dataset relative to the file; ``out`` and the run
    folders or glob patterns of ``runs`` relative to the cwd), ``[split]``, ``[link]``; ``out`` overrides the
    file's."""
    path = Path(path)
    raw = read_toml(path, "CSI study config")
    where = f"CSI study config '{path}'"
    check_table_keys(raw, set(_SECTIONS), "the top level", where)
    tables = {name: check_table_keys(raw.get(name, {}), keys, f"[{name}]", where) for name, keys in _SECTIONS.items()}
    study = dict(tables["study"])
    if "dataset" not in study:
        raise CkmsimError(f"{where}: [study] dataset is missing (a dynamic-CSI store)")
    study["dataset"] = str((path.parent / study["dataset"]).resolve())
    if out is not None:
        study["out"] = out
    split = {("split_by" if key == "by" else key): value for key, value in tables["split"].items()}
    try:
        for key in ("arrays", "sigmas_m", "esnr_db", "pretrained"):
            if key in study:
                study[key] = tuple(study[key])
        patterns = study.pop("runs", ())
        if not isinstance(patterns, list):
            raise CkmsimError(f"[study] runs must be a list of run folders or glob patterns. Received: {patterns!r}")
        config = CsiStudyConfig(**study, **split, **tables["link"])
        return replace(config, runs=expand_runs(patterns, config, log))
    except (CkmsimError, TypeError) as err:
        raise CkmsimError(f"{where}: {err}") from None


# ----------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------

@dataclass
class StudyNetwork:
    """One trained predictor: its method, the scheme it belongs to (``label``), its name and training seed."""

    method: object
    label: str
    name: str
    seed: int | None


def _training_record(info_path: Path) -> dict:
    """A network's record (a run's ``ladckm.json``, a shipped ``<label>.json``) less what training measured."""
    info = json.loads(info_path.read_text())
    return {k: v for k, v in info.items() if k not in ("frequencies_ghz", "num_train_ues", "wall_s", "examples_per_s")}


def _run_identity(run: Path) -> tuple[dict, dict | None]:
    """A run's record (:func:`_training_record`) and its training settings (``train_config.json``; None for
    a run without one)."""
    from ckmsim.models.ladckm.train import RUN_INFO

    record = _training_record(run / RUN_INFO)
    settings_path = run / "train_config.json"
    settings = json.loads(settings_path.read_text()).get("train") if settings_path.is_file() else None
    return record, settings


def same_split(split: dict, config: CsiStudyConfig) -> bool:
    """Whether a run's recorded split (``ladckm.json``: ``split``) is the study's (by area: the builder's tiles,
    whatever the block counts)."""
    return split.get("by") == config.split_by and (config.split_by == "area" or (
        split.get("test_blocks") == config.test_blocks and split.get("val_blocks") == config.val_blocks))


def _check_trained_for(record: dict, name: str, config: CsiStudyConfig, store_names: set) -> None:
    """A network trained on another dataset or split than the study's would be scored on its training UEs."""
    split = record.get("split", {})
    if not same_split(split, config):
        raise CkmsimError(f"'{name}' was trained on the split {split}, the study tests {config.split_record}: "
                          f"set [split] to the network's (its training UEs would otherwise be test UEs)")
    if Path(str(record.get("dataset", ""))).name not in store_names:
        raise CkmsimError(f"'{name}' was trained on the dataset '{record.get('dataset')}', the study reads "
                          f"'{config.dataset}'")


def load_networks(config: CsiStudyConfig, store_names: set, log=print) -> list[StudyNetwork]:
    """Every run and shipped network of ``config``, checked against the study's split and dataset, grouped
    into schemes: networks whose records and training settings differ only by the seed share a label
    (``<model kind>_rho<rho>``; a second scheme of the same kind and rho is told apart by its first run's name)."""
    from ckmsim.models.ladckm.method import LadCkmMethod
    from ckmsim.models.pretrained import pretrained_dir, pretrained_ladckm

    networks, schemes = [], {}
    sources = [(Path(run), Path(run).name, None) for run in config.runs]
    sources += [(pretrained_dir(config.pretrained_set, "ladckm"), name, name) for name in config.pretrained]
    for folder, name, shipped in sources:
        if shipped is None:
            method = LadCkmMethod.from_run(folder)
            record, settings = _run_identity(folder)
        else:
            method = pretrained_ladckm(shipped, config.pretrained_set)
            record, settings = _training_record(folder / f"{shipped}.json"), None
        _check_trained_for(record, name, config, store_names)
        if method.encoding.num_used != config.num_used:
            raise CkmsimError(f"'{name}' predicts {method.encoding.num_used} subcarriers, the study scores "
                              f"num_used = {config.num_used}")
        arrays = (method.num_bs_antennas, method.num_ue_antennas)
        if arrays not in config.arrays:
            log(f"  {name}: trained for {method.num_bs_antennas}x{method.num_ue_antennas}, not a studied array; "
                "left out")
            continue
        seed = None if settings is None else settings.get("seed")
        key = json.dumps([record, None if settings is None else {k: v for k, v in settings.items() if k != "seed"},
                          name if settings is None else None], sort_keys=True)
        # one row per scheme and array: names and seeds clash only with networks of the same array
        same_array = [n for n in networks if (n.method.num_bs_antennas, n.method.num_ue_antennas) == arrays]
        if key not in schemes:
            label = f"{method.label}_rho{method.downlink_pilot_overhead:.3f}"
            if any(n.label == label for n in same_array):
                label = f"{label}_{name}"
            schemes[key] = label
        if seed is not None and any(n.label == schemes[key] and n.seed == seed for n in same_array):
            raise CkmsimError(f"'{name}' repeats the training seed {seed} of another run of {schemes[key]}")
        networks.append(StudyNetwork(method, schemes[key], name, seed))
    return networks


# ----------------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------------

def nmse(h_pred: np.ndarray, h_true: np.ndarray) -> np.ndarray:
    """Eq. (12) per UE: mean over subcarriers of ||H_hat(f) - H(f)||^2 / ||H(f)||^2; ``[U, K, r, t]`` -> ``[U]``."""
    error = np.sum(np.abs(h_pred - h_true) ** 2, axis=(2, 3))
    power = np.maximum(np.sum(np.abs(h_true) ** 2, axis=(2, 3)), 1e-30)
    return np.mean(error / power, axis=1)


def corrupt(h: np.ndarray, esnr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``h`` plus complex AWGN at ESNR = ||H||^2 / ||noise||^2 per UE (eq. (22))."""
    power = np.mean(np.abs(h) ** 2, axis=tuple(range(1, h.ndim)), keepdims=True)
    std = np.sqrt(power / 10 ** (esnr_db / 10) / 2)
    noise = rng.normal(size=h.shape) + 1j * rng.normal(size=h.shape)
    return (h + std * noise).astype(h.dtype)


def aggregate_seeds(rows: list[dict]) -> dict:
    """One scheme's row from its seeds' rows: the mean of every number, the sample standard deviation
    (``<name>_sd``, ddof 1; 0 for one seed) of the rate and the NMSE, and ``num_seeds``."""
    out = {}
    for key, value in rows[0].items():
        values = [row.get(key) for row in rows]
        if all(is_finite_number(v) for v in values):
            out[key] = float(np.mean(values))
        elif all(v == value for v in values):
            out[key] = value
    for key in ("rate", "nmse"):
        if key in out:
            values = [row[key] for row in rows]
            out[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    out["num_seeds"] = len(rows)
    return out


def location_csi(store, test: dict, sigma_m: float, bs_array, ue_array, offsets_hz: np.ndarray, carrier_hz: float,
                 rng: np.random.Generator, ckms: dict) -> np.ndarray:
    """The static per-path map's downlink CSI ``[U, K, N_r, N_t]`` at each test UE's reported cell (true
    position plus N(0, sigma^2) per axis) on the subcarriers ``offsets_hz``; ``ckms`` caches the maps."""
    from ckmsim.link.map_csi import map_path_set, reported_cells
    from ckmsim.raytrace.csi import mimo_ofdm_channel

    num_ue, _, num_ue_ant, num_bs_ant = test["h_dl"].shape
    out = np.zeros((num_ue, len(offsets_hz), num_ue_ant, num_bs_ant), dtype=np.complex64)
    for index in np.unique(test["sample"]):
        chosen = test["sample"] == index
        if int(index) not in ckms:
            ckms[int(index)] = store.ckm(int(index))
        ckm = ckms[int(index)]
        rc = reported_cells(ckm, test["ue_position_m"][chosen], sigma_m, rng)
        paths = map_path_set(ckm, (rc[:, 0], rc[:, 1]), carrier_hz, ue_angles=ue_array.num_ant > 1)
        out[chosen] = mimo_ofdm_channel(paths, bs_array, ue_array, offsets_hz)
    return out


def study_array(store, nt: int, nr: int, config: CsiStudyConfig, networks: list[StudyNetwork], log=print) -> dict:
    """Every scheme's rows for one BS x UE array pair: ``rows`` (a scheme of several seeds: their mean) and
    ``seed_rows`` (each network's own rows, by scheme)."""
    from ckmsim.data.dynamic import dynamic_settings, upa_shape
    from ckmsim.link.budget import LinkBudget
    from ckmsim.link.codebook import dft_codebook
    from ckmsim.link.csi_beamforming import CsiBeamformingScorer, sweep_overhead
    from ckmsim.maps.antenna_array import AntennaArray
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.train import split_csi

    _, csi_settings = dynamic_settings(store)
    used = LadCkmEncoding(num_used=config.num_used).subcarriers(csi_settings.num_subcarriers)
    test = split_csi(store, "test", config.split_by, config.test_blocks, config.val_blocks, nt, nr)
    if not len(test["h_dl"]):
        raise CkmsimError(f"The study's test split ({config.split_record}) holds no UE with a path")
    h_true = test["h_dl"][:, used]
    spacing = csi_settings.spacing_wavelengths
    bs_array = AntennaArray(num_rows=upa_shape(nt)[0], num_cols=upa_shape(nt)[1], spacing_wavelengths=spacing)
    ue_array = AntennaArray(num_rows=upa_shape(nr)[0], num_cols=upa_shape(nr)[1], spacing_wavelengths=spacing)
    budget = LinkBudget(tx_power_dbm=config.tx_power_dbm, bandwidth_hz=config.bandwidth_hz, num_subcarriers=len(used))
    scorer = CsiBeamformingScorer(h_true, budget.snr_scale, dft_codebook(bs_array),
                                  dft_codebook(ue_array) if nr > 1 else None, precision="single")
    rows = {"perfect_csi": {"rate": float(scorer.perfect_csi_rates().mean()), "rho": 0.0},
            "beam_sweep": {"rate": float(scorer.beam_sweep_rates().mean()),
                           "rho": min(1.0, sweep_overhead(scorer.num_pairs)), "pairs": scorer.num_pairs},
            "random_beam": {"rate": float(scorer.random_beam_rates(config.seed).mean()), "rho": 0.0}}

    def score(h_pred: np.ndarray, rho: float, **extra) -> dict:
        result = scorer.rates(h_pred, rho)
        errors = nmse(h_pred, h_true)
        # medians beside the mean NMSE: a UE whose prediction is far too strong (a map read next to the BS)
        # dominates any mean of NMSE or of dB losses
        return {"rate": float(result.rate_bps_hz.mean()), "rho": rho, "nmse": float(np.mean(errors)),
                "nmse_median": float(np.median(errors)), "gain_loss_db_median": float(np.median(result.gain_loss_db)),
                "same_pair_as_perfect": float(np.mean((result.bs_beam == scorer.perfect_bs_beam)
                                                      & (result.ue_beam == scorer.perfect_ue_beam))), **extra}

    rows["uplink"] = score(np.swapaxes(test["h_ul"][:, used], -1, -2), 0.0)
    offsets = csi_settings.subcarrier_offsets_hz()[used]
    ckms = {}
    for sigma in config.sigmas_m:
        rng = np.random.default_rng([config.seed, int(round(10 * sigma))])
        h_map = location_csi(store, test, sigma, bs_array, ue_array, offsets, csi_settings.downlink_hz, rng, ckms)
        rows[f"location_sigma{sigma:g}m"] = score(h_map, 0.0, sigma_m=sigma)
    seed_rows = {}
    for network in networks:
        method = network.method
        if (method.num_bs_antennas, method.num_ue_antennas) != (nt, nr):
            continue
        rho = method.downlink_pilot_overhead
        own = {network.label: score(method.predict_downlink(test["h_ul"], test["h_dl"]), rho,
                                    seconds_per_ue=method.seconds_per_ue)}
        for esnr in config.esnr_db:
            rng = np.random.default_rng([config.seed, int(round(10 * esnr)) + 1000])
            noisy = method.predict_downlink(corrupt(test["h_ul"], esnr, rng), corrupt(test["h_dl"], esnr, rng))
            own[f"{network.label}_esnr{esnr:g}dB"] = score(noisy, rho, esnr_db=esnr)
        for name, row in own.items():
            seed_rows.setdefault(name, []).append({**row, "network": network.name, "seed": network.seed})
    for name, per_seed in seed_rows.items():
        rows[name] = {**aggregate_seeds([{k: v for k, v in r.items() if k not in ("network", "seed")}
                                         for r in per_seed]), "networks": [r["network"] for r in per_seed]}
    log(f"  {nt}x{nr}: {len(h_true)} test UEs; " + ", ".join(f"{k} {v['rate']:.3f}" for k, v in rows.items()
                                                            if "esnr" not in k))
    return {"num_bs_antennas": nt, "num_ue_antennas": nr, "num_test_ues": int(len(h_true)),
            "snr_scale_db": float(10 * np.log10(budget.snr_scale)), "rows": rows, "seed_rows": seed_rows}


def run_csi_study(config: CsiStudyConfig, log=print) -> dict:
    """Score every scheme at every array of ``config``, write ``results.json``, ``report.md`` and the figures
    into ``config.out``; returns the results."""
    from ckmsim.data.dynamic import dynamic_settings
    from ckmsim.data.store import DatasetStore

    started = time.perf_counter()
    store = DatasetStore.open(config.dataset)
    dynamic_settings(store)  # a clear error for a store without dynamic CSI
    if config.sigmas_m and store.gain_only:
        raise CkmsimError(f"'{config.dataset}' has no per-path maps (num_map_paths = 0): the location-based map "
                          "needs them; set sigmas_m = [] or rebuild the store with num_map_paths >= 1")
    networks = load_networks(config, {Path(config.dataset).name, store.manifest.get("name")}, log)
    log(f"CSI study on '{config.dataset}': {len(networks)} network(s), arrays "
        + ", ".join(f"{nt}x{nr}" for nt, nr in config.arrays))
    arrays = [study_array(store, nt, nr, config, networks, log) for nt, nr in config.arrays]
    results = {"dataset": config.dataset, "split": config.split_record, "tx_power_dbm": config.tx_power_dbm,
               "bandwidth_hz": config.bandwidth_hz, "seed": config.seed,
               "networks": [{"name": n.name, "scheme": n.label, "seed": n.seed, "num_bs_antennas":
                             n.method.num_bs_antennas, "num_ue_antennas": n.method.num_ue_antennas} for n in networks],
               "arrays": arrays, "wall_s": time.perf_counter() - started}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(out, results)
    plot_csi_study(out, results)
    log(f"CSI study written to {out} in {results['wall_s']:.0f} s")
    return results


# ----------------------------------------------------------------------------------------------------------
# Report and figures
# ----------------------------------------------------------------------------------------------------------

def is_predictor(name: str) -> bool:
    """A trained CSI predictor's row (not a reference, a location-based map or an ESNR variant)."""
    return name not in REFERENCE_ROWS and not name.startswith("location") and "esnr" not in name


def _with_spread(row: dict, key: str, digits: str) -> str:
    """``mean`` or ``mean +- sd (n)`` of a scheme trained over several seeds."""
    text = format(row[key], digits)
    if row.get("num_seeds", 1) > 1:
        text += f" ± {format(row[key + '_sd'], digits)} (n={row['num_seeds']})"
    return text


def write_report(out: Path, results: dict) -> None:
    """``report.md``: per array, one row per scheme (a scheme of several seeds: mean ± sample sd)."""
    split = results["split"]
    lines = [f"# CSI study on `{Path(results['dataset']).name}` (split by {split['by']})", "",
             "Mean effective rate [bit/s/Hz] over the test UEs (eq. (11), each scheme paying its downlink pilot "
             "overhead rho), NMSE of the predicted downlink CSI (eq. (12)); a network trained over several seeds: "
             "mean ± sample standard deviation over the seeds (n).", ""]
    for entry in results["arrays"]:
        perfect = entry["rows"]["perfect_csi"]["rate"]
        lines += [f"## N_t = {entry['num_bs_antennas']}, N_r = {entry['num_ue_antennas']} "
                  f"({entry['num_test_ues']} UEs)", "",
                  "| scheme | rho | rate | share of perfect | NMSE mean | NMSE median | median gain loss [dB] | "
                  "perfect-CSI pair |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, row in entry["rows"].items():
            rho = "-" if row.get("rho") is None else f"{row['rho']:.3f}"
            nmse_text = _with_spread(row, "nmse", ".3g") if "nmse" in row else "-"
            median = f"{row['nmse_median']:.3g}" if "nmse_median" in row else "-"
            loss = f"{row['gain_loss_db_median']:.2f}" if "gain_loss_db_median" in row else "-"
            same = f"{100 * row['same_pair_as_perfect']:.1f} %" if "same_pair_as_perfect" in row else "-"
            lines.append(f"| {name} | {rho} | {_with_spread(row, 'rate', '.3f')} | {100 * row['rate'] / perfect:.1f} % "
                         f"| {nmse_text} | {median} | {loss} | {same} |")
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))


def _finish(fig, ax, xlabel: str, title: str, path: Path) -> None:
    """Axis labels, grid, key and the file of one figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel("effective rate [bit/s/Hz]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_rate_vs_antennas(out: Path, entries: list[dict], nr: int) -> None:
    """Fig. 6's axes: every scheme's rate against N_t (a scheme of several seeds with its sd as error bars)."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for e in entries for n in e["rows"] if "esnr" not in n and not (
        n.startswith("location") and not n.endswith("sigma0m"))))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in names:
        points = [(e["num_bs_antennas"], e["rows"][name]["rate"], e["rows"][name].get("rate_sd", 0.0))
                  for e in entries if name in e["rows"]]
        x, y, sd = zip(*points)
        ax.errorbar(x, y, yerr=sd if any(sd) else None, marker="o", capsize=3, label=name,
                    linestyle="-" if len(points) > 1 else "none")
    ax.set_xscale("log", base=2)
    ax.set_xticks([e["num_bs_antennas"] for e in entries], [str(e["num_bs_antennas"]) for e in entries])
    _finish(fig, ax, "BS antennas N_t", f"Rate vs BS antennas, N_r = {nr}", out / f"rate_vs_antennas_nr{nr}.png")


def _plot_rate_vs_position_error(out: Path, entry: dict, label: str, suffix: str) -> None:
    """The location-based map's rate against the UE position error, every location-agnostic line across it."""
    import matplotlib.pyplot as plt

    rows = entry["rows"]
    sigmas = sorted(r["sigma_m"] for r in rows.values() if "sigma_m" in r)
    if not sigmas:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(sigmas, [rows[f"location_sigma{s:g}m"]["rate"] for s in sigmas], marker="o", label="location-based CKM")
    lines = [name for name in rows if name in ("perfect_csi", "uplink") or is_predictor(name)]
    for k, name in enumerate(lines, start=1):
        ax.axhline(rows[name]["rate"], linestyle=("--", ":", "-.")[k % 3], linewidth=1.2, label=name,
                   color=plt.get_cmap("tab10")(k))
    _finish(fig, ax, "UE position error sigma [m]", label, out / f"rate_vs_position_error_{suffix}.png")


def _plot_rate_vs_esnr(out: Path, entry: dict, label: str, suffix: str) -> None:
    """Fig. 7's axes: every network's rate against the ESNR of its inputs."""
    import matplotlib.pyplot as plt

    rows = entry["rows"]
    noisy = sorted({r["esnr_db"] for r in rows.values() if "esnr_db" in r})
    if not noisy:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, name in enumerate(n for n in rows if is_predictor(n)):
        points = [(e, rows[f"{name}_esnr{e:g}dB"]["rate"]) for e in noisy if f"{name}_esnr{e:g}dB" in rows]
        if points:
            ax.plot(*zip(*points), marker="o", label=name, color=plt.get_cmap("tab10")(k))
    ax.axhline(rows["perfect_csi"]["rate"], linestyle="--", color="black", linewidth=1, label="perfect_csi")
    _finish(fig, ax, "ESNR of the uplink and pilot inputs [dB]", label, out / f"rate_vs_esnr_{suffix}.png")


def plot_csi_study(out: Path, results: dict) -> None:
    """Every figure of the module docstring into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    for nr in sorted({e["num_ue_antennas"] for e in results["arrays"]}):
        _plot_rate_vs_antennas(out, [e for e in results["arrays"] if e["num_ue_antennas"] == nr], nr)
    for entry in results["arrays"]:
        label = f"N_t = {entry['num_bs_antennas']}, N_r = {entry['num_ue_antennas']}"
        suffix = f"{entry['num_bs_antennas']}x{entry['num_ue_antennas']}"
        _plot_rate_vs_position_error(out, entry, label, suffix)
        _plot_rate_vs_esnr(out, entry, label, suffix)

