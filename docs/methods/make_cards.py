"""Writes the method cards of the docs site (``docs/methods/*.md``) and their index.

Run from the repository root: ``python docs/methods/make_cards.py``. The prose of each card is below, in
:data:`CARDS`; every quickstart number is read from ``docs/methods/data/quickstart-munich.json`` (the
``results.json`` of one ``ckmsim quickstart`` run, see :data:`QUICKSTART_RUN`), every other number is quoted
from the ``experiments/*/RESULTS.md`` file the card names. The cards are committed; rerun this script after a
new quickstart run (copy its ``results.json`` over the data file) or a change to the prose.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICKSTART_JSON = HERE / "data" / "quickstart-munich.json"
QUICKSTART_RUN = ("`ckmsim quickstart` with its defaults (munich, 64 x 64 cells of 2 m, BS at (8.5, 21.0, 28.0) m, "
                  "28 GHz, 32-element ULA; x2 and x4 uniform sub-sampling), run on 2026-12-04 at commit 55c8415 "
                  "on a 2-core CPU; its `results.json` is stored as "
                  "[`docs/methods/data/quickstart-munich.json`](data/quickstart-munich.json)")
PAPERS = {
    "esrresnet": "Chen, Fu, Zeng, Xu, Wei, *CKM Beyond Channel Gain: Spatial Correlation Map Construction with Deep "
                 "Learning* (arXiv:2604.20684; `papers/e-srresnet-spatial-correlation-map.txt`)",
    "ckmdiff": "Fu, Zeng, Wu, Wu, Jin, Wang, Gao, *CKMDiff: A Generative Diffusion Model for CKM Construction via "
               "Inverse Problems with Learned Priors* (`papers/ckmdiff-diffusion-ckm-construction.txt`)",
    "crossap": "Dai, Wu, Xu, Zeng, *Generating CKM Using Others' Data: Cross-AP CKM Inference with Deep Learning* "
               "(`papers/cross-ap-ckm-inference-unet.txt`)",
    "ladckm": "Zhou, Zhang, Li, Cai, Yu, *Location-Agnostic Channel Knowledge Map Construction for Dynamic Scenes* "
              "(arXiv:2603.09273; `papers/lad-ckm-location-agnostic-dynamic.txt`)",
}
RATE_COLUMNS = (("rate", "beam selection"), ("rate_precoding", "SCM precoding"),
                ("rate_adaptation", "link adaptation"), ("rate_csi_beamforming", "CSI beamforming"))


def _pct(summary) -> str:
    return "n/a" if not summary else f"{100 * summary['fraction_of_perfect_csi']:.1f}"


def _num(value, digits=2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def quickstart_table(name: str, results: dict) -> str:
    """The card's quickstart section: map scores and rate shares of method ``name`` per task."""
    records = [r for r in results["methods"] if r["name"] == name]
    if not records:
        return ""
    lines = [
        "Map scores over the non-building cells (gain RMSE over the covered cells, those some ray reaches, in "
        "brackets; per region from `map_by_region`):",
        "",
        "| task | gain RMSE [dB] | LoS / NLoS / transition RMSE [dB] | AoA RMSE [deg] | NMSE | SSIM | SCM cosine |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        m, reg = r["map"], r["map_by_region"]
        regions = " / ".join(_num(reg[k]["gain_rmse_db"]) for k in ("los", "nlos", "transition"))
        lines.append(f"| {r['task']} | {_num(m['gain_rmse_db'])} ({_num(m.get('covered_gain_rmse_db'))}) | {regions} | "
                     f"{_num(m.get('aoa_rmse_deg'), 1)} | {_num(m['nmse'], 4)} | {_num(m['ssim'], 3)} | "
                     f"{_num(m.get('scm_cosine_mean'), 3)} |")
    lines += [
        "",
        "Rates, % of each decision's own bound over the test UEs the task did not measure (mean rate "
        "[bit/s/Hz] in brackets; link adaptation with the map's own calibrated margin and its outage on "
        "those UEs; n/a: the map lacks the layers the decision needs):",
        "",
        "| task | UEs | " + " | ".join(label for _, label in RATE_COLUMNS) + " | margin [dB] / outage |",
        "|---|---:|" + "---:|" * len(RATE_COLUMNS) + "---:|",
    ]
    for r in records:
        cells = []
        for key, _ in RATE_COLUMNS:
            s = r.get(key)
            cells.append("n/a" if not s else f"{_pct(s)} ({s['mean_bps_hz']:.3f})")
        adapt = r["rate_adaptation"]
        lines.append(f"| {r['task']} | {adapt['num_ues']} | " + " | ".join(cells)
                     + f" | {adapt['margin_db']:.1f} / {100 * adapt['outage_fraction']:.1f} % |")
    refs = results["references"]
    tasks = [r["task"] for r in records]
    ref_cells = []
    for task in tasks:
        gt = refs["ground_truth_map"]["by_task"][task]
        gta = refs["ground_truth_map_adaptation"]["by_task"][task]
        perfect = refs["perfect_csi"]["by_task"][task]
        ref_cells.append(f"{task}: perfect CSI {perfect['mean_bps_hz']:.3f} bit/s/Hz by beam selection; the "
                         f"ground-truth map earns {_pct(gt)} % by beam selection and {_pct(gta)} % by link "
                         "adaptation")
    lines += ["", "References on the same UEs: " + "; ".join(ref_cells) + "."]
    return "\n".join(lines)


def render(card: dict, results: dict) -> str:
    parts = [f"# {card['title']}", "", card["summary"], ""]
    facts = [
        ("Code", card["code"]),
        ("Registry name", card.get("registry", "not in the study registry (used through its own API)")),
        ("Paper", card["paper"]),
        ("Equations", card["equations"]),
        ("Inputs it may use", card["inputs"]),
        ("Predicts", card["predicts"]),
        ("Tasks", card["tasks"]),
        ("Rate scores it gets", card["scores"]),
        ("Tests", card["tests"]),
    ]
    parts += ["| | |", "|---|---|"] + [f"| **{k}** | {v} |" for k, v in facts] + [""]
    if card.get("how"):
        parts += ["## How it works", "", card["how"], ""]
    parts += ["## Measured scores", ""]
    table = quickstart_table(card["registry_key"], results) if card.get("registry_key") else ""
    if table:
        parts += ["### The quickstart (munich)", "", f"From {QUICKSTART_RUN}.", "", table, ""]
    if card.get("studies"):
        parts += ["### Other shipped studies", "", card["studies"], ""]
    if not table and not card.get("studies"):
        parts += ["No shipped study scores this method yet.", ""]
    if card.get("notes"):
        parts += ["## Where it loses, and why", "", card["notes"], ""]
    return "\n".join(parts).rstrip() + "\n"


def index_page(cards: list[dict], results: dict) -> str:
    lines = [
        "# Methods",
        "",
        "One card per construction method ckmsim ships: the paper and equations it implements, the inputs it may",
        "use, what it predicts, the tasks it supports, the test that checks it, and what it measured on the",
        "shipped studies. Every method has the face of [the Method contract](../contracts.md#2-the-method)",
        "(LAD-CKM, FIRE and NeRF2 predict CSI and have the CSI predictors' face instead); the registry names",
        "are those of `ckmsim quickstart` / `ckmsim evaluate` (`ckmsim.eval.study.STUDY_METHODS`).",
        "",
        f"Quickstart columns: {QUICKSTART_RUN}; x4 task, gain RMSE over the non-building cells and beam selection",
        "as a % of the DFT-codebook bound over the test UEs the task did not measure (link adaptation for",
        "gain-only maps, marked LA). Other studies are on each card.",
        "",
        "| method | kind | paper | predicts | quickstart x4 gain RMSE [dB] | quickstart x4 rate, % of bound | other studies |",
        "|---|---|---|---|---:|---:|---|",
    ]
    by_key = {(r["name"], r["task"]): r for r in results["methods"]}
    for card in cards:
        record = by_key.get((card.get("registry_key"), "sr_x4"))
        if record:
            rmse = _num(record["map"]["gain_rmse_db"])
            rate = _pct(record["rate"]) if record.get("rate") else f"{_pct(record['rate_adaptation'])} (LA)"
        else:
            rmse = rate = "-"
        lines.append(f"| [{card['title']}]({card['slug']}.md) | {card['kind']} | {card['paper_short']} | "
                     f"{card['predicts_short']} | {rmse} | {rate} | {HEADLINES.get(card['slug'], '-')} |")
    lines += ["", "Classical and model-based baselines live in `ckmsim.baselines`, the networks in `ckmsim.models`,",
              "the location-based map CSI in `ckmsim.link.map_csi`. [Bring your own method](../notebooks/02-your-own-method.ipynb)",
              "shows how a new method joins the same study."]
    return "\n".join(lines) + "\n"


INTERP_INPUTS = ("the observation's measured layers at its observed cells (`gain_db`, `path_gain_db`, "
                 "`aoa_az_deg`, `aoa_el_deg`, `aod_*`, `toa_s`: whatever the task measured) and the `building` "
                 "prior (NaN gain there); nothing of the truth")
ALL_LAYERS = ("every float layer the observation carries, path by path: `gain_db`, `path_gain_db`, the arrival "
              "and departure angles (azimuths on the unit circle), `toa_s`; `los` is not predicted")
ALL_RATES = ("beam selection, SCM precoding, link adaptation, CSI beamforming and the coded link (it predicts "
             "per-path gains, angles and delays)")
GAIN_RATES = "link adaptation and the coded link only (gain map, no path angles); AP deployment in `ckmsim evaluate`"
LATTICE_TASKS = ("uniform sub-sampling and block averaging (`subsample`, `block_average`: it needs "
                 "`observation.factor`), combined with `noise` or a mask if wanted; a task without a "
                 "down-sampling step (a mask, sparse points or noise alone) is skipped (`unsupported_reason`)")
SCATTERED_TASKS = ("every degradation of `ckmsim.maps.degrade`: `subsample`, `block_average`, `box_mask`, "
                   "`random_mask`, `sparse_points`, `noise`")
ALL_BASELINE_TESTS = ("`tests/baselines/test_all_baselines.py` (`test_exact_at_observed_cells`, "
                      "`test_finer_sampling_gives_lower_error_on_a_smooth_field`, "
                      "`test_azimuth_across_the_seam_stays_near_180`, `test_method_face`, ...)")
ESR_TABLE = ("`experiments/esrresnet/RESULTS.md`, Table I (x2, test cities city-s2 + city-t10, 16 samples, "
             "RMSE over the open cells where the true path exists)")
CKMDIFF_TABLE = "`experiments/ckmdiff/RESULTS.md` (60 held-out city-s2 maps, gain MSE over the unmeasured open cells)"

CARDS = [
    dict(slug="bilinear", title="Bilinear interpolation", kind="classical", registry="`bilinear`",
         registry_key="bilinear", paper_short="CKMDiff eq. (4)", predicts_short="every layer",
         summary="Bilinear interpolation of the uniform sub-sampling lattice, layer by layer and path by path; "
                 "the simplest baseline and, on munich, the strongest of the interpolators.",
         code="[`ckmsim.baselines.interpolation.Bilinear`][ckmsim.baselines.interpolation.Bilinear] (spline of order 1 "
              "over [`LatticeInterpolator`][ckmsim.baselines.interpolation.LatticeInterpolator])",
         paper=PAPERS["ckmdiff"] + ", Sec. II-B (interpolation-based construction, ref. [42]); a baseline of its Figs. 10-12 and Tables VI-VIII",
         equations="CKMDiff eq. (4), $\\hat x_i = \\sum_{j \\in S_i} w_j y_j$ with $S_i$ the four nearest lattice samples; "
                   "the sampling is E-SRResNet eq. (7)",
         inputs=INTERP_INPUTS + "; lattice cells without a valid sample are first filled from the nearest valid one",
         predicts=ALL_LAYERS, tasks=LATTICE_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_interpolation.py::test_lattice_methods_reproduce_a_plane`, "
               "`::test_lattice_methods_need_a_factor`, `::test_absent_path_codes_are_not_interpolated_as_gains`",
         studies="CKMDiff study, " + CKMDIFF_TABLE + ": noisy x4 (block average + noise) 362.8 dB², x2 150.8 dB², "
                 "x4 224.7 dB²; link-adaptation rate 1.772 / 4.793 / 3.964 bit/s/Hz (perfect 5.787 / 5.800 / 5.788).",
         notes="Interpolation cannot see a building edge between two samples: its NLoS error is 10x its LoS error "
               "on munich (table above). It needs the lattice, so masks and scattered samples go to KNN, IDW, "
               "RBF or kriging."),
    dict(slug="bicubic", title="Bicubic interpolation", kind="classical", registry="`bicubic`",
         registry_key="bicubic", paper_short="E-SRResNet Table I; CKMDiff", predicts_short="every layer",
         summary="Cubic B-spline interpolation of the uniform sub-sampling lattice (prefiltered, so it passes through "
                 "every sample and reproduces planes). It is the skip of the shipped E-SRResNet: the untrained "
                 "network *is* this method.",
         code="[`ckmsim.baselines.interpolation.Bicubic`][ckmsim.baselines.interpolation.Bicubic]",
         paper=PAPERS["esrresnet"] + " (its Table I baseline, on coded images: see [coded bicubic](coded-bicubic.md)); "
               + PAPERS["ckmdiff"] + " (Figs. 10-12 and Tables VI-VIII, beside bilinear and cGAN)",
         equations="interpolation form of CKMDiff eq. (4); sampling E-SRResNet eq. (7)",
         inputs=INTERP_INPUTS, predicts=ALL_LAYERS, tasks=LATTICE_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_interpolation.py::test_lattice_methods_reproduce_a_plane`, "
               "`::test_output_is_a_valid_ckm_with_every_layer`, `::test_predict_has_no_side_effects`",
         studies="E-SRResNet study, " + ESR_TABLE + ": PGM1 6.86 dB, PAM1 21.90 deg, PGM2 6.59 dB, PAM2 29.00 deg; "
                 "x4: PGM1 10.62 dB, PAM1 30.36 deg; beam selection 76.4 % of perfect CSI, SCM precoding 79.0 % "
                 "(64-element ULA, 5026 re-traced UEs).\n\nCKMDiff study, " + CKMDIFF_TABLE + ": noisy x4 430.4 dB², "
                 "x2 173.7 dB², x4 251.0 dB² (link adaptation 1.644 / 4.409 / 3.583 bit/s/Hz).",
         notes="A spline overshoots at the sharp LoS/NLoS edges of a city map (its NLoS RMSE is above bilinear's "
               "on munich), and noise passes straight through it: in the noisy CKMDiff tasks it is the weakest "
               "interpolator."),
    dict(slug="coded-bicubic", title="Coded bicubic (E-SRResNet's baseline)", kind="classical",
         registry="`bicubic-coded` (in the E-SRResNet study, not in `STUDY_METHODS`)", registry_key=None,
         paper_short="E-SRResNet Table I", predicts_short="every layer",
         summary="The E-SRResNet paper's bicubic baseline reproduced as it is: bicubic interpolation of the "
                 "CKMImageNet *pixel images*, in which buildings and absent paths are pixel 0 (-250 dB, -200 deg) "
                 "and azimuths are linear pixels. Reported so that the paper's Table I is compared like for like.",
         code="[`ckmsim.baselines.interpolation.CodedBicubic`][ckmsim.baselines.interpolation.CodedBicubic]",
         paper=PAPERS["esrresnet"] + ", Sec. IV and Table I",
         equations="E-SRResNet eq. (7) (sampling); the pixel mappings of CKMImageNet (`ckmsim.maps.pixels`)",
         inputs="the measured `path_gain_db` and `aoa_az_deg` of the lattice, as pixel images; the other layers "
                "go through ckmsim's [bicubic](bicubic.md)",
         predicts="PGM and PAM of each path from the coded images; every other layer by ckmsim's bicubic",
         tasks="uniform sub-sampling with per-path layers", scores=ALL_RATES,
         tests="`tests/baselines/test_interpolation.py::test_coded_bicubic_reproduces_planes_inside_the_lattice`, "
               "`::test_coded_bicubic_pulls_open_neighbours_of_a_building_sample_toward_its_code`, "
               "`::test_coded_bicubic_needs_a_lattice_and_both_path_layers`",
         studies="E-SRResNet study, " + ESR_TABLE + ": PGM1 22.98 dB, PAM1 46.13 deg, PGM2 22.09 dB, PAM2 49.72 deg; "
                 "x4 PGM1 36.21 dB, PAM1 57.87 deg; beam selection 63.3 % of perfect CSI, SCM precoding 65.6 %.",
         notes="Interpolating codes drags every open cell next to a building or an absent path towards -250 dB "
               "and -200 deg; that is why the paper's margins over bicubic (23.7 % PGM, 47.7 % PAM) shrink to "
               "6.7 % / 6.7 % against ckmsim's own [bicubic](bicubic.md)."),
    dict(slug="knn", title="K nearest neighbours (KNN)", kind="classical", registry="`knn`", registry_key="knn",
         paper_short="CKMDiff eq. (4)", predicts_short="every layer",
         summary="Inverse-distance-weighted mean of the k = 4 nearest observed cells; works for any sampling "
                 "pattern. On the held-out procedural cities it is as strong as the CPU-scale networks.",
         code="[`ckmsim.baselines.interpolation.KNN`][ckmsim.baselines.interpolation.KNN] (`k`)",
         paper=PAPERS["ckmdiff"] + ", Sec. II-B (ref. [29]); " + PAPERS["esrresnet"] + " (Table I)",
         equations="CKMDiff eq. (4) with $S_i$ the K nearest observations (the paper's $w_j = 1/K$; ckmsim weights "
                   "them by inverse distance, and k = 1 is nearest neighbour)",
         inputs=INTERP_INPUTS, predicts=ALL_LAYERS, tasks=SCATTERED_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_interpolation.py::test_knn_works_without_a_factor`, "
               "`::test_knn_with_one_neighbour_is_nearest_neighbour`, `::test_knn_rejects_bad_k`",
         studies="E-SRResNet study, " + ESR_TABLE + ": PGM1 6.44 dB, PAM1 20.29 deg, PGM2 6.17 dB, PAM2 26.40 deg "
                 "(below the E-SRResNet mean over three seeds); x4 PGM1 10.03 dB, PAM1 28.15 deg (PGM1 and PAM1 "
                 "better than every network); beam selection 75.1 %.\n\nCKMDiff study, " + CKMDIFF_TABLE + ": box inpainting + "
                 "noise 415.1 dB², denoising 343.7 dB², noisy x4 319.4 dB², x2 142.0 dB², x4 217.4 dB² (the best "
                 "classical method on each); link adaptation 1.688 / 1.740 / 1.959 / 4.776 / 3.993 bit/s/Hz.",
         notes="Keeps every noisy sample as it is (its denoising MSE is 2.5x CKMDiff's), and at x4 on munich its "
               "mean SCM cosine (0.729) is below bilinear's (0.830) and kriging's (0.794)."),
    dict(slug="idw", title="Inverse-distance weighting (IDW)", kind="classical", registry="`idw`", registry_key="idw",
         paper_short="CKMDiff eq. (4)", predicts_short="every layer",
         summary="Shepard's inverse-distance weighting (power 2) of the 16 nearest observed cells; exact at the "
                 "samples and bounded by their range.",
         code="[`ckmsim.baselines.scattered.IDW`][ckmsim.baselines.scattered.IDW] (`power`, `k`)",
         paper=PAPERS["ckmdiff"] + ", Sec. II-B (ref. [31]); " + PAPERS["esrresnet"] + ", Sec. I (ref. [11])",
         equations="CKMDiff eq. (4) with $w_j \\propto d_{ij}^{-p}$",
         inputs=INTERP_INPUTS, predicts=ALL_LAYERS, tasks=SCATTERED_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_scattered.py::test_exact_with_k_or_neighbour_limit`, "
               "`::test_output_is_a_valid_ckm_without_needing_a_factor`, `::test_bad_hyper_parameters_raise`",
         notes="The lowest gain RMSE over the covered cells at x4 on munich (7.28 dB), yet the lowest beam-selection "
               "share of the interpolators (87.7 %) and the lowest mean SCM cosine (0.708): a low gain error does "
               "not make the angles right."),
    dict(slug="rbf", title="Radial basis functions (RBF)", kind="classical", registry="`rbf`", registry_key="rbf",
         paper_short="CKMDiff Sec. I", predicts_short="every layer",
         summary="Thin-plate-spline radial-basis interpolation (scipy's `RBFInterpolator`, 64 neighbours per local "
                 "interpolant, exact at the samples with `smoothing = 0`).",
         code="[`ckmsim.baselines.scattered.RBF`][ckmsim.baselines.scattered.RBF] (`kernel`, `neighbors`, `smoothing`, `epsilon`)",
         paper=PAPERS["ckmdiff"] + ", Sec. I (ref. [32])",
         equations="CKMDiff eq. (4) in its kernel form, $\\hat x(p) = \\sum_j \\lambda_j \\phi(\\|p - p_j\\|) + "
                   "\\text{degree-1 polynomial}$",
         inputs=INTERP_INPUTS, predicts=ALL_LAYERS, tasks=SCATTERED_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_scattered.py::test_thin_plate_rbf_reproduces_a_plane`, "
               "`::test_elevation_overshoot_is_clipped_to_the_pole`",
         notes="At x4 on munich its NLoS gain RMSE (21.4 dB) is the highest of the interpolators: the thin-plate "
               "spline carries the lit side's trend into the shadow."),
    dict(slug="kriging", title="Ordinary kriging", kind="classical", registry="`kriging`", registry_key="kriging",
         paper_short="CKMDiff eq. (4)", predicts_short="every layer",
         summary="Ordinary kriging with an exponential variogram fitted once per field by pykrige, solved in "
                 "32-neighbour local systems (zero nugget: exact at the samples).",
         code="[`ckmsim.baselines.scattered.Kriging`][ckmsim.baselines.scattered.Kriging] (`variogram_model`, `neighbors`)",
         paper=PAPERS["ckmdiff"] + ", Sec. II-B (refs. [30], [43]); " + PAPERS["esrresnet"] + ", Sec. I",
         equations="CKMDiff eq. (4) with the weights of the kriging system (minimum error variance under the fitted "
                   "variogram)",
         inputs=INTERP_INPUTS, predicts=ALL_LAYERS, tasks=SCATTERED_TASKS, scores=ALL_RATES,
         tests=ALL_BASELINE_TESTS + "; `tests/baselines/test_scattered.py::test_kriging_runs_on_a_32x32_x4_observation`, "
               "`::test_exact_with_k_or_neighbour_limit`",
         notes="The best of the scattered-data methods by beam selection at x4 on munich, a little below bilinear."),
    dict(slug="ls", title="Least squares (LS, A⁺y)", kind="classical", registry="`ls`", registry_key="ls",
         paper_short="CKMDiff eq. (3)", predicts_short="every layer (zero-filled)",
         summary="CKMDiff's reference for a reconstruction with no prior at all: $x = A^+ y$, which copies each "
                 "measurement onto its footprint and puts *zero* (the -250 dB floor, no path) everywhere else.",
         code="[`ckmsim.baselines.least_squares.LeastSquares`][ckmsim.baselines.least_squares.LeastSquares]",
         paper=PAPERS["ckmdiff"] + ", Sec. II-A",
         equations="CKMDiff eqs. (1)-(3): $y = A x + n$, $J(x) = \\|y - A x\\|^2$, $\\hat x = A^\\dagger y$ "
                   "(in the CKMImageNet pixel domain for gains)",
         inputs="the degradation operator $A$ (`observation.operator`) and the measured values $y$; nothing else",
         predicts="every layer: the measurement on its footprint, the floor / no path elsewhere",
         tasks="every linear degradation (`subsample`, `block_average`, masks, `sparse_points`, `noise`)",
         scores=ALL_RATES,
         tests="`tests/baselines/test_least_squares.py::test_gain_equals_numpy_pinv_in_the_pixel_domain`, "
               "`::test_exact_at_measurements_floor_and_no_path_elsewhere`, "
               "`::test_block_average_reproduces_a_piecewise_constant_field_exactly`, `::test_face_and_registry`",
         notes="Its 122-137 dB gain RMSE is the zero fill: every unmeasured cell sits at -250 dB. Its AoA RMSE of "
               "0.0 deg is scored only on the cells where it has a path, i.e. its own measured cells, a different "
               "cell set from every other method's. Beam selection still reaches 28 % of the bound, the share a "
               "random DFT pair gets in the CSI-beamforming table (26.5 %)."),
    dict(slug="pathloss-kriging", title="Path-loss fit + kriging", kind="model-based", registry="`pathloss_kriging`",
         registry_key="pathloss_kriging", paper_short="CKMDiff eqs. (6)-(7)", predicts_short="gain",
         summary="Log-distance path loss fitted by least squares to the measured gains, plus ordinary kriging of "
                 "the residual (shadowing with exponential spatial correlation).",
         code="[`ckmsim.baselines.model_based.PathLossKriging`][ckmsim.baselines.model_based.PathLossKriging]",
         paper=PAPERS["ckmdiff"] + ", Sec. II-C (spatial-correlation-model-based construction, ref. [27])",
         equations="CKMDiff eq. (5) (model fit), eq. (6) $\\Upsilon_{dB}(q) = K_{dB} - 10 n_{PL}\\log_{10}\\|q\\| + "
                   "\\nu(q) + \\omega(q)$, eq. (7) shadowing correlation $\\sigma e^{-h/d}$",
         inputs="the measured `gain_db` of the observed open cells, the BS position (`attrs['bs_position_m']`), the "
                "grid and the local ground; the `building` prior",
         predicts="`gain_db` only (the fitted `k_db` and `n_pl` in the prediction's attrs)",
         tasks=SCATTERED_TASKS + "; declined when every measured cell is within 1 m of the BS", scores=GAIN_RATES,
         tests="`tests/baselines/test_model_based.py::test_pathloss_kriging_recovers_parameters_without_shadowing`, "
               "`::test_pathloss_kriging_exact_at_observed_cells_with_shadowing`, "
               "`::test_model_based_maps_follow_the_local_ground`, "
               "`::test_pathloss_kriging_declines_an_area_within_a_metre_of_the_bs`",
         notes="On a 128 m area the kriged residual does the work: its gain RMSE is within 0.1 dB of plain "
               "kriging's at x2 and x4. It predicts no angles, so no beam can be chosen from it."),
    dict(slug="umi-3gpp", title="3GPP TR 38.901 UMi", kind="model-based", registry="`umi_3gpp`",
         registry_key="umi_3gpp", paper_short="Cross-AP benchmark", predicts_short="gain",
         summary="The 3GPP UMi street-canyon path loss, averaged over its LoS probability in linear power: a pure "
                 "model that reads no measurement.",
         code="[`ckmsim.baselines.model_based.ThreeGppUmi`][ckmsim.baselines.model_based.ThreeGppUmi], "
              "[`umi_path_loss_db`][ckmsim.baselines.model_based.umi_path_loss_db], "
              "[`umi_los_probability`][ckmsim.baselines.model_based.umi_los_probability]",
         paper="3GPP TR 38.901, Tables 7.4.1-1 and 7.4.2-1; the model-based benchmark of " + PAPERS["crossap"] + ", Table I",
         equations="$G_{dB} = 10\\log_{10}(P_{LOS} 10^{-PL_{LOS}/10} + (1 - P_{LOS}) 10^{-PL_{NLOS}/10})$",
         inputs="the BS position and height, the carrier frequency, the grid, the local ground and the `building` "
                "prior; no measurement",
         predicts="`gain_db` only", tasks="every task (it ignores the observation's values); AP deployment from no "
                                          "measurement of the site",
         scores=GAIN_RATES,
         tests="`tests/baselines/test_model_based.py::test_umi_path_loss_hand_computed_at_28ghz`, "
               "`::test_umi_los_probability`, `::test_umi_nlos_never_below_los_and_los_array`, "
               "`::test_three_gpp_umi_method_expected_gain`",
         studies="Cross-AP study, `experiments/crossap/RESULTS.md` (small dataset, 10 test areas, 80 target APs): "
                 "RMSE 30.19 dB (14.16 dB on ray-reached cells); deployment 96.5 % of the oracle, 7/10 areas within "
                 "5 %. With 20 candidate sites (dense datasets): 93.9 % of the oracle, 6/10.",
         notes="A statistical model of an average street canyon, not of this one: 29 dB RMSE, 43 dB in NLoS, and a "
               "45 dB calibrated margin that leaves about 1 % of the link-adaptation bound on munich."),
    dict(slug="cross-ap-weighted", title="Cross-AP distance weighting (eq. 7)", kind="model-based",
         registry="`cross_ap_weighted` (AP deployment of `ckmsim evaluate`; `distance_weighted` in the cross-AP study)",
         registry_key=None, paper_short="Cross-AP eq. (7)", predicts_short="gain of a new AP",
         summary="A new AP's gain map as the softmax-distance-weighted mean of the known APs' maps, in dB: the "
                 "cross-AP paper's benchmark, and the starting point of the shipped cross-AP UNet (whose untrained "
                 "correction network *is* this method).",
         code="[`ckmsim.baselines.model_based.distance_weighted_cross_ap`][ckmsim.baselines.model_based.distance_weighted_cross_ap], "
              "[`cross_ap_weights`][ckmsim.baselines.model_based.cross_ap_weights]",
         paper=PAPERS["crossap"] + ", Sec. IV (Benchmark 1)",
         equations="Cross-AP eq. (7), $G_0^{infer} = \\sum_n w_n G_n$, $w_n = e^{-\\beta d_{t,n}} / \\sum_i e^{-\\beta d_{t,i}}$, "
                   "$\\beta = 0.1$ /m",
         inputs="the known APs' gain maps and positions, the target AP's position; no measurement of the target",
         predicts="the target AP's `gain_db`", tasks="cross-AP inference; AP deployment (choosing a site)",
         scores="AP deployment (the site chosen on the predicted maps, scored on the true ones)",
         tests="`tests/baselines/test_model_based.py::test_cross_ap_weights_and_limits`, `::test_cross_ap_bad_inputs`; "
               "`tests/models/test_crossap_unet.py::test_untrained_correction_network_is_exactly_distance_weighting`",
         studies="Cross-AP study, `experiments/crossap/RESULTS.md`: RMSE 19.78 / 15.01 dB (open / ray-reached cells) "
                 "with 7 known APs, 16.92 / 12.62 dB with 11 and 14.84 / 10.48 dB with 23; deployment with 4 "
                 "candidates 95.8 % of the oracle (7/10 areas within 5 %), with 20 candidates 88.1 % (4/10).",
         notes="A distance alone cannot say which known AP shares the target's shadows; it improves with many nearby "
               "APs (4.9 dB from 7 to 23 known APs) but picks poor sites among many candidates."),
    dict(slug="excess-weighted", title="Free space + eq. 7 on excess loss", kind="model-based",
         registry="`excess_weighted` (cross-AP study only)", registry_key=None, paper_short="Cross-AP eq. (7), ckmsim",
         predicts_short="gain of a new AP",
         summary="ckmsim's physics correction of eq. (7) without learning: each known AP's map is turned into its "
                 "excess loss over free space, eq. (7) weights the excess losses, and the target's free-space gain is "
                 "added back.",
         code="[`ckmsim.models.crossap.physics.physics_maps`][ckmsim.models.crossap.physics.physics_maps] "
              "(`excess_weighted`), [`free_space_gain_db`][ckmsim.models.crossap.physics.free_space_gain_db]",
         paper=PAPERS["crossap"] + " (eq. (7)); the excess-loss form is ckmsim's (issue 14)",
         equations="Friis $20\\log_{10}(\\lambda / 4\\pi d)$ plus cross-AP eq. (7) on $G_n - FS_n$",
         inputs="the known APs' gain maps and positions, the target's position and the carrier frequency",
         predicts="the target AP's `gain_db`", tasks="cross-AP inference; AP deployment",
         scores="AP deployment",
         tests="`tests/models/test_crossap_unet.py::test_excess_weighting_recovers_a_shared_shadow_exactly`, "
               "`::test_free_space_gain_closed_form`, `::test_physics_channels_layout_and_symmetry`",
         studies="Cross-AP study, `experiments/crossap/RESULTS.md` (dense datasets, 20 candidate sites): deployment "
                 "96.3 % of the oracle, 7/10 areas within 5 % (distance weighting 88.1 %, the UNet 99.1-99.8 %)."),
    dict(slug="esrresnet", title="E-SRResNet", kind="network", registry="`esrresnet` (shipped weights)",
         registry_key="esrresnet", paper_short="E-SRResNet", predicts_short="every layer (PGM/PAM by network)",
         summary="SRResNet with 4-head self-attention in every residual block and multi-scale feature fusion, "
                 "super-resolving the path gain map (PGM) and path angle map (PAM) of the two strongest paths x2; the "
                 "spatial correlation map follows from them (eq. 6). ckmsim's networks correct its own bicubic "
                 "interpolation, predict azimuths on the circle and a path-exists logit, and snap-decode azimuths.",
         code="[`ckmsim.models.esrresnet.network`][ckmsim.models.esrresnet.network], "
              "[`ESRResNetMethod`][ckmsim.models.esrresnet.method.ESRResNetMethod], "
              "[`pretrained_esrresnet`][ckmsim.models.pretrained.pretrained_esrresnet]",
         paper=PAPERS["esrresnet"],
         equations="eq. (6) (SCM from path gains and angles), eq. (7) (uniform sampling), eq. (8) (measured cells "
                   "kept), eq. (9) (SCM cosine similarity); Fig. 4 (the network), Table I",
         inputs="the x2 lattice of `path_gain_db` and `aoa_az_deg` per path, the `building` prior, the BS position "
                "and carrier frequency (Friis LoS, BS Gaussian, free-space gain, BS direction at full resolution)",
         predicts="PGM and PAM of paths 0 and 1 by the networks (measured cells kept); `gain_db`, elevations, "
                  "delays and departure angles by bicubic",
         tasks="uniform sub-sampling x2; any multiple of 2 as a cascade (bicubic fills the x2 lattice, the networks "
               "complete it)",
         scores=ALL_RATES,
         tests="`tests/models/test_esrresnet.py` (`test_untrained_skip_network_is_bicubic_exactly_and_survives_save_and_load`, "
               "`test_a_few_training_steps_lower_the_loss_below_bicubic`, `test_x4_cascade_fills_the_x2_lattice_by_bicubic_and_an_untrained_network_keeps_planes`, ...), "
               "`tests/models/test_esrresnet_snap.py`, `tests/models/test_pretrained.py::test_shipped_weights_beat_bicubic_on_held_out_cities`, "
               "`::test_shipped_azimuths_steer_a_narrow_beam_better_than_bicubic`",
         studies=ESR_TABLE + ", seed 0: PGM1 6.40 dB, PAM1 20.43 deg, PGM2 6.28 dB, PAM2 28.29 deg (bicubic 6.86 / "
                 "21.90 / 6.59 / 29.00, KNN 6.44 / 20.29 / 6.17 / 26.40); over three seeds PGM1 6.52 ± 0.10 dB, PAM1 "
                 "20.59 ± 0.12 deg. Link: beam selection 77.3 % of perfect CSI, SCM precoding 80.0 % (bicubic 76.4 / "
                 "79.0), mean SCM cosine 0.655. x4 cascade: PGM1 10.16 dB, PAM1 29.49 deg (KNN 10.03 / 28.15). "
                 "Training on 2 CPU cores: 255 k / 546 k parameters, 466 s / 637 s.",
         notes="The shipped networks are CPU-scale (4 blocks of 32 / 48 channels, 5120 training pairs): 5-7 % below "
               "ckmsim's bicubic, not below KNN, and SRResNet is at least as good. On munich its `gain_db` layer is "
               "bicubic's (the networks predict per-path maps only), so its gain scores equal bicubic's, and it was "
               "trained with the BS at 10 m while the quickstart puts it on the roofs (28 m)."),
    dict(slug="srresnet", title="SRResNet", kind="network", registry="not shipped (`srresnet` preset of the E-SRResNet code)",
         registry_key=None, paper_short="E-SRResNet ref. [7]", predicts_short="every layer (PGM/PAM by network)",
         summary="E-SRResNet's backbone without attention and fusion (Ledig et al.), the ablation of the E-SRResNet "
                 "paper; one code path with E-SRResNet, the preset `srresnet`.",
         code="[`ckmsim.models.esrresnet.network`][ckmsim.models.esrresnet.network] (preset `srresnet`), "
              "[`ESRResNetMethod`][ckmsim.models.esrresnet.method.ESRResNetMethod]",
         paper=PAPERS["esrresnet"] + " (ref. [7]: Ledig et al., CVPR 2017)",
         equations="as [E-SRResNet](esrresnet.md): eqs. (6)-(9)",
         inputs="as E-SRResNet", predicts="as E-SRResNet", tasks="as E-SRResNet", scores=ALL_RATES,
         tests="`tests/models/test_esrresnet.py::test_srresnet_is_the_same_code_without_attention_or_fusion`",
         studies=ESR_TABLE + ": PGM1 6.16 dB, PAM1 20.26 deg, PGM2 6.14 dB, PAM2 27.79 deg; beam selection 76.7 %, "
                 "SCM precoding 79.5 %; x4 PGM1 10.08 dB, PAM1 29.36 deg. 170 k / 355 k parameters, 328 s / 473 s "
                 "on 2 CPU cores.",
         notes="At this size attention and fusion do not pay: SRResNet's gain RMSE is below E-SRResNet's."),
    dict(slug="crossap-unet", title="Cross-AP UNet", kind="network", registry="not in `STDUY_METHODS` (multi-AP task; `CrossApUNetMethod.from_run`)".replace("STDUY", "STUDY"),
         registry_key=None, paper_short="Cross-AP", predicts_short="gain of a new AP",
         summary="A UNet of 5x5 convolutions that infers a new AP's gain map from the known APs' maps and the new "
                 "AP's position. ckmsim's configs add per-cell physics channels and make the network output eq. "
                 "(7)'s map plus a zero-initialised correction; the newest pools the known APs per cell.",
         code="[`ckmsim.models.crossap.network`][ckmsim.models.crossap.network], "
              "[`CrossApUNetMethod`][ckmsim.models.crossap.method.CrossApUNetMethod], "
              "[`ckmsim.models.crossap.physics`][ckmsim.models.crossap.physics]",
         paper=PAPERS["crossap"],
         equations="eq. (2) (inference), eqs. (3)-(5) (one-hot AP maps, the known APs' feature maps, the 3x3 "
                   "pre-convolution), eq. (6) (MSE), eq. (7) (the benchmark it corrects); Fig. 4, Table I",
         inputs="the known APs' gain maps and positions, the target's position; with `physics = true` the building "
                "map, free-space gains and eq. (7)'s map",
         predicts="the target AP's `gain_db`", tasks="cross-AP inference; AP deployment",
         scores="AP deployment (site chosen on the predicted maps, scored on the true ones)",
         tests="`tests/models/test_crossap_unet.py` (`test_unet_shapes_and_paper_layout`, "
               "`test_untrained_correction_network_is_exactly_distance_weighting`, "
               "`test_known_ap_pooling_ignores_slot_order_and_empty_slots`, "
               "`test_a_few_steps_lower_the_loss_and_the_run_predicts`, ...)",
         studies="Cross-AP study, `experiments/crossap/RESULTS.md`, best (three seeds, `train-dense11-pooled.toml`): "
                 "RMSE / distance-weighted RMSE 0.628 ± 0.006 (open cells) and 0.668 ± 0.018 (ray-reached) with 7 "
                 "known APs, 0.696 / 0.747 with 11, 0.730 / 0.817 with 23 (UNet 12.43 / 10.02 dB against 19.78 / 15.01 "
                 "dB at 7 known APs). Deployment with 20 candidates: 98.5 / 99.8 / 99.7 % of the oracle (seeds 0-2), "
                 "random 79.0 %. Averaged over the 8 rotations / reflections and the three seeds (`symmetries=8`, "
                 "`extra_models`): 0.613 / 0.643, 0.679 / 0.722, 0.714 / 0.793; on test maps re-traced with 3e6 rays "
                 "(the stored 3e5-ray truth is itself 12.6 dB RMSE from them on open cells) 0.611 / 0.672, 0.684 / "
                 "0.748, 0.710 / 0.814. Earlier, small dataset: 17.59 dB, 14.39 dB with the large dataset, 13.55 dB "
                 "after 100 epochs. With `visibility = true` (each AP's visibility order and detour per cell, "
                 "`train-dense11-visibility.toml`, 2 seeds x 8 symmetries, 3e6-ray test truth): 0.603 / 0.687, "
                 "0.673 / 0.748, 0.691 / 0.795; behind one or two corners lies three quarters of the remaining error.",
         notes="The issue's target ratio (<= 0.6 on both splits and both cell sets) is missed by 0.01-0.19; its "
               "gain over eq. (7) shrinks as more APs are known (7.3 dB with 7, 3.8 dB with 23)."),
    dict(slug="radiounet", title="RadioUNet", kind="network",
         registry="not shipped (`radiounet` runs of the CKMDiff study; `radiounet_style` in the cross-AP study)",
         registry_key=None, paper_short="CKMDiff / cross-AP baseline", predicts_short="gain",
         summary="RadioUNet (Levie et al.) is ckmsim's one UNet implementation, the cross-AP package's `CrossApUNet`, "
                 "used two ways: on CKMDiff's 3-channel condition image trained with MSE (CKMDiff's learned baseline), "
                 "and given the building map and the target AP's position (the cross-AP paper's reference).",
         code="[`CrossApUNet`][ckmsim.models.crossap.network.CrossApUNet], "
              "[`Pix2PixMethod`][ckmsim.models.pix2pix.method.Pix2PixMethod] (`model = \"radiounet\"`), "
              "[`RadioUNetStyleMethod`][ckmsim.models.crossap.method.RadioUNetStyleMethod]",
         paper="Levie, Yapar, Kutyniok, Caire, *RadioUNet*, IEEE TWC 2021 (not in the repository); baseline of "
               + PAPERS["ckmdiff"] + " (ref. [37]) and " + PAPERS["crossap"] + " (ref. [5], Table I)",
         equations="the MSE of its inputs' target map (cross-AP eq. (6)); the condition image of CKMDiff Sec. IV-E",
         inputs="CKMDiff's condition image (observed gain filled by bicubic / KNN, building map, Canny edges), or "
                "the building map and the target AP's one-hot position",
         predicts="`gain_db`", tasks="the degradations its run was trained on (others reported as unsupported); "
                                     "cross-AP inference", scores=GAIN_RATES,
         tests="`tests/models/test_pix2pix.py::test_tiny_run_and_the_method`; `tests/models/test_crossap_unet.py`",
         studies="CKMDiff study, " + CKMDIFF_TABLE + ", three seeds: box inpainting + noise 248.7 ± 7.7 dB², denoising "
                 "54.4 ± 2.1 dB², noisy x4 147.0 ± 0.3 dB² (the best method on all three, CKMDiff included); rate "
                 "3.328 / 3.886 / 3.094 bit/s/Hz. Cross-AP study, `experiments/crossap/RESULTS.md`: RadioUNet-style "
                 "16.61 dB (small dataset), 14.27 dB (large), 14.08 dB after 100 epochs against the cross-AP UNet's "
                 "13.55 dB.",
         notes="A deterministic regressor trained for MSE wins an MSE score: on the noisy CKMDiff tasks it beats the "
               "diffusion model in about 9 minutes of CPU training against CKMDiff's 45."),
    dict(slug="pix2pix", title="pix2pix (cGAN)", kind="network", registry="not shipped (`Pix2PixMethod.from_run`)",
         registry_key=None, paper_short="CKMDiff baseline", predicts_short="gain",
         summary="pix2pix's U-Net generator and PatchGAN discriminator (L1 x 100 + adversarial BCE) on CKMDiff's "
                 "condition image: the cGAN of CKMDiff's tables.",
         code="[`ckmsim.models.pix2pix.network`][ckmsim.models.pix2pix.network], "
              "[`Pix2PixMethod`][ckmsim.models.pix2pix.method.Pix2PixMethod]",
         paper="Isola, Zhu, Zhou, Efros, CVPR 2017 (not in the repository); the cGAN baseline of " + PAPERS["ckmdiff"]
               + ", Tables III-VIII",
         equations="pix2pix's objective $\\mathcal L_{cGAN} + 100\\,\\mathcal L_{L1}$; the PatchGAN receptive field",
         inputs="CKMDiff's 3-channel condition image of the observation", predicts="`gain_db`",
         tasks="the degradations its run was trained on", scores=GAIN_RATES,
         tests="`tests/models/test_pix2pix.py` (`test_patchgan_receptive_field_and_grid_match_the_closed_form`, "
               "`test_zero_adversarial_weight_is_the_hand_computed_l1_step`, `test_train_step_lowers_the_generator_l1_on_a_tiny_fixed_set`, "
               "`test_tiny_run_and_the_method`)",
         studies="CKMDiff study, " + CKMDIFF_TABLE + ", three seeds: box inpainting + noise 303.3 ± 15.8 dB², "
                 "denoising 123.7 ± 3.7 dB², noisy x4 219.2 ± 4.8 dB²; rate 3.067 / 3.459 / 3.276 bit/s/Hz "
                 "(12 epochs, 567-601 s per seed on 2 CPU cores).",
         notes="Level with CKMDiff, behind RadioUNet on every noisy task."),
    dict(slug="ckmdiff", title="CKMDiff", kind="network", registry="`ckmdiff` (shipped weights)",
         registry_key="ckmdiff", paper_short="CKMDiff", predicts_short="gain",
         summary="Conditional latent decoupled diffusion: a VAE to a 3-channel latent, a two-branch UNet predicting "
                 "the attenuation and the noise, conditioned by a Swin Transformer encoder of the degraded "
                 "observation; one model for super-resolution, inpainting, denoising and generation.",
         code="[`ckmsim.models.ckmdiff`][ckmsim.models.ckmdiff], [`CKMDiffMethod`][ckmsim.models.ckmdiff.method.CKMDiffMethod], "
              "[`pretrained_ckmdiff`][ckmsim.models.pretrained.pretrained_ckmdiff]",
         paper=PAPERS["ckmdiff"],
         equations="eq. (1) (the inverse problem), eqs. (18)-(22) (decoupled forward process, posterior, loss "
                   "weights), Alg. 1 (training), Alg. 2 (sampling); metrics eqs. (23)-(30)",
         inputs="the condition image of the observation: the observed gain filled by bicubic (a lattice) or KNN, "
                "the building map, its Canny edges",
         predicts="`gain_db` (the mean in dB of K draws; `predict_samples` returns the draws)",
         tasks="the degradations its run was trained on; the shipped model: x2 / x4 sub-sampling, noisy x4 block "
               "average, noisy box inpainting, denoising, generation; grids a multiple of 4 cells",
         scores=GAIN_RATES,
         tests="`tests/models/test_ckmdiff.py` (`test_reverse_step_is_the_bayes_posterior`, "
               "`test_sampler_with_an_oracle_network_returns_z0`, `test_tiny_two_stage_run_lowers_the_losses_and_the_method_predicts`, ...), "
               "`tests/models/test_ckmdiff_swin.py`, `tests/models/test_pretrained.py::test_shipped_ckmdiff_beats_bicubic_on_held_out_maps`",
         studies="CKMDiff study, " + CKMDIFF_TABLE + ", three seeds at S = 10: noisy x4 204.1 ± 12.6 dB² (0.474x "
                 "bicubic's 430.4; paper 0.45x), box inpainting 285.7 ± 3.8 dB² (0.688x KNN), denoising 136.3 ± 5.7 "
                 "dB²; rate 3.385 / 3.190 / 3.395 bit/s/Hz against the best classical 1.959 / 1.688 / 1.740. The "
                 "shipped model (S = 2): noisy x4 218.4, x2 165.7 (bicubic 173.7, KNN 142.0), x4 239.1 dB² (bicubic "
                 "251.0, KNN 217.4). Coded-link goodput of the shipped model on 10 maps [bit/s/Hz]: noisy x4 2.34 (risk-aware margin 2.46) "
                 "against bilinear's 1.53, box 2.88 against KNN's 2.72, denoising 2.17 against KNN's 1.46, x2 2.99 "
                 "against bilinear's 3.60, x4 2.35 against KNN's 2.96.",
         notes="On munich it is outside what it was trained on (procedural cities, APs at 10 m, 32 x 32 tiles) and "
               "loses to interpolation by 7-12 dB of gain RMSE; even in distribution it is below KNN on noiseless "
               "sub-sampling (the VAE re-draws the measured cells), and RadioUNet beats it on every noisy task. "
               "Its samples are over-confident (the truth lies in their 10-90 % band in 35-43 % of the cells)."),
    dict(slug="ladckm", title="LAD-CKM", kind="CSI predictor", registry="not in `STUDY_METHODS` (CSI predictor; `LadCkmMethod`)",
         registry_key=None, paper_short="LAD-CKM", predicts_short="downlink CSI",
         summary="Location-agnostic dynamic CKM: the downlink CSI of a UE from its uplink CSI and a few downlink "
                 "pilots, with no UE position, by rendering an RF radiance field of virtual radiators (adaptive "
                 "deformation module + RARE-Net).",
         code="[`ckmsim.models.ladckm.network.LadCkm`][ckmsim.models.ladckm.network.LadCkm], "
              "[`LadCkmMethod`][ckmsim.models.ladckm.method.LadCkmMethod], "
              "[`pretrained_ladckm`][ckmsim.models.pretrained.pretrained_ladckm]",
         paper=PAPERS["ladckm"],
         equations="eq. (7) (rendering), eqs. (10)-(11) (beam pair and rate with pilot overhead), eq. (12) (NMSE "
                   "loss), eqs. (15)-(16) (queries, angular deformation)",
         inputs="the UE's uplink CSI and the downlink CSI on the rho = 0.125 pilot pattern (rho = 0: uplink only); "
                "no position",
         predicts="the downlink MIMO-OFDM CSI on the 52 measured subcarriers",
         tasks="FDD downlink CSI prediction on a dynamic-CSI dataset (moving cars and pedestrians)",
         scores="CSI beamforming (LAD-CKM eqs. (10)-(11)), paying its declared pilot overhead rho = 0.125",
         tests="`tests/models/test_ladckm.py` (`test_render_single_radiator_and_two_on_a_ray_equal_their_closed_forms`, "
               "`test_nmse_loss_closed_form_and_scale_invariance`, `test_learns_the_downlink_of_a_los_toy_from_the_uplink_alone`, ...), "
               "`tests/models/test_pretrained.py::test_shipped_ladckm_set_predicts_held_out_downlink_csi`",
         studies="LAD-CKM study, `experiments/ladckm/RESULTS.md` (2,304 test UEs of future blocks): N_t = 16, rho = "
                 "0.125: rate 7.368 ± 0.002 bit/s/Hz (87.4 % of perfect CSI), NMSE 0.033 ± 0.004 (three seeds); "
                 "N_t = 8: 6.621 bit/s/Hz (87.4 %), NMSE 0.037. Uplink only (rho = 0): 7.323 (86.9 %), NMSE 0.66. "
                 "Against: uplink CSI by angle reciprocity 99.8 %, FIRE 97.2 %, location-based CKM at sigma 0 / 5 m "
                 "99.5 % / 90.6 %.",
         notes="The best CSI predictor by NMSE by a factor of 10, yet by rate it loses to every rho = 0 scheme that "
               "has the angles: eq. (11) charges its 12.5 % pilots, and it sits on that 87.5 % ceiling. With DFT "
               "codebooks the beam pair needs the directions, which the uplink already gives."),
    dict(slug="fire", title="FIRE", kind="CSI predictor", registry="not in `STUDY_METHODS` (`LadCkmMethod`, model `fire`)",
         registry_key=None, paper_short="LAD-CKM baseline", predicts_short="downlink CSI",
         summary="FIRE's variational autoencoder from the uplink CSI to the downlink CSI across the FDD gap, written "
                 "in Keras from its paper; LAD-CKM's learned baseline, trained through LAD-CKM's config.",
         code="[`ckmsim.models.fire.network.Fire`][ckmsim.models.fire.network.Fire], "
              "[`LadCkmMethod`][ckmsim.models.ladckm.method.LadCkmMethod]",
         paper="Liu, Singh, Xu, Vasisht, *FIRE: enabling reciprocity for FDD MIMO systems*, MobiCom 2021 (not in the "
               "repository); a baseline of " + PAPERS["ladckm"] + " (ref. [5])",
         equations="VAE loss: reconstruction (LAD-CKM's NMSE, eq. (12)) + beta KL; scored by LAD-CKM eqs. (10)-(11)",
         inputs="the UE's uplink CSI only", predicts="the downlink CSI", tasks="FDD downlink CSI prediction",
         scores="CSI beamforming, rho = 0",
         tests="`tests/models/test_fire.py::test_fire_learns_a_fixed_uplink_to_downlink_map_and_round_trips`, "
               "`::test_fire_trains_through_the_ladckm_config_uplink_only`",
         studies="LAD-CKM study, `experiments/ladckm/RESULTS.md`: N_t = 16 rate 8.229 ± 0.039 bit/s/Hz (97.7 %), "
                 "NMSE 0.369 ± 0.016 (three seeds); N_t = 8: 7.375 (97.4 %), NMSE 0.42. 293 k parameters, 106 s of "
                 "training on 2 CPU cores.",
         notes="Above LAD-CKM by rate (no pilots to pay), below the uplink CSI taken as it is (99.8 %)."),
    dict(slug="nerf2", title="NeRF2", kind="CSI predictor", registry="not shipped (`LadCkmMethod`, model `nerf2`)",
         registry_key=None, paper_short="LAD-CKM baseline", predicts_short="downlink CSI",
         summary="NeRF2's neural RF radiance field around the BS (attenuation MLP with a skip, positional encoding, "
                 "radiance conditioned on the uplink CSI, amplitude/phase rendering along rays from every BS "
                 "element), LAD-CKM's radiance-field baseline.",
         code="[`ckmsim.models.nerf2.network.NeRF2`][ckmsim.models.nerf2.network.NeRF2]",
         paper="Zhao, An, Pan, Yang, *NeRF2: neural radio-frequency radiance fields*, MobiCom 2023 (not in the "
               "repository); a baseline of " + PAPERS["ladckm"] + " (ref. [15])",
         equations="NeRF2's volume rendering; scored by LAD-CKM eqs. (10)-(12)",
         inputs="the UE's uplink CSI (in place of NeRF2's transmitter position)", predicts="the downlink CSI",
         tasks="FDD downlink CSI prediction, at any carrier", scores="CSI beamforming, rho = 0",
         tests="`tests/models/test_nerf2.py::test_rendering_equals_the_closed_form_of_its_weights`, "
               "`::test_rays_and_positional_encoding`, `::test_nerf2_learns_a_static_field_and_round_trips`",
         studies="LAD-CKM study, `experiments/ladckm/RESULTS.md`: at CPU size it collapsed (predicts zero for every "
                 "UE, NMSE 1.00, rate 2.939 bit/s/Hz = 34.9 % of perfect, no better than a random beam); reported, "
                 "not shipped.",
         notes="Needs its own size (`experiments/ladckm/nerf2-gpu.toml`), which the CPU budget did not allow."),
    dict(slug="location-ckm", title="Location-based map CSI", kind="map read-out",
         registry="every per-path map in the study's CSI-beamforming score; `location_sigma*` in the LAD-CKM study",
         registry_key=None, paper_short="LAD-CKM eqs. (10)-(11)", predicts_short="CSI from a map",
         summary="The classical, location-based CKM read-out: the map's L paths at the UE's (reported) cell -- gain, "
                 "AoA at the BS, AoD at the UE, delay, phase assumed $-2\\pi (f_c + f)\\tau$ -- give a predicted "
                 "MIMO-OFDM CSI through the same code as the true CSI; the DFT pair of largest predicted gain is "
                 "scored on the true CSI. Any CKM with per-path layers becomes a CSI predictor this way.",
         code="[`ckmsim.link.map_csi`][ckmsim.link.map_csi] ([`map_csi`][ckmsim.link.map_csi.map_csi], "
              "[`MapCsiBeamformingScorer`][ckmsim.link.map_csi.MapCsiBeamformingScorer])",
         paper=PAPERS["ladckm"] + " (the location-based approaches of its Sec. I, scored by its eqs. (9)-(11))",
         equations="LAD-CKM eq. (10) (beam pair from predicted CSI), eq. (11) (rate with pilot overhead)",
         inputs="a CKM's `path_gain_db`, `aoa_*`, `aod_*` (for a multi-antenna UE) and `toa_s` at the UE's cell, and "
                "the UE's position (true, or with an error sigma)",
         predicts="the MIMO-OFDM CSI of the UE", tasks="every per-path map of every task",
         scores="CSI beamforming, rho = 0 (a map read at the UE's position sends no pilot)",
         tests="`tests/link/test_map_csi.py` (`test_map_of_the_true_paths_reproduces_the_true_csi`, "
               "`test_ground_truth_map_of_a_los_channel_earns_perfect_csi`, `test_wrong_azimuths_score_lower_than_the_true_map`, ...)",
         studies="Quickstart (" + "[`docs/methods/data/quickstart-munich.json`](data/quickstart-munich.json)" + "): the "
                 "ground-truth map's CSI earns 99.8 % of the perfect-CSI pair at x2 and x4; each interpolator's "
                 "`rate_csi_beamforming` is on its card (e.g. bilinear 96.8 / 93.0 %). LAD-CKM study, "
                 "`experiments/ladckm/RESULTS.md` (N_t = 16): the static map at the true position 99.5 % of perfect "
                 "CSI, with a position error of sigma = 2 / 5 / 10 m 97.7 / 90.6 / 80.0 %, crossing LAD-CKM's line "
                 "at about 6.5 m.",
         notes="It needs the UE's position to within a few metres; a static map also misses the moving cars and "
               "pedestrians of a dynamic scene (NMSE 0.59 even at the true position)."),
]


#: One line per card for the index: its headline on a shipped study other than the quickstart (the file is
#: named on the card).
HEADLINES = {
    "bilinear": "CKMDiff study, noisy x4: 362.8 dB² (KNN 319.4)",
    "bicubic": "E-SRResNet study x2: PGM1 6.86 dB, PAM1 21.90 deg",
    "coded-bicubic": "E-SRResNet study x2: PGM1 22.98 dB, PAM1 46.13 deg",
    "knn": "E-SRResNet study x2: PGM1 6.44 dB, PAM1 20.29 deg",
    "umi-3gpp": "Cross-AP study: 30.19 dB RMSE",
    "cross-ap-weighted": "Cross-AP study: 19.78 dB RMSE (7 known APs)",
    "excess-weighted": "Cross-AP deployment: 96.3 % of the oracle",
    "esrresnet": "E-SRResNet study x2: PGM1 6.40 dB, PAM1 20.43 deg; beam selection 77.3 %",
    "srresnet": "E-SRResNet study x2: PGM1 6.16 dB, PAM1 20.26 deg; beam selection 76.7 %",
    "crossap-unet": "Cross-AP study: 0.628 x eq. (7)'s RMSE (7 known APs); deployment 98.5-99.8 %",
    "radiounet": "CKMDiff study, noisy x4: 147.0 dB²",
    "pix2pix": "CKMDiff study, noisy x4: 219.2 dB²",
    "ckmdiff": "CKMDiff study, noisy x4: 204.1 dB² (bicubic 430.4)",
    "ladckm": "LAD-CKM study N_t = 16: NMSE 0.033, 87.4 % of perfect CSI (rho 0.125)",
    "fire": "LAD-CKM study N_t = 16: NMSE 0.369, 97.7 % of perfect CSI",
    "nerf2": "LAD-CKM study N_t = 16: collapsed, 34.9 % of perfect CSI",
    "location-ckm": "LAD-CKM study N_t = 16: 99.5 % at the true position, 90.6 % at 5 m error",
}


def main() -> None:
    results = json.loads(QUICKSTART_JSON.read_text())
    for card in CARDS:
        (HERE / f"{card['slug']}.md").write_text(render(card, results))
    (HERE / "index.md").write_text(index_page(CARDS, results))
    print(f"wrote {len(CARDS)} cards and the index into {HERE}")


if __name__ == "__main__":
    main()
