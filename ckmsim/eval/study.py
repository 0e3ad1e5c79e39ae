"""One study: ground truth -> tasks -> methods -> map and rate records (DESIGN.md, ``eval/``).

:func:`run_study` runs one scene and one BS: the ground truth is ray-traced (or loaded from its cache in
``OUT/ground_truth``, kept with the settings that made it, so a re-run or a run interrupted after ray tracing
does not trace again), every task of :class:`StudyConfig` degrades it, every method reconstructs the map from
each observation, and each reconstruction is scored by map error and by the rates its decisions earn.
:func:`write_study_outputs` writes ``results.json``, ``report.md`` and the figures. ``ckmsim quickstart``
(:mod:`ckmsim.eval.quickstart`) and ``ckmsim evaluate`` (:mod:`ckmsim.eval.evaluate`) are configs over it.

The link scores are fair (:mod:`ckmsim.eval.scoring`): each rate pays the downlink pilot overhead its method
declares, link-adaptation margins are each map's own, calibrated on calibration UEs that are never scored
(:mod:`ckmsim.eval.holdout`), the headline is over the test UEs the task did not measure, and each score is a
share of its own bound.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ckmsim import __version__
from ckmsim.baselines.interpolation import INTERPOLATORS
from ckmsim.baselines.least_squares import LEAST_SQUARES
from ckmsim.baselines.model_based import MODEL_BASED
from ckmsim.baselines.scattered import SCATTERED
from ckmsim.errors import CkmsimError
from ckmsim.eval.holdout import DEFAULT_BLOCK_CELLS, DEFAULT_CALIBRATION_FRACTION, check_split_settings
from ckmsim.eval.scoring import StudyScorers, UeSets, summarize_reference
from ckmsim.link.adaptation import RateAdaptationScorer
from ckmsim.link.budget import LinkBudget
from ckmsim.link.csi_beamforming import sweep_overhead
from ckmsim.link.map_csi import MapCsiBeamformingScorer
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import read_ckm, write_ckm
from ckmsim.maps.degrade import Degradation
from ckmsim.maps.grid import Grid
from ckmsim.metrics.map_metrics import map_score_cells, map_scores, scm_cosine_similarity
from ckmsim.metrics.regions import region_masks, region_scores
from ckmsim.models.pretrained import (DEFAULT_CKMDIFF, DEFAULT_ESRRESNET, PRETRAINED, pretrained_ckmdiff,
                                      pretrained_esrresnet)
from ckmsim.raytrace.ground_truth import trace_ground_truth
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.load import check_grid_in_scene, load_scene
from ckmsim.validation import is_whole_number

#: Methods a study can run: every single-transmitter baseline, the shipped E-SRResNet (x2, and x4 as a cascade)
#: and the shipped CKMDiff (gain only; the tasks it was trained for, x2 / x4 sub-sampling among them;
#: :mod:`ckmsim.models.pretrained`), name -> factory of an unfitted Method. Those that reconstruct the
#: per-path layers get every rate score; gain-only ones (model-based, CKMDiff) get the link-adaptation score.
STUDY_METHODS = {**INTERPOLATORS, **SCATTERED, **LEAST_SQUARES, **MODEL_BASED, "esrresnet": pretrained_esrresnet,
                 "ckmdiff": pretrained_ckmdiff}


def register_method(name: str, factory, replace: bool = False) -> None:
    """Make a method of your own available to studies and evaluations by ``name``.

    ``factory()`` must return an unfitted :class:`~ckmsim.baselines.base.Method` (a class is a factory).
    List ``name`` in ``StudyConfig(methods=...)`` or an evaluation config's ``methods`` in the same Python
    session. A shipped method's name is refused unless ``replace`` (a study would otherwise silently score
    another algorithm under a known name).
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise CkmsimError(f"A method name must be a non-empty string without surrounding spaces. Received: {name!r}")
    if not callable(factory):
        raise CkmsimError(f"register_method needs a factory (a Method class or a function returning a Method). "
                          f"Received: {factory!r}")
    if name in STUDY_METHODS and not replace:
        raise CkmsimError(f"'{name}' is already a study method ({STUDY_METHODS[name]!r}); choose another name or "
                          f"pass replace=True")
    STUDY_METHODS[name] = factory


#: The learned study methods: name -> (shipped set of :data:`ckmsim.models.pretrained.PRETRAINED` they load,
#: the layers their networks predict), recorded with their results so that a report can say what the
#: weights are and which layers come from elsewhere.
STUDY_WEIGHTS = {"esrresnet": (DEFAULT_ESRRESNET, "path_gain_db and aoa_az_deg of the two strongest paths; every "
                                                  "other layer, gain_db among them, is bicubic interpolation (at "
                                                  "x4 of the bicubic-filled x2 lattice)"),
                 "ckmdiff": (DEFAULT_CKMDIFF, "gain_db only (no path layers)")}
#: Version of the cached ground-truth layout; bump it whenever what the tracer stores changes.
GROUND_TRUTH_FORMAT = 5
#: Height of the default BS above the highest surface around it [m] ("rooftop height"; see
#: :func:`ckmsim.scene.study_area.default_bs_position_m`).
BS_MAST_M = 2.0


@dataclass(frozen=True, kw_only=True)
class StudySettings:
    """The settings one study shares with an evaluation of many (:class:`StudyConfig`,
    :class:`ckmsim.eval.evaluate.EvaluationConfig`): the methods, the BS and UE arrays, the fair-score split,
    the link budget and the ray tracing.

    ``methods``: names of :data:`STUDY_METHODS`. The BS is a ULA of ``num_bs_ant`` elements with a DFT
    codebook oversampled ``codebook_oversampling`` times.

    CSI beamforming (:mod:`ckmsim.link.map_csi`): ``num_ue_ant`` is the UE's half-wavelength ULA (1, the
    default, is LAD-CKM's and the dataset CSI's single-antenna UE, whose true CSI the beam-selection scorer
    already holds; more antennas also use the maps' ``aod_*`` layers, at the cost of the MIMO CSI of every
    ray-traced path). No pilot overhead is configured: every method's rates pay the downlink pilot overhead
    it declares (``Method.downlink_pilot_overhead``, 0 for a map read at the UE's position).

    Fair scores (:mod:`ckmsim.eval.holdout`): the UEs are split once into calibration and test UEs by square
    blocks of ``calibration_block_cells`` cells, ``calibration_fraction`` of the blocks (seeded by the study's
    seed) calibrating each map's own link-adaptation margin (``target_outage`` on the calibration UEs the task
    did not measure); every reported rate is over test UEs, the headline over those the task did not measure.
    """

    methods: tuple[str, ...] = tuple(STUDY_METHODS)
    num_bs_ant: int = 32
    codebook_oversampling: int = 1
    target_outage: float = 0.1
    num_ue_ant: int = 1
    calibration_block_cells: int = DEFAULT_BLOCK_CELLS
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION
    budget: LinkBudget = field(default_factory=LinkBudget)
    ray_tracing: RayTracingSettings = field(default_factory=RayTracingSettings)

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in STUDY_METHODS]
        if unknown:
            raise CkmsimError(f"Unknown method(s) {unknown}; available: {sorted(STUDY_METHODS)}")
        if not is_whole_number(self.num_ue_ant, minimum=1):
            raise CkmsimError(f"num_ue_ant must be an integer >= 1. Received: num_ue_ant={self.num_ue_ant!r}")
        check_split_settings(self.calibration_block_cells, self.calibration_fraction)

    def shared_settings(self) -> dict:
        """The :class:`StudySettings` fields of this config, by name (to build a study from an evaluation)."""
        return {f.name: getattr(self, f.name) for f in fields(StudySettings)}


@dataclass(frozen=True)
class StudyConfig(StudySettings):
    """Everything one study depends on (with the :class:`StudySettings`); recorded in ``results.json``.

    The area: ``num_cells`` x ``num_cells`` cells of ``cell_size_m`` at UE height ``ue_height_m``, centred on
    ``center_m`` (or the BS's x, y) when given, else picked among the scene's windows by open-cell fraction,
    ``preferred_center_m`` first where it qualifies (:func:`study_geometry`). The BS stands at
    ``bs_position_m``, or ``BS_MAST_M`` above the highest surface around the area's centre.

    ``tasks``: the degradations, each a :meth:`ckmsim.maps.degrade.Degradation.from_config` table (``seed``
    defaults to the study's); at least one. ``num_map_paths``: per-path layers the ground-truth CKM keeps.
    """

    scene: str
    out: str
    seed: int = 42
    num_cells: int = 64
    cell_size_m: float = 2.0
    ue_height_m: float = 1.5
    center_m: tuple[float, float] | None = None
    bs_position_m: tuple[float, float, float] | None = None
    preferred_center_m: tuple[float, float] | None = None
    tasks: tuple[dict, ...] = ()
    num_map_paths: int = 2

    def __post_init__(self):
        super().__post_init__()
        if not is_whole_number(self.num_map_paths, minimum=1):
            raise CkmsimError(f"num_map_paths must be an integer >= 1. Received: num_map_paths={self.num_map_paths!r}")
        # fails early, naming the bad task
        if not self.degradations():
            raise CkmsimError("The study has no task: give at least one degradation in tasks")

    def degradations(self) -> list[Degradation]:
        """The tasks, each seeded by the study's ``seed`` unless its table names one."""
        return [Degradation.from_config({"seed": self.seed, **dict(task)}) for task in self.tasks]


def _check_out_dir(out: Path) -> None:
    """Create the output folder and prove it is writable, before any ray is traced."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".ckmsim-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise CkmsimError(f"Output folder '{out}' cannot be written: {err.strerror or err}") from None


def study_geometry(scene, config: StudyConfig) -> tuple[Grid, tuple[float, float, float]]:
    """The grid and BS position of the study (see :class:`StudyConfig`).

    An explicit ``center_m`` (or the BS's x, y) is used as given. Otherwise
    :func:`ckmsim.scene.study_area.pick_study_area` picks the area by its open-cell fraction among windows
    inside the scene (``preferred_center_m`` first where it qualifies), shrinking the cells of scenes narrower
    than the area, and refuses naming the scene when no window qualifies. The default BS stands above the
    area's centre, ``BS_MAST_M`` over the highest surface around it
    (:func:`ckmsim.scene.study_area.default_bs_position_m`).
    """
    from ckmsim.scene.study_area import default_bs_position_m, pick_study_area

    explicit = config.center_m if config.center_m is not None else (
        config.bs_position_m[:2] if config.bs_position_m is not None else None)
    if explicit is not None:
        grid = Grid(float(explicit[0]), float(explicit[1]), config.num_cells, config.num_cells,
                    config.cell_size_m, config.ue_height_m)
        check_grid_in_scene(scene, grid, config.scene)
    else:
        grid = pick_study_area(scene, config.scene, config.num_cells, config.cell_size_m, config.ue_height_m,
                               preferred_center_m=config.preferred_center_m).grid
    if config.bs_position_m is not None:
        bs = tuple(float(v) for v in config.bs_position_m)
    else:
        bs = default_bs_position_m(scene, grid, BS_MAST_M)
    return grid, bs


def _ground_truth_key(config: StudyConfig, grid: Grid, bs) -> dict:
    """What the cached ground truth depends on; a cache with another key is traced again."""
    settings = RayTracingSettings.from_dict({**config.ray_tracing.to_dict(), "seed": config.seed})
    return {"format": GROUND_TRUTH_FORMAT, "ckmsim": __version__, "scene": config.scene, "grid": grid.to_dict(), "bs_position_m": list(bs),
            "ray_tracing": settings.to_dict(), "num_map_paths": config.num_map_paths}


def load_or_trace_ground_truth(scene, config: StudyConfig, grid: Grid, bs, out: Path,
                               progress: bool) -> tuple[xr.Dataset, xr.Dataset, bool]:
    """Ground truth from ``out/ground_truth`` if it was made with the same key, else traced and cached.

    The cache is written to a temporary folder and renamed into place, so an interrupted run leaves either
    a complete cache or none. Returns ``(ckm, paths, from_cache)``.
    """
    key = _ground_truth_key(config, grid, bs)
    cache = out / "ground_truth"
    key_file = cache / "key.json"
    if key_file.is_file() and json.loads(key_file.read_text()) == key:
        paths = xr.open_zarr(cache / "paths.zarr", consolidated=False).load()
        return read_ckm(cache / "ckm.zarr"), paths, True
    settings = RayTracingSettings.from_dict(key["ray_tracing"])
    ckm, paths = trace_ground_truth(scene, config.scene, grid, bs, settings, config.num_map_paths, progress)
    staging = out / "ground_truth.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_ckm(ckm, staging / "ckm.zarr")
    paths.to_zarr(staging / "paths.zarr", mode="w", consolidated=False)
    (staging / "key.json").write_text(json.dumps(key, indent=1))
    shutil.rmtree(cache, ignore_errors=True)
    staging.rename(cache)
    return ckm, paths, False


def _method_record(name: str, task: str, prediction: xr.Dataset, truth: xr.Dataset, regions: dict,
                   scorers: StudyScorers, sets: UeSets, truth_scm: np.ndarray, pilot_overhead: float):
    """One entry of ``results.json["methods"]`` and the per-UE :class:`~ckmsim.eval.scoring.MethodScore`
    behind it (rates over every scored UE, pilots paid; the record's summaries are over the task's UE sets).

    Rate entries (:meth:`~ckmsim.eval.scoring.StudyScorers.method_rate_records`): the headline over the test
    UEs the task did not measure, ``all_test_ues`` beside it; ``rate`` (beam selection), ``rate_precoding``
    and ``rate_csi_beamforming`` are None for a gain-only method (and the last for a map without the layers
    of :func:`ckmsim.link.map_csi.required_layers`). Shares are of each score's own bound.

    ``map_num_cells``: for each key of ``map``, the cells (path-cells for the path scores, UEs for
    ``scm_cosine_mean``) it averaged over (:func:`~ckmsim.metrics.map_metrics.map_score_cells`);
    ``map["false_floor_fraction"]``: share of the non-building cells the prediction puts at the gain floor
    (no path) where the truth receives signal. ``weights``: the shipped set a learned method loads and the
    layers its networks predict (:data:`STUDY_WEIGHTS`)."""
    scores = map_scores(prediction, truth)
    num_cells = map_score_cells(prediction, truth)
    # Cells no ray reaches sit at the -250 dB floor and dominate a dB RMSE; the score over covered cells
    # says how well the method does where there is signal.
    floor_db = truth.attrs["gain_floor_db"]
    open_cells = ~truth["building"].values
    covered = open_cells & (truth["gain_db"].values > floor_db)
    scores["covered_gain_rmse_db"] = map_scores(prediction, truth, region=covered)["gain_rmse_db"]
    num_cells["covered_gain_rmse_db"] = int(covered.sum())
    # A map left at the floor where the truth has signal (e.g. zero-filled) errs by ~100 dB per such cell
    scores["false_floor_fraction"] = float(np.count_nonzero(covered & (prediction["gain_db"].values <= floor_db))
                                           / np.count_nonzero(open_cells))
    num_cells["false_floor_fraction"] = int(open_cells.sum())
    # The same scores per region of the truth: LoS, NLoS and the band around their boundary (where maps err
    # most) tell apart methods that tie on the whole map.
    by_region = region_scores(prediction, truth, regions)
    score = scorers.score(prediction, sets, pilot_overhead)
    if score.scm is not None:
        # A map score, like the others over every UE
        scores["scm_cosine_mean"] = float(np.mean(scm_cosine_similarity(score.scm, truth_scm)))
        # [num_ue, N, N]: one SCM per scored UE
        num_cells["scm_cosine_mean"] = int(score.scm.shape[0])
    record = {"name": name, "task": task, "map": scores, "map_num_cells": num_cells, "map_by_region": by_region,
              **scorers.method_rate_records(score, sets)}
    if name in STUDY_WEIGHTS:
        shipped, predicts = STUDY_WEIGHTS[name]
        record["weights"] = {"name": shipped, "description": PRETRAINED[shipped].description, "predicts": predicts}
    return record, score


@dataclass
class StudyRun:
    """Everything one study (one scene, one BS) computed: the results record and what later analyses reuse
    (sweeps over SNR and array size, figures)."""

    results: dict
    truth: xr.Dataset
    paths: xr.Dataset
    scorers: StudyScorers
    observations: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    #: (method, task) -> per-UE rates ``[num_ue]`` over every scored UE, the method's pilots paid
    beam_rates: dict = field(default_factory=dict)
    precoding_rates: dict = field(default_factory=dict)
    adapted_rates: dict = field(default_factory=dict)
    csi_rates: dict = field(default_factory=dict)
    #: (method, task) -> the method's own link-adaptation margin [dB] and declared pilot overhead
    margins_db: dict = field(default_factory=dict)
    pilot_overheads: dict = field(default_factory=dict)
    #: task -> UeSets (test, held-out = test UEs not measured by the task, calibration)
    ue_sets: dict = field(default_factory=dict)
    #: reference name -> per-UE rates ``[num_ue]``
    reference_rates: dict = field(default_factory=dict)

    @property
    def scorer(self) -> BeamSelectionScorer:
        """The beam-selection scorer (true channels, codebook, budget of the UEs)."""
        return self.scorers.beam

    @property
    def csi(self) -> MapCsiBeamformingScorer:
        """The CSI-beamforming scorer."""
        return self.scorers.csi

    @property
    def test(self) -> np.ndarray:
        """``[num_ue]`` bool: the test UEs (every reported rate is over them)."""
        return self.scorers.split.test

    def truth_adaptation(self) -> RateAdaptationScorer:
        """Link adaptation of the ground-truth map with its margin calibrated on the calibration UEs."""
        return self.scorers.adaptation_scorer(self.truth, self.scorers.ue_sets(None))


def run_study(config: StudyConfig, progress: bool = True, log=print) -> StudyRun:
    """Ground truth (traced or cached in ``config.out``), every method on every task, map and link scores.

    Returns a :class:`StudyRun` whose ``results`` has the record shape of ``results.json``; nothing but the
    ground-truth cache is written.
    """
    started = time.perf_counter()
    out = Path(config.out)
    scene = load_scene(config.scene)
    grid, bs = study_geometry(scene, config)
    _check_out_dir(out)
    log(f"scene {config.scene}: {grid.num_y}x{grid.num_x} cells of {grid.cell_size_m:g} m around "
        f"({grid.center_x_m:.1f}, {grid.center_y_m:.1f}) m, BS at ({bs[0]:.1f}, {bs[1]:.1f}, {bs[2]:.1f}) m")

    t0 = time.perf_counter()
    truth, paths, cached = load_or_trace_ground_truth(scene, config, grid, bs, out, progress)
    ray_tracing_s = time.perf_counter() - t0
    log(f"ground truth {'loaded from cache' if cached else 'ray-traced'} in {ray_tracing_s:.1f} s: "
        f"{truth.attrs['num_ues']} UE cells, {int(truth['building'].sum())} building cells")

    t0 = time.perf_counter()
    array = AntennaArray(num_cols=config.num_bs_ant)
    # CSI beamforming (LAD-CKM eqs. (10)-(11)) on the same UEs and BS array, with a UE ULA
    ue_array = AntennaArray(num_cols=config.num_ue_ant)
    scorers = StudyScorers(paths, truth.attrs["frequency_hz"], array, ue_array, config.budget,
                           config.codebook_oversampling, config.target_outage, config.calibration_block_cells,
                           config.calibration_fraction, config.seed)
    scorer, csi, split = scorers.beam, scorers.csi, scorers.split
    references, truth_score = scorers.references(truth, config.seed)
    regions = region_masks(truth)
    link_setup_s = time.perf_counter() - t0
    log(f"{scorers.num_ues} scored UEs: {int(split.calibration.sum())} calibrate the link-adaptation margins "
        f"({split.to_dict()['num_calibration_blocks']} blocks of {split.block_cells} x {split.block_cells} cells), "
        f"{int(split.test.sum())} are scored; ground-truth map margin {truth_score.margin_db:.1f} dB")
    run = StudyRun(results={}, truth=truth, paths=paths, scorers=scorers,
                   reference_rates={name: rates for name, (rates, _) in references.items()})

    records, skipped = [], []
    t0 = time.perf_counter()
    degradations = config.degradations()
    # A bar over the (task, method) pairs (10-20 s each on the munich quickstart); log lines print above it
    bar = tqdm(total=len(degradations) * len(config.methods), desc="methods", unit="method", disable=not progress)
    say = bar.write if progress and log is print else log
    for degradation in degradations:
        observation = degradation(truth)
        task = observation.task
        run.observations[task] = observation
        sets = run.ue_sets[task] = scorers.ue_sets(observation)
        say(f"  {task}: {int(sets.held_out.sum())} of the {int(sets.test.sum())} test UEs are not measured "
            f"(the headline); margins calibrated on {int(sets.calibration.sum())} UEs")
        for name in config.methods:
            bar.set_postfix_str(f"{task} {name}")
            method = STUDY_METHODS[name]()
            reason = method.unsupported_reason(observation)
            if reason is not None:
                skipped.append({"name": name, "task": task, "reason": reason})
                say(f"  {task:6s} {name:16s} skipped: {reason}")
                bar.update()
                continue
            prediction = method.fit().predict(observation)
            rho = float(getattr(method, "downlink_pilot_overhead", 0.0))
            record, score = _method_record(name, task, prediction, truth, regions, scorers, sets, truth_score.scm, rho)
            records.append(record)
            key = (name, task)
            run.adapted_rates[key], run.margins_db[key], run.pilot_overheads[key] = score.adaptation, score.margin_db, rho
            for store, rates in ((run.beam_rates, score.beam), (run.precoding_rates, score.precoding),
                                 (run.csi_rates, score.csi)):
                if rates is not None:
                    store[key] = rates
            run.predictions[key] = prediction
            shares = [("beam selection", record["rate"]), ("precoding", record["rate_precoding"]),
                      ("link adaptation", record["rate_adaptation"]), ("CSI beamforming", record["rate_csi_beamforming"])]
            say(f"  {task:6s} {name:16s} gain RMSE {record['map']['gain_rmse_db']:6.2f} dB; % of own bound: " + ", ".join(
                f"{label} {100 * entry['fraction_of_perfect_csi']:.1f}" for label, entry in shares if entry is not None)
                + f" (margin {score.margin_db:.1f} dB, rho {rho:g})")
            bar.update()
    bar.close()
    methods_s = time.perf_counter() - t0

    extras = {"ground_truth_map_adaptation": {"outage_fraction": truth_score.outage.astype(float)}}
    reference_records = {name: summarize_reference(rates, bound, split.test, run.ue_sets, extras.get(name))
                         for name, (rates, bound) in references.items()}
    for entry in (reference_records["ground_truth_map_adaptation"],
                  *reference_records["ground_truth_map_adaptation"]["by_task"].values()):
        entry["margin_db"] = truth_score.margin_db
    run.results = {
        "ckmsim_version": __version__,
        "scene": config.scene,
        "grid": grid.to_dict(),
        "bs_position_m": list(bs),
        "ray_tracing": truth.attrs["ray_tracing"],
        "link": {"bs_array": {"type": "ULA", "num_ant": array.num_ant, "spacing_wavelengths": array.spacing_wavelengths},
                 "codebook": {"type": "DFT", "oversampling": config.codebook_oversampling,
                              "num_beams": int(scorer.codebook.shape[0])},
                 "budget": config.budget.to_dict(), "num_ues": scorers.num_ues,
                 "ue_split": split.to_dict(),
                 "headline": "test UEs the task did not measure (all test UEs beside it, in all_test_ues); "
                             "references: all test UEs, and per task (by_task) that task's headline UEs",
                 "rate": "(1 - rho) mean over subcarriers of log2(1 + SNR |f^H h_k|^2) on the true ray-traced "
                         "channel, rho the method's declared downlink pilot overhead",
                 "bounds": {"beam selection": "perfect_csi: best DFT beam chosen on the true channel",
                            "precoding": "perfect_csi_precoding: eigen-beamforming (MRT) with the true channel "
                                         "on every subcarrier, no codebook",
                            "link adaptation": "perfect_csi: the best DFT beam's rate",
                            "CSI beamforming": "perfect_csi_beamforming: best DFT pair chosen on the true CSI"},
                 "rate_adaptation": "best beam; rate log2(1 + SNR N g_map 10^(-margin/10)) chosen from the map, "
                                    "0 when above the true channel's rate",
                 "adaptation_margin": f"each map's own, calibrated so that its outage on the calibration UEs "
                                      f"(not measured by the task) is {config.target_outage:.0%}",
                 "adaptation_margin_db": truth_score.margin_db,
                 "csi_beamforming": {
                     "ue_array": {"type": "ULA", "num_ant": ue_array.num_ant,
                                  "spacing_wavelengths": ue_array.spacing_wavelengths},
                     "num_pairs": csi.scorer.num_pairs,
                     "beam_sweep_overhead": sweep_overhead(csi.scorer.num_pairs),
                     "rate": "(1 - rho) mean over subcarriers of log2(1 + SNR |w^H H_k f|^2) on the true MIMO-OFDM "
                             "channel, (f, w) the DFT pair with the largest predicted gain (LAD-CKM eqs. 10-11), "
                             "rho the method's declared downlink pilot overhead",
                     "map_csi": "L map paths per cell: sqrt(gain), phase -2 pi (f_c + f) toa, BS response at the "
                                "AoA, UE response at the AoD"}},
        "references": reference_records,
        "methods": records,
        "skipped": skipped,
        "config": {"seed": config.seed, "tasks": [d.to_config() for d in config.degradations()],
                   "methods": list(config.methods), "num_map_paths": config.num_map_paths,
                   "target_outage": config.target_outage, "calibration_block_cells": config.calibration_block_cells,
                   "calibration_fraction": config.calibration_fraction},
        "timings_s": {"ground_truth": ray_tracing_s, "ground_truth_from_cache": cached,
                      "solver_calls": truth.attrs.get("timings_s", {}), "link_setup": link_setup_s,
                      "methods_and_scores": methods_s, "total": time.perf_counter() - started},
    }
    return run


def write_study_outputs(run: StudyRun, out: Path, title: str) -> None:
    """The figures, ``results.json`` and ``report.md`` (headed ``title``) of one study, into ``out``.

    The time the figures take is added to ``run.results["timings_s"]`` (``outputs``, and in ``total``), so
    that both files state the whole run's time.
    """
    from ckmsim.eval.figures import plot_ue_split, write_figures
    from ckmsim.eval.report import write_report

    started = time.perf_counter()
    references, bounds = run.reference_rates, run.scorers.bounds
    write_figures(out, run.truth, run.observations, run.predictions,
                  {"beam selection": (bounds["beam"], references["ground_truth_map"], None, run.beam_rates),
                   "SCM precoding": (bounds["precoding"], references["ground_truth_map_precoding"],
                                     {"perfect statistics (wideband eigenvector)":
                                      references["perfect_statistics_precoding"]}, run.precoding_rates),
                   "link adaptation": (bounds["adaptation"], references["ground_truth_map_adaptation"], None,
                                       run.adapted_rates),
                   "CSI beamforming": (bounds["csi"], references["ground_truth_map_csi_beamforming"],
                                       {"beam sweep": references["beam_sweep"],
                                        "random beam": references["random_beam"]}, run.csi_rates)},
                  {task: sets.held_out for task, sets in run.ue_sets.items()})
    plot_ue_split(out / "ue_split.png", run.truth, run.scorer.ue_cells, run.ue_sets)
    timings = run.results["timings_s"]
    timings["outputs"] = time.perf_counter() - started
    timings["total"] += timings["outputs"]
    (out / "results.json").write_text(json.dumps(run.results, indent=2, default=json_default))
    write_report(out, run.results, title)


def json_default(value):
    """JSON for numpy scalars and dataclasses that slip into the results."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
