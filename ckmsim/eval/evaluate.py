"""`ckmsim evaluate CONFIG`: methods x tasks x scenes, map and link scores, sweeps and AP deployment.

A TOML file under ``experiments/`` describes the study (see ``experiments/evaluate-small.toml``). For every
scene the study of :func:`ckmsim.eval.study.run_study` runs (ground truth, every method on every task,
map scores, beam-selection, link-adaptation and CSI-beamforming rates), its outputs go to
``OUT/<scene label>/``, and then:

- **rate vs SNR**: the beams each map chose, re-scored at every transmit-power offset of ``snr_offsets_db``;
- **rate vs number of BS antennas**: the whole beam-selection loop (true channels, codebook, each map's
  SCM-driven choice) for every ULA size of ``bs_antennas``;
  both sweeps are over the study's test UEs (:mod:`ckmsim.eval.holdout`), every map's rate paying its
  declared pilot overhead;
- **rate vs map error**: every (method, task) as a point (gain RMSE, share of the perfect-CSI rate);
- **AP deployment** (``[deployment]``): the study BS plus ``num_existing - 1`` random sites are deployed;
  each method predicts the channel-gain map of ``num_candidates`` random candidate sites from the task's
  degraded measurements of that site (the 3GPP model and the cross-AP distance weighting from no
  measurement of it); the site with the best predicted mean rate is chosen and scored on the true maps.

``OUT/results.json`` collects everything (each scene's record has the shape of one study's,
:mod:`ckmsim.eval.study`), ``OUT/report.md`` tabulates it and the figures are PNG files in ``OUT``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim import __version__
from ckmsim.errors import CkmsimError
from ckmsim.eval.study import STUDY_METHODS, StudyConfig, StudyRun, StudySettings, json_default, run_study, \
    write_study_outputs
from ckmsim.link.budget import LinkBudget
from ckmsim.link.deployment import DeploymentObjective, choose_site
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import grid_of, make_ckm
from ckmsim.maps.degrade import Degradation
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.validation import check_table_keys, is_finite_number, is_whole_number, read_toml

#: Deployment methods that need no measurement of the candidate site.
MEASUREMENT_FREE = ("umi_3gpp", "cross_ap_weighted")


@dataclass(frozen=True)
class SceneSpec:
    """One study area: scene name or XML path, grid and (optionally) the BS position."""

    scene: str
    num_cells: int = 32
    cell_size_m: float = 2.0
    center_m: tuple[float, float] | None = None
    bs_position_m: tuple[float, float, float] | None = None

    @property
    def label(self) -> str:
        """Folder-safe name of the study (the XML's folder for a scene file)."""
        return Path(self.scene).parent.name if self.scene.lower().endswith(".xml") else self.scene


@dataclass(frozen=True)
class DeploymentSpec:
    """AP-deployment study: ``num_existing`` deployed APs (the study BS first), ``num_candidates`` sites."""

    num_existing: int = 2
    num_candidates: int = 6
    height_m: float = 10.0
    metric: str = "mean_rate"
    interference: bool = True
    methods: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("num_existing", "num_candidates"):
            if not is_whole_number(getattr(self, name), minimum=1):
                raise CkmsimError(f"[deployment] {name} must be a positive integer. Received: {getattr(self, name)!r}")
        if not (is_finite_number(self.height_m) and self.height_m > 0):
            raise CkmsimError(f"[deployment] height_m must be > 0. Received: height_m={self.height_m!r}")


@dataclass(frozen=True)
class EvaluationConfig(StudySettings):
    """Everything ``ckmsim evaluate`` depends on (see the module docstring): the settings every scene's study
    shares (:class:`~ckmsim.eval.study.StudySettings`), the scenes, the tasks, the sweeps, the coded link
    and the deployment study."""

    name: str = "evaluation"
    out: str = "evaluate-out"
    seed: int = 0
    scenes: tuple[SceneSpec, ...] = ()
    tasks: tuple[dict, ...] = ({"steps": [{"kind": "subsample", "factor": 4}]},)
    bs_antennas: tuple[int, ...] = (8, 16, 32, 64, 128)
    snr_offsets_db: tuple[float, ...] = (-30.0, -20.0, -10.0, 0.0, 10.0)
    coded_ues: int = 0
    coded_codewords: int = 32
    coded_mode: str = "xla"
    coded_batch_size: int = 256
    deployment: DeploymentSpec | None = None

    def __post_init__(self):
        if not self.scenes:
            raise CkmsimError("The evaluation lists no scene: add at least one [[scenes]] table")
        super().__post_init__()
        for spec in self.scenes:
            self.study_config(spec)  # checks the tasks as each scene's study takes them
        if not is_whole_number(self.coded_ues, minimum=0) or not is_whole_number(self.coded_codewords, minimum=1):
            raise CkmsimError(f"coded_ues must be an integer >= 0 and coded_codewords >= 1. Received: "
                              f"coded_ues={self.coded_ues!r}, coded_codewords={self.coded_codewords!r}")
        if not is_whole_number(self.coded_batch_size, minimum=1):
            raise CkmsimError("coded_batch_size must be a positive integer. Received: "
                              f"coded_batch_size={self.coded_batch_size!r}")
        if self.coded_mode not in ("xla", "graph", "eager"):
            raise CkmsimError(f"coded_mode must be 'xla', 'graph' or 'eager'. Received: coded_mode={self.coded_mode!r}")
        bad = [n for n in self.bs_antennas if not is_whole_number(n, minimum=1)]
        if bad:
            raise CkmsimError(f"bs_antennas must be positive integers. Received: {bad}")
        if self.deployment is not None:
            unknown = [m for m in self.deployment.methods if m not in STUDY_METHODS and m not in MEASUREMENT_FREE]
            if unknown:
                raise CkmsimError(f"Unknown deployment method(s) {unknown}; available: "
                                  f"{sorted(STUDY_METHODS) + list(MEASUREMENT_FREE)}")

    def study_config(self, spec: SceneSpec) -> StudyConfig:
        """The per-scene study of this evaluation."""
        return StudyConfig(scene=spec.scene, out=str(Path(self.out) / spec.label), seed=self.seed,
                           num_cells=spec.num_cells, cell_size_m=spec.cell_size_m, center_m=spec.center_m,
                           bs_position_m=spec.bs_position_m, tasks=self.tasks,
                           **{**self.shared_settings(), "ray_tracing": replace(self.ray_tracing, seed=self.seed)})


# ----------------------------------------------------------------------------------------------------------
# TOML
# ----------------------------------------------------------------------------------------------------------

_TOP_KEYS = {"evaluate", "scenes", "tasks", "link", "ray_tracing", "deployment"}
_EVALUATE_KEYS = {"name", "out", "seed", "methods"}
_LINK_KEYS = {"num_bs_ant", "codebook_oversampling", "target_outage", "num_ue_ant", "calibration_block_cells",
              "calibration_fraction",
              "bs_antennas", "snr_offsets_db",
              "coded_ues", "coded_codewords", "coded_mode", "coded_batch_size",
              "tx_power_dbm", "bandwidth_hz", "num_subcarriers", "noise_figure_db"}


def _check_keys(table, allowed: set, where: str, path: Path) -> dict:
    """:func:`~ckmsim.validation.check_table_keys` with the evaluation file as the error's context."""
    return check_table_keys(table, allowed, where, f"Evaluation config '{path}'")


def load_evaluation_config(path: str | Path, out: str | None = None) -> EvaluationConfig:
    """Read and validate an evaluation TOML; scene XML paths are relative to the file, ``out`` to the cwd."""
    path = Path(path)
    raw = read_toml(path, "Evaluation config")
    _check_keys(raw, _TOP_KEYS, "the top level", path)
    top = _check_keys(raw.get("evaluate", {}), _EVALUATE_KEYS, "[evaluate]", path)
    link = _check_keys(raw.get("link", {}), _LINK_KEYS, "[link]", path)
    scene_keys = {f.name for f in fields(SceneSpec)}
    scenes = []
    for index, table in enumerate(raw.get("scenes", [])):
        table = dict(_check_keys(table, scene_keys, f"[[scenes]] #{index + 1}", path))
        if "scene" not in table:
            raise CkmsimError(f"Evaluation config '{path}': [[scenes]] #{index + 1} lacks 'scene'")
        if table["scene"].lower().endswith(".xml") and not Path(table["scene"]).is_absolute():
            table["scene"] = str((path.parent / table["scene"]).resolve())
        for key in ("center_m", "bs_position_m"):
            if key in table:
                table[key] = tuple(float(v) for v in table[key])
        scenes.append(SceneSpec(**table))
    budget_keys = {f.name for f in fields(LinkBudget)}
    values = {**{k: v for k, v in top.items()}, "scenes": tuple(scenes),
              "budget": LinkBudget(**{k: v for k, v in link.items() if k in budget_keys}),
              **{k: tuple(v) if isinstance(v, list) else v for k, v in link.items() if k not in budget_keys}}
    if "methods" in values:
        values["methods"] = tuple(values["methods"])
    if "tasks" in raw:
        values["tasks"] = tuple(raw["tasks"])
    try:
        values["ray_tracing"] = RayTracingSettings.from_dict(raw.get("ray_tracing", {}))
        if "deployment" in raw:
            table = dict(_check_keys(raw["deployment"], {f.name for f in fields(DeploymentSpec)}, "[deployment]", path))
            table["methods"] = tuple(table.get("methods", ()))
            values["deployment"] = DeploymentSpec(**table)
        if out is not None:
            values["out"] = out
        return EvaluationConfig(**values)
    except CkmsimError as err:
        raise CkmsimError(f"Evaluation config '{path}': {err}") from None


# ----------------------------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------------------------

def snr_sweep(run: StudyRun, offsets_db) -> dict:
    """Mean rate over the test UEs of perfect CSI, the ground-truth map and every (method, task) at each
    transmit-power offset, each map keeping the beams it chose (beam choice does not depend on the SNR) and
    paying its declared pilot overhead."""
    scorer, test = run.scorer, run.test
    # [num_test, num_subcarriers, num_beams]
    channel_gains = np.abs(np.einsum("ukn,bn->ukb", scorer.channels[test], scorer.codebook.conj())) ** 2
    chosen = {"ground_truth_map": (scorer.rates(run.truth).beam[test], 0.0)}
    chosen.update({f"{name} {task}": (scorer.rates(prediction).beam[test], run.pilot_overheads[(name, task)])
                   for (name, task), prediction in run.predictions.items() if (name, task) in run.beam_rates})
    curves = {"perfect_csi": [], **{label: [] for label in chosen}}
    for offset_db in offsets_db:
        # [num_test, num_beams] rate of every beam at this transmit power
        rates = np.log2(1.0 + scorer.budget.snr_scale * 10 ** (offset_db / 10) * channel_gains).mean(axis=1)
        curves["perfect_csi"].append(float(rates.max(axis=1).mean()))
        for label, (beams, rho) in chosen.items():
            curves[label].append(float((1.0 - rho) * np.take_along_axis(rates, beams[:, None], axis=1).mean()))
    return {"tx_power_dbm": [scorer.budget.tx_power_dbm + o for o in offsets_db], "mean_rate_bps_hz": curves,
            "ues": "test UEs"}


def antenna_sweep(run: StudyRun, sizes, oversampling: int) -> dict:
    """Mean rate over the test UEs of perfect CSI, the ground-truth map and every angle-predicting (method,
    task) for a BS ULA of each size: true channels, codebook and each map's SCM-driven choice are rebuilt
    per size; each map pays its declared pilot overhead."""
    test = run.test
    curves = {"perfect_csi": [], "ground_truth_map": []}
    labels = [(name, task) for (name, task) in run.predictions if (name, task) in run.beam_rates]
    curves.update({f"{name} {task}": [] for name, task in labels})
    for num_ant in sizes:
        scorer = BeamSelectionScorer(run.paths, AntennaArray(num_cols=int(num_ant)), run.scorer.budget, oversampling)
        curves["perfect_csi"].append(float(scorer.perfect_csi_rates()[test].mean()))
        curves["ground_truth_map"].append(float(scorer.rates(run.truth).rate_bps_hz[test].mean()))
        for name, task in labels:
            rate = scorer.rates(run.predictions[(name, task)]).rate_bps_hz[test]
            curves[f"{name} {task}"].append(float((1.0 - run.pilot_overheads[(name, task)]) * rate.mean()))
    return {"num_bs_ant": [int(n) for n in sizes], "mean_rate_bps_hz": curves, "ues": "test UEs"}


def coded_link_study(run: StudyRun, num_ues: int, num_codewords: int, mode: str, seed: int,
                     batch_size: int = 256) -> dict:
    r"""MCS chosen from each map, BLER and goodput measured on the true coded link (5G LDPC + QAM).

    The BS serves each UE with its best codebook beam (as in link adaptation); the map predicts the effective
    SNR :math:`P/N\,N_t\,g_\mathrm{map}` minus the map's own calibrated back-off (fitted on the calibration
    UEs, :mod:`ckmsim.eval.holdout`), which picks the MCS; the true beamformed OFDM channel decides the BLER.
    ``num_ues`` UEs drawn at random (seeded) from the test UEs that no task measured (all test UEs if too
    few) keep the simulation affordable on a CPU. The genie picks the MCS from the true effective SNR (EESM).
    Goodputs pay each method's declared pilot overhead.
    ``batch_size`` codewords go through each compiled call (padded): with few UEs per MCS a smaller batch
    wastes less on padding and compiles faster (each MCS compiles once per batch size).
    """
    from ckmsim.link.adaptation import map_snr_db
    from ckmsim.link.coded import CodedLinkScorer, beamformed_channels

    scorer = run.scorer
    rng = np.random.default_rng([seed, 23])
    unmeasured = run.test.copy()
    for sets in run.ue_sets.values():
        unmeasured &= sets.held_out
    pool = np.flatnonzero(unmeasured if unmeasured.sum() >= num_ues else run.test)
    picked = np.sort(rng.choice(pool, size=min(num_ues, len(pool)), replace=False))
    best_beams = scorer.beam_rates.argmax(axis=1)[picked]
    h_eff = beamformed_channels(scorer.channels[picked], scorer.codebook[best_beams])
    coded = CodedLinkScorer(h_eff, scorer.budget.snr_scale, num_codewords=num_codewords, seed=seed, mode=mode,
                            batch_size=batch_size)
    genie = coded.genie()

    def summary(score) -> dict:
        return {"goodput_mean_bps_hz": float(score.goodput_bps_hz.mean()), "bler_mean": float(score.bler.mean()),
                "mcs_mean": float(score.mcs.mean()),
                "fraction_of_genie": float(score.goodput_bps_hz.mean() / max(genie.goodput_bps_hz.mean(), 1e-12))}

    def of_map(ckm, margin_db: float, rho: float = 0.0) -> dict:
        entry = summary(coded.score(map_snr_db(scorer, ckm)[picked] - margin_db))
        entry["goodput_mean_bps_hz"] *= 1.0 - rho
        entry["fraction_of_genie"] *= 1.0 - rho
        return {**entry, "margin_db": float(margin_db), "pilot_overhead": float(rho)}

    truth_margin = run.truth_adaptation().margin_db
    return {"num_ues": int(len(picked)), "num_codewords": int(num_codewords), "margin_db": truth_margin,
            "ues": "test UEs no task measured" if unmeasured.sum() >= num_ues else "test UEs",
            "references": {"genie": summary(genie), "ground_truth_map": of_map(run.truth, truth_margin)},
            "methods": {f"{name} {task}": of_map(prediction, run.margins_db[(name, task)], run.pilot_overheads[(name, task)])
                        for (name, task), prediction in run.predictions.items()}}


# ----------------------------------------------------------------------------------------------------------
# Deployment
# ----------------------------------------------------------------------------------------------------------

def _gain_map_at(scene, grid, position_m, settings: RayTracingSettings, ground_m: np.ndarray | None) -> np.ndarray:
    from ckmsim.raytrace.gain_map import gain_map_db
    from ckmsim.raytrace.scene_setup import place_base_station

    place_base_station(scene, position_m, settings)
    return gain_map_db(scene, grid, settings, ground_m)


def _site_ckm(run: StudyRun, gain_db: np.ndarray, position_m) -> xr.Dataset:
    """The true channel-gain CKM of a candidate site, on the study grid."""
    building = run.truth["building"].values
    attrs = {key: run.truth.attrs[key] for key in ("scene", "frequency_hz", "ray_tracing") if key in run.truth.attrs}
    return make_ckm(grid_of(run.truth), {"gain_db": np.where(building, np.nan, gain_db), "building": building},
                    {**attrs, "bs_position_m": [float(v) for v in position_m]})


def deployment_study(run: StudyRun, config: EvaluationConfig, spec: DeploymentSpec, log=print) -> dict:
    """Random existing and candidate sites on open cells, their true maps (RadioMapSolver), each method's
    predicted candidate maps, the chosen site per method, scored on the true maps."""
    from ckmsim.baselines.model_based import distance_weighted_cross_ap
    from ckmsim.scene.load import load_scene

    truth = run.truth
    grid = grid_of(truth)
    open_cells = np.argwhere(~truth["building"].values)
    rng = np.random.default_rng([config.seed, 17])
    picks = open_cells[rng.choice(len(open_cells), size=spec.num_existing - 1 + spec.num_candidates, replace=False)]
    ground_m = truth["ground_m"].values.astype(np.float64) if "ground_m" in truth else np.zeros(grid.shape)
    centers = grid.cell_centers_m()
    # sites stand spec.height_m above the local ground of their cell
    sites = [(float(centers[r, c, 0]), float(centers[r, c, 1]), float(ground_m[r, c] + spec.height_m))
             for r, c in picks]
    scene = load_scene(truth.attrs["scene"])
    settings = RayTracingSettings.from_dict(truth.attrs["ray_tracing"])
    bs = tuple(truth.attrs["bs_position_m"])
    started = time.perf_counter()
    # The serving BS's map is re-made by the same RadioMapSolver as the candidates' (the truth's gain_db is
    # the PathSolver's power sum at the cell centre), so that association compares like with like.
    # [1 + num_sites, num_y, num_x]: the serving BS first, then the existing and the candidate sites
    true_maps = np.stack([_gain_map_at(scene, grid, site, settings, ground_m) for site in [bs] + sites])
    trace_s = time.perf_counter() - started
    existing_positions = [bs] + sites[:spec.num_existing - 1]
    existing = true_maps[:spec.num_existing]
    candidate_positions = sites[spec.num_existing - 1:]
    candidates_true = true_maps[spec.num_existing:]
    users = ~truth["building"].values
    objective = DeploymentObjective(budget=run.scorer.budget, array_gain=float(run.scorer.array.num_ant),
                                    interference=spec.interference, metric=spec.metric)
    outcomes = {"oracle": choose_site(existing, candidates_true, candidates_true, users, objective).to_dict()}
    true_values = np.array(outcomes["oracle"]["true_values"])
    outcomes["random_site"] = {"fraction_of_oracle": float(true_values.mean() / true_values.max())}
    # dict.fromkeys: the union in order, without a method twice (umi_3gpp is both a method and measurement-free)
    methods = spec.methods or tuple(dict.fromkeys(config.methods + MEASUREMENT_FREE))
    degradation = Degradation.from_config({"seed": config.seed, **dict(config.tasks[0])})
    for name in methods:
        predicted = []
        for position, gain_db in zip(candidate_positions, candidates_true):
            if name == "cross_ap_weighted":
                predicted.append(distance_weighted_cross_ap(existing, [p[:2] for p in existing_positions], position[:2]))
                continue
            site = _site_ckm(run, gain_db, position)
            method = STUDY_METHODS[name]()
            predicted.append(method.fit().predict(degradation(site))["gain_db"].values)
        outcome = choose_site(existing, np.stack(predicted), candidates_true, users, objective)
        outcomes[name] = outcome.to_dict()
        log(f"  deployment {name:18s} chose site {outcome.chosen} (oracle {outcome.oracle}): "
            f"{100 * outcome.fraction_of_oracle:.1f} % of the oracle's {spec.metric}")
    return {"existing_positions_m": [list(p) for p in existing_positions],
            "candidate_positions_m": [list(p) for p in candidate_positions], "metric": spec.metric,
            "interference": spec.interference, "task": degradation.task, "outcomes": outcomes,
            "timings_s": {"radio_maps": trace_s}}


# ----------------------------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------------------------

def run_evaluation(config: EvaluationConfig, progress: bool = True, log=print) -> dict:
    """Run every scene's study, the sweeps and the deployment study; write results, report and figures."""
    from ckmsim.eval.figures import plot_deployment, plot_rate_vs_map_error, plot_sweep
    from ckmsim.eval.report import write_evaluation_report

    started = time.perf_counter()
    out = Path(config.out)
    studies = []
    for spec in config.scenes:
        study_config = config.study_config(spec)
        run = run_study(study_config, progress, log)
        write_study_outputs(run, Path(study_config.out), title=f"ckmsim evaluate {config.name}")
        record = dict(run.results)
        record["label"] = spec.label
        t0 = time.perf_counter()
        record["sweeps"] = {"snr": snr_sweep(run, config.snr_offsets_db),
                            "bs_antennas": antenna_sweep(run, config.bs_antennas, config.codebook_oversampling)}
        record["timings_s"]["sweeps"] = time.perf_counter() - t0
        if config.coded_ues:
            t0 = time.perf_counter()
            record["coded_link"] = coded_link_study(run, config.coded_ues, config.coded_codewords, config.coded_mode,
                                                    config.seed, config.coded_batch_size)
            record["timings_s"]["coded_link"] = time.perf_counter() - t0
            log(f"  coded link ({config.coded_ues} UEs): genie goodput "
                f"{record['coded_link']['references']['genie']['goodput_mean_bps_hz']:.3f} bit/s/Hz in "
                f"{record['timings_s']['coded_link']:.1f} s")
        if config.deployment is not None:
            record["deployment"] = deployment_study(run, config, config.deployment, log)
        studies.append(record)
    results = {"ckmsim_version": __version__, "name": config.name, "config": _config_record(config),
               "studies": studies, "timings_s": {}}
    for study in studies:
        label = study["label"]
        plot_sweep(out / f"rate_vs_snr_{label}.png", study["sweeps"]["snr"]["tx_power_dbm"],
                   study["sweeps"]["snr"]["mean_rate_bps_hz"], "BS transmit power [dBm]", label)
        plot_sweep(out / f"rate_vs_antennas_{label}.png", study["sweeps"]["bs_antennas"]["num_bs_ant"],
                   study["sweeps"]["bs_antennas"]["mean_rate_bps_hz"], "BS antennas (ULA)", label, log_x=True)
        if "deployment" in study:
            plot_deployment(out / f"deployment_{label}.png", study["deployment"], label)
    plot_rate_vs_map_error(out / "rate_vs_map_error.png", studies)
    # One total, taken after the last figure, for results.json, report.md and the log line alike
    results["timings_s"]["total"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=2, default=json_default))
    write_evaluation_report(out, results)
    log(f"wrote {out / 'results.json'}, {out / 'report.md'} and figures in {results['timings_s']['total']:.1f} s")
    return results


def _config_record(config: EvaluationConfig) -> dict:
    from dataclasses import asdict

    record = asdict(config)
    record["budget"] = config.budget.to_dict()
    return record
