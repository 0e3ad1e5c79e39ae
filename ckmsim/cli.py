"""The ``ckmsim`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

# TensorFlow is imported by the commands that run it, without its start-up noise (see ckmsim.native)
from ckmsim.native import import_tensorflow as _quiet_tensorflow

# rich_markup_mode=None: help texts carry units in brackets ("[m]"), which rich markup would swallow as tags
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="ckmsim: channel knowledge maps on ray-traced ground truth, scored by map error and rate.")


@app.callback()
def _root():
    """Keeps ``quickstart`` a sub-command while it is the only one."""


def _parse_floats(text: Optional[str], count: int, option: str) -> Optional[tuple[float, ...]]:
    """``"x,y,z"`` -> floats, with an error naming the option."""
    from ckmsim.errors import CkmsimError

    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CkmsimError(f"{option} expects {count} comma-separated numbers. Received: '{text}'") from None
    if len(values) != count:
        raise CkmsimError(f"{option} expects {count} comma-separated numbers. Received: '{text}'")
    return values


@app.command()
def quickstart(
    scene: str = typer.Option("munich", help="Built-in Sionna RT scene name or path of a Mitsuba XML file."),
    out: str = typer.Option("ckmsim-out", help="Output folder for results.json, report.md and figures."),
    seed: int = typer.Option(42, help="Seed of the ray tracers' sampling."),
    cells: int = typer.Option(64, help="Grid size: cells per side."),
    cell_size: float = typer.Option(2.0, help="Cell size [m]."),
    center: Optional[str] = typer.Option(None, help="Study-area centre 'x,y' [m] (default: picked by open-cell "
                                                    "fraction, see docs/datasets.md)."),
    bs: Optional[str] = typer.Option(None, help="BS position 'x,y,z' [m] (default: above the centre, 2 m over "
                                                "the highest surface within 30 m of it)."),
    path_samples: int = typer.Option(10**5, help="PathSolver rays per call (per probe call of the pooled "
                                                 "solver the quickstart uses, see docs/quickstart.md)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Ray-trace a small study area, reconstruct its CKM from x2 and x4 sparse samples with every study
    method and score each reconstruction by map error and by the rates its decisions earn on the true
    channel (beam selection, SCM precoding, link adaptation, CSI beamforming).

    The methods: the interpolators bilinear, bicubic, knn, idw, rbf and kriging; least squares (ls); the
    gain-only model-based baselines pathloss_kriging and umi_3gpp; and two learned methods with the weights
    shipped in the package, esrresnet (x2, x4 as a bicubic-then-network cascade) and ckmdiff (gain maps
    only). Writes results.json, report.md and PNG figures into --out."""
    _quiet_tensorflow()
    from ckmsim.eval.quickstart import QuickstartConfig, run_quickstart
    from ckmsim.raytrace.settings import RayTracingSettings

    config = QuickstartConfig(scene=scene, out=out, seed=seed, num_cells=cells, cell_size_m=cell_size,
                              center_m=_parse_floats(center, 2, "--center"),
                              bs_position_m=_parse_floats(bs, 3, "--bs"),
                              ray_tracing=RayTracingSettings(path_samples=path_samples, seed=seed))
    run_quickstart(config, progress=not quiet)


def _sub_app(help_text: str) -> typer.Typer:
    """A command group with the root app's settings."""
    return typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help=help_text)


@app.command()
def evaluate(
    config: str = typer.Argument(..., help="Evaluation TOML file (see experiments/evaluate-small.toml)."),
    out: Optional[str] = typer.Option(None, help="Output folder (default: the config's [evaluate] out)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Run methods x tasks x scenes: map scores, the rates of beam selection, SCM precoding, link adaptation
    and CSI beamforming, rate vs SNR and vs BS antennas, rate vs map error, the coded link and AP deployment
    where the config asks for them; writes results.json, report.md and PNG figures."""
    _quiet_tensorflow()
    from ckmsim.eval.evaluate import load_evaluation_config, run_evaluation

    run_evaluation(load_evaluation_config(config, out=out), progress=not quiet)


@app.command("csi-study")
def csi_study(
    config: str = typer.Argument(..., help="CSI study TOML file (see experiments/ladckm/study-cpu.toml)."),
    out: Optional[str] = typer.Option(None, help="Output folder (default: the config's [study] out)."),
):
    """Score location-agnostic downlink-CSI predictors (LAD-CKM, FIRE, NeRF2 runs; several seeds: mean and
    spread) against perfect CSI, the beam sweep, the uplink and location-based maps with UE position error, by
    the rate of DFT beam pairs on a dynamic-CSI store; writes results.json, report.md and PNG figures."""
    _quiet_tensorflow()
    from ckmsim.eval.csi_study import load_csi_study_config, run_csi_study

    run_csi_study(load_csi_study_config(config, out=out))

scene_app = _sub_app("Bring scenes in: OpenStreetMap / GeoJSON import and procedural cities.")
app.add_typer(scene_app, name="scene")


@scene_app.command("import")
def scene_import(
    file: str = typer.Argument(..., help="An OpenStreetMap .osm XML file or a GeoJSON of building footprints."),
    out: str = typer.Option(..., help="Scene folder to write (scene.xml, meshes/, scene.json)."),
    default_height: float = typer.Option(20.0, help="Height [m] of buildings with no height or levels tag."),
    level_height: float = typer.Option(3.0, help="Height [m] of one building level."),
    building_material: str = typer.Option("concrete", help="ITU material of walls and roofs."),
    ground_material: str = typer.Option("auto", help="ITU material of the ground; 'auto': medium_dry_ground "
                                                     "where ITU defines it at the frequency, else concrete."),
    frequency_ghz: float = typer.Option(28.0, help="Carrier frequency the scene is meant for [GHz]."),
):
    """Import footprints offline into a Sionna RT scene folder."""
    from ckmsim.scene.osm import import_footprints

    report = import_footprints(file, out, default_height_m=default_height, level_height_m=level_height,
                               building_material=building_material, ground_material=ground_material,
                               frequency_hz=frequency_ghz * 1e9)
    print(f"wrote {report.xml_path}: {report.num_buildings} buildings ({report.num_repaired} repaired, "
          f"{report.num_skipped} skipped), origin lon/lat {report.origin_lon_lat}")


@scene_app.command("generate")
def scene_generate(
    out: str = typer.Option(..., help="Scene folder to write."),
    seed: int = typer.Option(0, help="Seed of the layout."),
    size: float = typer.Option(256.0, help="Side of the square city [m]."),
):
    """Write a seeded procedural city (street grid, irregular blocks, squares, varied buildings)."""
    import json

    from ckmsim.scene.procedural import CityConfig, write_city
    from ckmsim.scene.writer import SCENE_JSON

    xml = write_city(CityConfig(size_m=size), seed, out)
    num_buildings = json.loads((xml.parent / SCENE_JSON).read_text())["num_buildings"]
    print(f"wrote {xml}: {num_buildings} buildings, seed {seed}")


@scene_app.command("preview")
def scene_preview(
    scene: str = typer.Argument(..., help="Built-in scene name or Mitsuba XML path."),
    out: str = typer.Option(..., help="PNG file to write."),
    bs: Optional[str] = typer.Option(None, help="BS position 'x,y,z' [m]: marks it and overlays its radio map."),
    cells: int = typer.Option(256, help="Cells on the longer side of the preview grid."),
):
    """Top view of a scene's buildings (heights), with a transmitter and its radio map if --bs is given."""
    from ckmsim.raytrace.gain_map import gain_map_db
    from ckmsim.raytrace.scene_setup import place_base_station
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.load import load_scene
    from ckmsim.scene.preview import default_grid, preview_png

    loaded = load_scene(scene)
    grid = default_grid(loaded, cells_long_side=cells)
    position = _parse_floats(bs, 3, "--bs")
    radio_map = None
    if position is not None:
        settings = RayTracingSettings(radio_map_samples=10**6)
        place_base_station(loaded, position, settings)
        radio_map = gain_map_db(loaded, grid, settings)
    path = preview_png(loaded, out, grid=grid, radio_map_db=radio_map,
                       transmitters=[position] if position is not None else None)
    print(f"wrote {path}")


@scene_app.command("tiles")
def scene_tiles(
    scene: str = typer.Argument(..., help="Built-in scene name or Mitsuba XML path."),
    tile_cells: int = typer.Option(128, help="Cells per tile side."),
    cell_size: float = typer.Option(2.0, help="Cell size [m]."),
    min_open_fraction: float = typer.Option(0.1, help="Drop tiles with less open (non-building) area."),
):
    """List the square study areas a scene is cut into, with bounds and building fraction."""
    from ckmsim.scene.load import load_scene
    from ckmsim.scene.tiles import tile_scene, tiles_table

    rows = tiles_table(tile_scene(load_scene(scene), tile_cells=tile_cells, cell_size_m=cell_size,
                                  min_open_fraction=min_open_fraction))
    print("index  row  col    x_min    x_max    y_min    y_max  building")
    for r in rows:
        print(f"{r['index']:5d} {r['row']:4d} {r['col']:4d} {r['x_min']:8.1f} {r['x_max']:8.1f} "
              f"{r['y_min']:8.1f} {r['y_max']:8.1f}  {r['building_fraction']:8.2f}")
    print(f"{len(rows)} tile(s) of {tile_cells} x {tile_cells} cells of {cell_size} m")


raytrace_app = _sub_app("Check the ray tracer on a scene.")
app.add_typer(raytrace_app, name="raytrace")


def _parse_list(text: str, option: str, kind=float) -> tuple:
    """``"3e4,1e5"`` -> numbers, with an error naming the option."""
    from ckmsim.errors import CkmsimError

    try:
        values = tuple(kind(float(part)) for part in text.split(",") if part.strip())
    except ValueError:
        raise CkmsimError(f"{option} expects comma-separated numbers. Received: '{text}'") from None
    if not values:
        raise CkmsimError(f"{option} expects comma-separated numbers. Received: '{text}'")
    return values


@raytrace_app.command("check")
def raytrace_check(
    scene: str = typer.Argument(..., help="Built-in Sionna RT scene name or path of a Mitsuba XML file."),
    cells: int = typer.Option(64, help="Study area: cells per side (as the quickstart's)."),
    cell_size: float = typer.Option(2.0, help="Cell size [m]."),
    center: Optional[str] = typer.Option(None, help="Study-area centre 'x,y' [m] (default: the quickstart's)."),
    bs: Optional[str] = typer.Option(None, help="BS position 'x,y,z' [m] (default: the quickstart's)."),
    probes: int = typer.Option(256, help="Open cells traced (drawn at random)."),
    rays: str = typer.Option("3e4,1e5,3e5,1e6", help="Increasing PathSolver ray counts to try, comma-separated."),
    target: str = typer.Option("0.95,0.90", help="Match wanted for the strongest, second, ... path."),
    tol_db: float = typer.Option(0.5, help="Same path: powers within this [dB] ..."),
    tol_deg: float = typer.Option(0.5, help="... and directions at both ends within this [deg]."),
    max_depth: int = typer.Option(3, help="PathSolver maximum depth."),
    diffraction: bool = typer.Option(True, "--diffraction/--no-diffraction", help="Wedge and edge diffraction."),
    diffraction_sampling: Optional[float] = typer.Option(None, help="Diffraction sampling probability in [0, 1] "
                                                            "(default: RayTracingSettings')."),
    seed: int = typer.Option(42, help="Seed of the PathSolver."),
    probe_seed: int = typer.Option(0, help="Seed of the probe draw."),
    all_levels: bool = typer.Option(False, "--all-levels", help="Trace every ray count, also past convergence."),
    reference_runs: int = typer.Option(0, help="Extra runs at the highest ray count (other seeds) added to the "
                                               "reference only."),
    out: Optional[str] = typer.Option(None, help="Write the report as JSON to this file."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Trace probe cells at increasing rays until their strongest paths stop changing; print the match of
    each ray count against the union of all runs and the rays at which the target is reached."""
    import json

    _quiet_tensorflow()
    from ckmsim.errors import CkmsimError
    from ckmsim.eval.quickstart import QuickstartConfig
    from ckmsim.eval.study import study_geometry
    from ckmsim.raytrace.convergence import ConvergenceCheck, check_convergence, probe_positions_m
    from ckmsim.raytrace.scene_setup import place_base_station
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.load import load_scene

    targets = _parse_list(target, "--target")
    check = ConvergenceCheck(ray_levels=_parse_list(rays, "--rays", int), num_probes=probes,
                             num_paths=len(targets), tol_db=tol_db, tol_deg=tol_deg, target=targets,
                             seed=probe_seed)
    extra = {} if diffraction_sampling is None else {"diffraction_sampling_probability": diffraction_sampling}
    settings = RayTracingSettings(max_depth=max_depth, diffraction=diffraction, edge_diffraction=diffraction,
                                  seed=seed, **extra)
    loaded = load_scene(scene)
    grid, bs_position = study_geometry(loaded, QuickstartConfig(
        scene=scene, num_cells=cells, cell_size_m=cell_size, center_m=_parse_floats(center, 2, "--center"),
        bs_position_m=_parse_floats(bs, 3, "--bs"), ray_tracing=settings))
    place_base_station(loaded, bs_position, settings)
    positions = probe_positions_m(loaded, grid, check)
    print(f"{scene}: {len(positions)} probe cells in {cells} x {cells} cells of {cell_size} m "
          f"around ({grid.center_x_m:.1f}, {grid.center_y_m:.1f}) m, BS at "
          f"({bs_position[0]:.1f}, {bs_position[1]:.1f}, {bs_position[2]:.1f}) m")
    if reference_runs < 0:
        raise CkmsimError(f"--reference-runs must be >= 0. Received: {reference_runs}")
    report = check_convergence(loaded, positions, settings, check, stop_early=not all_levels,
                               reference_runs=reference_runs, progress=not quiet)
    print(report.table())
    print(report.summary())
    if out is not None:
        Path(out).write_text(json.dumps({"scene": scene, "grid": grid.to_dict(), "bs_position_m": list(bs_position),
                                         **report.to_dict()}, indent=2))
        print(f"wrote {out}")


dataset_app = _sub_app("Build, import and inspect CKM datasets.")
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build")
def dataset_build(
    config: str = typer.Argument(..., help="Dataset TOML file (see experiments/datasets/small.toml)."),
    out: Optional[str] = typer.Option(None, help="Store folder (default: datasets/<name>). An existing store of "
                                                 "the same config is resumed."),
    workers: int = typer.Option(1, help="Worker processes (1 = trace in this process)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the tasks on Ray: 'local' or a cluster address."),
    max_samples: Optional[int] = typer.Option(None, help="Stop after this many samples in total (resumable)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Ray-trace every sample of a dataset config into a zarr store; interrupt and re-run to resume."""
    _quiet_tensorflow()
    from ckmsim.data.builder import build_dataset
    from ckmsim.data.config import load_dataset_config
    from ckmsim.data.inspect import dataset_info

    dataset_config = load_dataset_config(config)
    store = build_dataset(dataset_config, out or f"datasets/{dataset_config.name}", workers=workers,
                          ray_address=ray, max_samples=max_samples, progress=not quiet)
    print(dataset_info(store))


@dataset_app.command("import")
def dataset_import(
    kind: str = typer.Argument(..., help="'radiomapseer' or 'ckmimagenet'."),
    root: str = typer.Argument(..., help="Dataset folder (RadioMapSeer root, or one CKMImageNet city folder)."),
    out: str = typer.Option(..., help="Store folder to write (resumed if it exists with the same inputs)."),
    simulation: str = typer.Option("DPM", help="RadioMapSeer gain folder: DPM, IRT2, IRT4, carsDPM, ..."),
    city: Optional[str] = typer.Option(None, help="CKMImageNet city name (replaces {city} in the layout)."),
    image_size: Optional[int] = typer.Option(None, help="Image side [pixels] (RadioMapSeer: 256; CKMImageNet: "
                                                        "read from each image)."),
    val_fraction: float = typer.Option(0.1, help="Share of the areas held out for validation."),
    test_fraction: float = typer.Option(0.1, help="Share of the areas held out for testing."),
    seed: int = typer.Option(0, help="Seed of the split by area."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Import a RadioMapSeer or CKMImageNet PNG folder into a ckmsim store (split by area)."""
    from ckmsim.data.importer import import_ckms, reader_areas
    from ckmsim.data.inspect import dataset_info
    from ckmsim.data.readers import CkmImageNetReader, RadioMapSeerLayout, RadioMapSeerReader
    from ckmsim.errors import CkmsimError

    if kind == "radiomapseer":
        layout = RadioMapSeerLayout() if image_size is None else RadioMapSeerLayout(image_size=image_size)
        reader = RadioMapSeerReader(root, simulation=simulation, layout=layout)
        source = {"reader": "RadioMapSeer", "root": str(root), "simulation": simulation}
    elif kind == "ckmimagenet":
        if city is None:
            raise CkmsimError("ckmimagenet import needs --city (e.g. --city Beijing)")
        reader = CkmImageNetReader(root, city=city, image_size=image_size)
        source = {"reader": "CKMImageNet", "root": str(root), "city": city}
    else:
        raise CkmsimError(f"Unknown dataset kind; expected 'radiomapseer' or 'ckmimagenet'. Received: kind={kind!r}")
    store = import_ckms(iter(reader), out, name=f"{kind}-{Path(root).name}", areas=reader_areas(reader),
                        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, source=source,
                        progress=not quiet)
    print(dataset_info(store))


@dataset_app.command("info")
def dataset_info_command(store: str = typer.Argument(..., help="Dataset store folder.")):
    """Summarise a dataset: samples and splits, scenes, settings, variables, timings, versions."""
    from ckmsim.data.inspect import dataset_info
    from ckmsim.data.store import DatasetStore

    print(dataset_info(DatasetStore.open(store)))


@dataset_app.command("show")
def dataset_show(
    store: str = typer.Argument(..., help="Dataset store folder."),
    index: int = typer.Option(0, help="Sample index (negative counts from the end)."),
    out: Optional[str] = typer.Option(None, help="PNG path (default: STORE/show/sample-<index>.png)."),
):
    """Write a PNG of every channel of one sample."""
    from ckmsim.data.inspect import sample_png
    from ckmsim.data.store import DatasetStore

    opened = DatasetStore.open(store)
    path = sample_png(opened, index, out or f"{store}/show/sample-{index}.png")
    print(f"wrote {path}")


train_app = _sub_app("Train the networks (resumable: re-run the same command after an interruption).")
app.add_typer(train_app, name="train")


@train_app.command("esrresnet")
def train_esrresnet_command(
    config: str = typer.Argument(..., help="Training TOML (see experiments/esrresnet/)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset store (overrides the config's)."),
    out: Optional[str] = typer.Option(None, help="Run folder (overrides the config's)."),
    only: Optional[List[str]] = typer.Option(None, help="Train only this run (repeatable; default: every run)."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides [train] seed; use a new --out per seed)."),
):
    """Train E-SRResNet (primary- and secondary-path models) on a ckmsim dataset."""
    _quiet_tensorflow()
    from ckmsim.models.esrresnet.train import train_esrresnet

    train_esrresnet(config, dataset=dataset, out=out, only=only or None, seed=seed)


@train_app.command("crossap")
def train_crossap_command(
    config: str = typer.Argument(..., help="Training TOML (see experiments/crossap/)."),
    dataset: Optional[str] = typer.Option(None, help="Multi-AP dataset store (overrides the config's)."),
    out: Optional[str] = typer.Option(None, help="Run folder (overrides the config's)."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides [train] seed; use a new --out per seed)."),
):
    """Train the cross-AP UNet on a multi-AP ckmsim dataset."""
    _quiet_tensorflow()
    from ckmsim.models.crossap.train import train_crossap

    train_crossap(config, dataset=dataset, out=out, seed=seed)


@train_app.command("ckmdiff")
def train_ckmdiff_command(
    config: str = typer.Argument(..., help="Training TOML (see experiments/ckmdiff/)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset store with gain maps (overrides the config's)."),
    out: Optional[str] = typer.Option(None, help="Run folder (overrides the config's)."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides [train] seed; use a new --out per seed)."),
):
    """Train CKMDiff (the VAE, then the conditional decoupled diffusion model) on a ckmsim dataset."""
    _quiet_tensorflow()
    from ckmsim.models.ckmdiff.train import train_ckmdiff

    train_ckmdiff(config, dataset=dataset, out=out, seed=seed)


@train_app.command("pix2pix")
def train_pix2pix_command(
    config: str = typer.Argument(..., help="Training TOML (see experiments/ckmdiff/pix2pix-cpu.toml, "
                                           "radiounet-cpu.toml)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset store with gain maps (overrides the config's)."),
    out: Optional[str] = typer.Option(None, help="Run folder (overrides the config's)."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides [train] seed; use a new --out per seed)."),
):
    """Train CKMDiff's conditional baselines (the pix2pix cGAN or RadioUNet, by [pix2pix] model) on a ckmsim
    dataset."""
    _quiet_tensorflow()
    from ckmsim.models.pix2pix.train import train_pix2pix

    train_pix2pix(config, dataset=dataset, out=out, seed=seed)


@train_app.command("ladckm")
def train_ladckm_command(
    config: str = typer.Argument(..., help="Training TOML (see experiments/ladckm/train-cpu.toml)."),
    dataset: Optional[str] = typer.Option(None, help="Dynamic-CSI dataset store (overrides the config's)."),
    out: Optional[str] = typer.Option(None, help="Run folder (overrides the config's)."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides [train] seed; use a new --out per seed)."),
):
    """Train LAD-CKM (downlink CSI from uplink CSI and partial downlink pilots), or FIRE ([ladckm] model =
    "fire"), on a dynamic-CSI dataset."""
    _quiet_tensorflow()
    from ckmsim.models.ladckm.train import train_ladckm

    train_ladckm(config, dataset=dataset, out=out, seed=seed)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: runs the app and turns :class:`CkmsimError` into one line on stderr and exit code 2."""
    # importing ckmsim.errors runs ckmsim/__init__.py first: Mitsuba before TensorFlow
    from ckmsim.errors import CkmsimError

    try:
        app(args=argv, prog_name="ckmsim")
    except CkmsimError as err:
        print(f"ckmsim: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
