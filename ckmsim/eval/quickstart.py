"""`ckmsim quickstart`: one scene, one BS, sparse sampling, classical reconstructions, map and link scores.

The run has the shape every later study keeps: ground truth -> degradation -> methods -> map score and link
score -> ``results.json`` + ``report.md`` + figures. The ground truth is cached in ``OUT/ground_truth`` with
the settings that made it, so a re-run (or a run interrupted after ray tracing) does not trace again.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim import __version__
from ckmsim.baselines.interpolation import INTERPOLATORS
from ckmsim.baselines.least_squares import LEAST_SQUARES
from ckmsim.baselines.model_based import MODEL_BASED
from ckmsim.baselines.scattered import SCATTERED
from ckmsim.errors import CkmsimError
from ckmsim.link.adaptation import RateAdaptationScorer, calibrate_margin_db
from ckmsim.link.budget import LinkBudget
from ckmsim.link.csi_beamforming import sweep_overhead
from ckmsim.link.map_csi import PARTIAL_PILOT_OVERHEAD, MapCsiBeamformingScorer
from ckmsim.link.precoding import SCMPrecodingScorer
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import read_ckm, write_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.metrics.map_metrics import map_scores, scm_cosine_similarity
from ckmsim.metrics.rate_metrics import rate_summary
from ckmsim.metrics.regions import region_masks, region_scores
from ckmsim.models.pretrained import pretrained_esrresnet
from ckmsim.scene.geometry import surface_height_m
from ckmsim.raytrace.ground_truth import trace_ground_truth
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.load import check_grid_in_scene, load_scene, scene_bounds
from ckmsim.validation import check_fraction, is_whole_number

#: Curated study-area centres, used when they qualify (:func:`ckmsim.scene.study_area.pick_study_area`);
#: munich's keeps its published quickstart numbers comparable. Other scenes' areas are picked.
DEFAULT_CENTERS_M = {"munich": (8.5, 21.0)}
#: Methods the quickstart can run: every single-transmitter baseline and the shipped E-SRResNet (x2 tasks
#: only; :mod:`ckmsim.models.pretrained`), name -> factory of an unfitted Method. Those that reconstruct the
#: per-path layers get every rate score; gain-only ones (model-based) get the link-adaptation score.
QUICKSTART_METHODS = {**INTERPOLATORS, **SCATTERED, **LEAST_SQUARES, **MODEL_BASED, "esrresnet": pretrained_esrresnet}
#: Layers a prediction needs for the beam-selection score.
BEAM_LAYERS = ("path_gain_db", "aoa_az_deg", "aoa_el_deg")
#: Version of the cached ground-truth layout; bump it whenever what the tracer stores changes.
GROUND_TRUTH_FORMAT = 4
#: Height of the default BS above the highest surface around it [m] ("rooftop height"; see
#: :func:`ckmsim.scene.study_area.default_bs_position_m`).
BS_MAST_M = 2.0


@dataclass
class QuickstartConfig:
    """Everything a quickstart run depends on; stored in ``results.json``.

    ``center_m`` and ``bs_position_m`` are filled from the scene when left ``None``: the study area is
    centred on ``DEFAULT_CENTERS_M`` or the scene's bounding-box centre, and the BS stands above that centre,
    ``BS_MAST_M`` above the highest surface of the study area.

    CSI beamforming (:mod:`ckmsim.link.map_csi`): ``num_ue_ant`` is the UE's half-wavelength ULA (1, the
    default, is LAD-CKM's and the dataset CSI's single-antenna UE, whose true CSI the beam-selection scorer
    already holds; more antennas also use the maps' ``aod_*`` layers, at the cost of the MIMO CSI of every
    ray-traced path); ``csi_pilot_overhead`` is the :math:`\\rho` charged to every map-driven choice.
    """

    scene: str = "munich"
    out: str = "ckmsim-out"
    seed: int = 42
    num_cells: int = 64
    cell_size_m: float = 2.0
    ue_height_m: float = 1.5
    center_m: tuple[float, float] | None = None
    bs_position_m: tuple[float, float, float] | None = None
    factors: tuple[int, ...] = (2, 4)
    tasks: tuple[dict, ...] = ()
    methods: tuple[str, ...] = tuple(QUICKSTART_METHODS)
    num_map_paths: int = 2
    num_bs_ant: int = 32
    codebook_oversampling: int = 1
    target_outage: float = 0.1
    num_ue_ant: int = 1
    csi_pilot_overhead: float = PARTIAL_PILOT_OVERHEAD
    budget: LinkBudget = field(default_factory=LinkBudget)
    ray_tracing: RayTracingSettings = field(default_factory=RayTracingSettings)

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in QUICKSTART_METHODS]
        if unknown:
            raise CkmsimError(f"Unknown method(s) {unknown}; available: {sorted(QUICKSTART_METHODS)}")
        if any(int(f) != f or f < 2 for f in self.factors):
            raise CkmsimError(f"Down-sampling factors must be integers >= 2. Received: factors={self.factors}")
        if not is_whole_number(self.num_map_paths, minimum=1):
            raise CkmsimError(f"num_map_paths must be an integer >= 1. Received: num_map_paths={self.num_map_paths!r}")
        if not is_whole_number(self.num_ue_ant, minimum=1):
            raise CkmsimError(f"num_ue_ant must be an integer >= 1. Received: num_ue_ant={self.num_ue_ant!r}")
        check_fraction(self.csi_pilot_overhead, "csi_pilot_overhead")
        self.degradations()  # fails early, naming the bad task

    def degradations(self) -> list[Degradation]:
        """The tasks: the configured degradations, or uniform x``factor`` sampling for each factor."""
        if self.tasks:
            return [Degradation.from_config({"seed": self.seed, **dict(task)}) for task in self.tasks]
        return [Degradation([Subsample(int(factor))], seed=self.seed) for factor in self.factors]


def _check_out_dir(out: Path) -> None:
    """Create the output folder and prove it is writable, before any ray is traced."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".ckmsim-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise CkmsimError(f"Output folder '{out}' cannot be written: {err.strerror or err}") from None


def _study_geometry(scene, config: QuickstartConfig) -> tuple[Grid, tuple[float, float, float]]:
    """The grid and BS position of the run (see :class:`QuickstartConfig`).

    An explicit ``center_m`` (or the BS's x, y) is used as given. Otherwise
    :func:`ckmsim.scene.study_area.pick_study_area` picks the area by its open-cell fraction among windows
    inside the scene (``DEFAULT_CENTERS_M`` first where it qualifies), shrinking the cells of scenes narrower
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
                               preferred_center_m=DEFAULT_CENTERS_M.get(config.scene)).grid
    if config.bs_position_m is not None:
        bs = tuple(float(v) for v in config.bs_position_m)
    else:
        bs = default_bs_position_m(scene, grid, BS_MAST_M)
    return grid, bs


def _ground_truth_key(config: QuickstartConfig, grid: Grid, bs) -> dict:
    """What the cached ground truth depends on; a cache with another key is traced again."""
    settings = RayTracingSettings.from_dict({**config.ray_tracing.to_dict(), "seed": config.seed})
    return {"format": GROUND_TRUTH_FORMAT, "ckmsim": __version__, "scene": config.scene, "grid": grid.to_dict(), "bs_position_m": list(bs),
            "ray_tracing": settings.to_dict(), "num_map_paths": config.num_map_paths}


def load_or_trace_ground_truth(scene, config: QuickstartConfig, grid: Grid, bs, out: Path,
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
                   scorer: BeamSelectionScorer, adaptation: RateAdaptationScorer, truth_scm: np.ndarray,
                   perfect: np.ndarray, csi: MapCsiBeamformingScorer
                   ) -> tuple[dict, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """One entry of ``results.json["methods"]`` and the per-UE rates behind it: beam selection (None for a
    gain-only method, whose ``rate`` entry is None too), link adaptation and CSI beamforming (None, and
    ``rate_csi_beamforming`` None, for a map without the layers of :func:`ckmsim.link.map_csi.required_layers`).

    ``rate_csi_beamforming``'s share of perfect CSI is that of CSI beamforming with the true CSI (the
    ``perfect_csi_beamforming`` reference), not of the single-antenna beam selection's ``perfect_csi``."""
    scores = map_scores(prediction, truth)
    # Cells no ray reaches sit at the -250 dB floor and dominate a dB RMSE; the score over covered cells
    # says how well the method does where there is signal.
    covered = ~truth["building"].values & (truth["gain_db"].values > truth.attrs["gain_floor_db"])
    scores["covered_gain_rmse_db"] = map_scores(prediction, truth, region=covered)["gain_rmse_db"]
    adapted = adaptation.rates(prediction)
    # The same scores per region of the truth: LoS, NLoS and the band around their boundary (where maps err
    # most) tell apart methods that tie on the whole map.
    by_region = region_scores(prediction, truth, regions)
    record = {"name": name, "task": task, "map": scores, "map_by_region": by_region, "rate": None,
              "rate_adaptation": {**rate_summary(adapted.rate_bps_hz, perfect),
                                  "outage_fraction": float(np.mean(adapted.outage))},
              "rate_csi_beamforming": None}
    if not all(layer in prediction for layer in BEAM_LAYERS):
        return record, None, adapted.rate_bps_hz, None
    link = scorer.rates(prediction)
    scores["scm_cosine_mean"] = float(np.mean(scm_cosine_similarity(link.scm, truth_scm)))
    record["rate"] = rate_summary(link.rate_bps_hz, perfect)
    # SCM-based precoding: the principal eigenvector of the predicted SCM, not restricted to the codebook.
    record["rate_precoding"] = rate_summary(SCMPrecodingScorer(scorer).rates(prediction).rate_bps_hz, perfect)
    if not csi.can_score(prediction):
        return record, link.rate_bps_hz, adapted.rate_bps_hz, None
    # LAD-CKM eqs. (10)-(11): the pair chosen on the map's CSI, the rate on the true CSI, pilots paid
    csi_score = csi.rates(prediction)
    record["rate_csi_beamforming"] = {**rate_summary(csi_score.rate_bps_hz, csi.scorer.perfect_csi_rates()),
                                      "pilot_overhead": csi.pilot_overhead,
                                      "gain_loss_db_mean": float(np.mean(csi_score.gain_loss_db))}
    return record, link.rate_bps_hz, adapted.rate_bps_hz, csi_score.rate_bps_hz


@dataclass
class StudyRun:
    """Everything one study (one scene, one BS) computed: the results record and what later analyses reuse
    (sweeps over SNR and array size, figures)."""

    results: dict
    truth: xr.Dataset
    paths: xr.Dataset
    scorer: BeamSelectionScorer
    adaptation: RateAdaptationScorer
    observations: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    beam_rates: dict = field(default_factory=dict)
    adapted_rates: dict = field(default_factory=dict)
    reference_rates: dict = field(default_factory=dict)
    csi: MapCsiBeamformingScorer | None = None
    csi_rates: dict = field(default_factory=dict)


def run_study(config: QuickstartConfig, progress: bool = True, log=print) -> StudyRun:
    """Ground truth (traced or cached in ``config.out``), every method on every task, map and link scores.

    Returns a :class:`StudyRun` whose ``results`` has the record shape of ``results.json``; nothing but the
    ground-truth cache is written.
    """
    started = time.perf_counter()
    out = Path(config.out)
    scene = load_scene(config.scene)
    grid, bs = _study_geometry(scene, config)
    _check_out_dir(out)
    log(f"scene {config.scene}: {grid.num_y}x{grid.num_x} cells of {grid.cell_size_m} m around "
        f"({grid.center_x_m:.1f}, {grid.center_y_m:.1f}) m, BS at ({bs[0]:.1f}, {bs[1]:.1f}, {bs[2]:.1f}) m")

    t0 = time.perf_counter()
    truth, paths, cached = load_or_trace_ground_truth(scene, config, grid, bs, out, progress)
    ray_tracing_s = time.perf_counter() - t0
    log(f"ground truth {'loaded from cache' if cached else 'ray-traced'} in {ray_tracing_s:.1f} s: "
        f"{truth.attrs['num_ues']} UE cells, {int(truth['building'].sum())} building cells")

    t0 = time.perf_counter()
    array = AntennaArray(num_cols=config.num_bs_ant)
    scorer = BeamSelectionScorer(paths, array, config.budget, config.codebook_oversampling)
    perfect = scorer.perfect_csi_rates()
    truth_link = scorer.rates(truth)
    truth_scm = truth_link.scm
    adaptation = RateAdaptationScorer(scorer, calibrate_margin_db(scorer, truth, config.target_outage))
    truth_adapted = adaptation.rates(truth)
    regions = region_masks(truth)
    link_setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # CSI beamforming (LAD-CKM eqs. (10)-(11)) on the same UEs and BS array, with a UE ULA
    ue_array = AntennaArray(num_cols=config.num_ue_ant)
    csi = MapCsiBeamformingScorer.from_beam_selection(scorer, ue_array, truth.attrs["frequency_hz"],
                                                      config.codebook_oversampling, config.csi_pilot_overhead)
    csi_references = {"perfect_csi_beamforming": csi.scorer.perfect_csi_rates(),
                      "beam_sweep": csi.scorer.beam_sweep_rates(),
                      "random_beam": csi.scorer.random_beam_rates(config.seed),
                      "ground_truth_map_csi_beamforming": csi.rates(truth).rate_bps_hz}
    csi_setup_s = time.perf_counter() - t0
    csi_perfect_mean = csi_references["perfect_csi_beamforming"].mean()
    log(f"CSI beamforming ({ue_array.num_ant}-antenna UE, {csi.scorer.num_pairs} beam pairs, rho "
        f"{csi.pilot_overhead:g}) set up in {csi_setup_s:.1f} s; % of perfect CSI: " + ", ".join(
            f"{label} {100 * csi_references[key].mean() / csi_perfect_mean:.1f} %" for key, label in
            (("ground_truth_map_csi_beamforming", "ground-truth map"), ("beam_sweep", "beam sweep"),
             ("random_beam", "random beam"))))
    run = StudyRun(results={}, truth=truth, paths=paths, scorer=scorer, adaptation=adaptation, csi=csi,
                   reference_rates={"perfect_csi": perfect, "ground_truth_map": truth_link.rate_bps_hz,
                                    "ground_truth_map_adaptation": truth_adapted.rate_bps_hz, **csi_references})

    records, skipped = [], []
    t0 = time.perf_counter()
    for degradation in config.degradations():
        observation = degradation(truth)
        task = observation.task
        run.observations[task] = observation
        for name in config.methods:
            method = QUICKSTART_METHODS[name]()
            reason = method.unsupported_reason(observation)
            if reason is not None:
                skipped.append({"name": name, "task": task, "reason": reason})
                log(f"  {task:6s} {name:16s} skipped: {reason}")
                continue
            prediction = method.fit().predict(observation)
            record, rate, run.adapted_rates[(name, task)], csi_rate = _method_record(
                name, task, prediction, truth, regions, scorer, adaptation, truth_scm, perfect, csi)
            records.append(record)
            if rate is not None:
                run.beam_rates[(name, task)] = rate
            if csi_rate is not None:
                run.csi_rates[(name, task)] = csi_rate
            run.predictions[(name, task)] = prediction
            beam = ("n/a (no angles)" if record["rate"] is None
                    else f"{100 * record['rate']['fraction_of_perfect_csi']:.1f} %")
            csi_share = ("" if record["rate_csi_beamforming"] is None else
                         f", CSI beamforming {100 * record['rate_csi_beamforming']['fraction_of_perfect_csi']:.1f} %")
            log(f"  {task:6s} {name:16s} gain RMSE {record['map']['gain_rmse_db']:6.2f} dB; "
                f"% of perfect CSI: beam selection {beam}, link adaptation "
                f"{100 * record['rate_adaptation']['fraction_of_perfect_csi']:.1f} %{csi_share}")
    methods_s = time.perf_counter() - t0

    run.results = {
        "ckmsim_version": __version__,
        "scene": config.scene,
        "grid": grid.to_dict(),
        "bs_position_m": list(bs),
        "ray_tracing": truth.attrs["ray_tracing"],
        "link": {"bs_array": {"type": "ULA", "num_ant": array.num_ant, "spacing_wavelengths": array.spacing_wavelengths},
                 "codebook": {"type": "DFT", "oversampling": config.codebook_oversampling,
                              "num_beams": int(scorer.codebook.shape[0])},
                 "budget": config.budget.to_dict(), "num_ues": int(len(perfect)),
                 "rate": "mean over subcarriers of log2(1 + SNR |f^H h_k|^2) on the true ray-traced channel",
                 "rate_adaptation": "best beam; rate log2(1 + SNR N g_map 10^(-margin/10)) chosen from the map, "
                                    "0 when above the true channel's rate",
                 "adaptation_margin_db": adaptation.margin_db,
                 "adaptation_margin": f"calibrated so that the ground-truth map's outage is {config.target_outage:.0%}",
                 "csi_beamforming": {
                     "ue_array": {"type": "ULA", "num_ant": ue_array.num_ant,
                                  "spacing_wavelengths": ue_array.spacing_wavelengths},
                     "num_pairs": csi.scorer.num_pairs, "pilot_overhead": csi.pilot_overhead,
                     "beam_sweep_overhead": sweep_overhead(csi.scorer.num_pairs),
                     "rate": "(1 - rho) mean over subcarriers of log2(1 + SNR |w^H H_k f|^2) on the true MIMO-OFDM "
                             "channel, (f, w) the DFT pair with the largest predicted gain (LAD-CKM eqs. 10-11)",
                     "map_csi": "L map paths per cell: sqrt(gain), phase -2 pi (f_c + f) toa, BS response at the "
                                "AoA, UE response at the AoD"}},
        "references": {"perfect_csi": rate_summary(perfect, perfect),
                       "ground_truth_map": rate_summary(truth_link.rate_bps_hz, perfect),
                       "ground_truth_map_precoding": rate_summary(
                           SCMPrecodingScorer(scorer).rates(truth).rate_bps_hz, perfect),
                       "ground_truth_map_adaptation": {**rate_summary(truth_adapted.rate_bps_hz, perfect),
                                                       "outage_fraction": float(np.mean(truth_adapted.outage))},
                       # CSI beamforming: shares of perfect CSI with the UE array and both codebooks
                       **{name: rate_summary(rates, csi_references["perfect_csi_beamforming"])
                          for name, rates in csi_references.items()}},
        "methods": records,
        "skipped": skipped,
        "config": {"seed": config.seed, "tasks": [d.to_config() for d in config.degradations()],
                   "methods": list(config.methods), "num_map_paths": config.num_map_paths},
        "timings_s": {"ground_truth": ray_tracing_s, "ground_truth_from_cache": cached,
                      "solver_calls": truth.attrs.get("timings_s", {}), "link_setup": link_setup_s,
                      "csi_beamforming_setup": csi_setup_s,
                      "methods_and_scores": methods_s, "total": time.perf_counter() - started},
    }
    return run


def write_study_outputs(run: StudyRun, out: Path, title: str = "ckmsim quickstart") -> None:
    """``results.json``, ``report.md`` and the figures of one study, into ``out``."""
    from ckmsim.eval.figures import write_figures
    from ckmsim.eval.report import write_report

    references = run.reference_rates
    write_figures(out, run.truth, run.observations, run.predictions, references["perfect_csi"],
                  {"beam selection": (references["ground_truth_map"], run.beam_rates),
                   "link adaptation": (references["ground_truth_map_adaptation"], run.adapted_rates),
                   "CSI beamforming": (references["ground_truth_map_csi_beamforming"], run.csi_rates,
                                       references["perfect_csi_beamforming"],
                                       {"beam sweep": references["beam_sweep"],
                                        "random beam": references["random_beam"]})})
    (out / "results.json").write_text(json.dumps(run.results, indent=2, default=json_default))
    write_report(out, run.results, title)


def run_quickstart(config: QuickstartConfig, progress: bool = True, log=print) -> dict:
    """Run the quickstart and write ``results.json``, ``report.md`` and figures into ``config.out``.

    Returns the results dictionary (the content of ``results.json``).
    """
    started = time.perf_counter()
    run = run_study(config, progress, log)
    out = Path(config.out)
    write_study_outputs(run, out)
    run.results["timings_s"]["total"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(run.results, indent=2, default=json_default))
    log(f"wrote {out / 'results.json'}, {out / 'report.md'} and figures in {run.results['timings_s']['total']:.1f} s")
    return run.results


def json_default(value):
    """JSON for numpy scalars and dataclasses that slip into the results."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
