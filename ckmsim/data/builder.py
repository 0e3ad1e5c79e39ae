"""Build a dataset: plan every sample from the config's seed, trace them (in parallel), commit in plan order.

The plan is a pure function of the config: scenes are tiled, tiles drawn and split, a transmitter site and a
UE drop drawn per sample, each from its own ``SeedSequence`` child. Because samples are committed in plan
order (results finishing early wait in a small buffer), an interrupted build re-run with the same config
continues at the first uncommitted sample and ends with the same store as an uninterrupted build.

Three executors run the same :func:`trace_sample`: in-process (``workers=1``), a local process pool
(``workers > 1``, ``spawn`` start method: Dr.Jit and TensorFlow do not survive ``fork``), or a Ray cluster
(``ray_address``; ``"local"`` starts one on this machine). Sionna RT picks its CUDA variant by itself where
a GPU is present, so the same code traces on the GPU there.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ckmsim import __version__
from ckmsim.data.config import DatasetConfig
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("sionna", "sionna-rt", "mitsuba", "drjit", "tensorflow", "numpy", "xarray", "zarr")


@dataclass(frozen=True)
class SampleTask:
    """Everything needed to trace one sample, independent of any other.

    ``ue_cells`` is ``[num_ues, 2]`` (row, col) as nested tuples, or empty without CSI.
    """

    index: int
    id: str
    scene: str
    tile_index: int
    tx_index: int
    split: str
    grid: dict
    tx_position_m: tuple[float, float, float]
    ue_cells: tuple[tuple[int, int], ...]
    seed: int


# ----------------------------------------------------------------------------------------------------------
# Plan
# ----------------------------------------------------------------------------------------------------------

def plan_samples(config: DatasetConfig) -> list[SampleTask]:
    """Every sample of the dataset, in commit order. Loads each scene once to tile it."""
    from ckmsim.scene.geometry import cell_geometry
    from ckmsim.scene.load import load_scene
    from ckmsim.scene.tiles import tile_scene

    root = np.random.SeedSequence(int(config.seed))
    scene_seeds = root.spawn(len(config.scenes))
    tasks = []
    for scene_name, scene_seed in zip(config.scenes, scene_seeds):
        scene = load_scene(scene_name)
        tiles = tile_scene(scene, config.tile_cells, config.cell_size_m, config.ue_height_m,
                           config.min_open_fraction)
        if not tiles:
            raise CkmsimError(f"Scene '{scene_name}' has no tile of {config.tile_cells} cells with at least "
                              f"{config.min_open_fraction:.0%} open cells")
        tile_rng, split_rng, *sample_seeds = scene_seed.spawn(2 + len(tiles))
        chosen = _choose_tiles(len(tiles), config.tiles_per_scene, np.random.default_rng(tile_rng))
        splits = _tile_splits(scene_name, len(chosen), config, np.random.default_rng(split_rng))
        for position, tile_number in enumerate(chosen):
            tile, building = tiles[tile_number]
            ground_m = cell_geometry(scene, tile.grid).ground_m
            for tx_index, tx_seed in enumerate(sample_seeds[tile_number].spawn(config.transmitters_per_tile)):
                tasks.append(_sample_task(len(tasks), scene_name, tile, building, ground_m, tx_index,
                                          splits[position], config, tx_seed))
    return tasks


def _choose_tiles(num_tiles: int, wanted: int, rng: np.random.Generator) -> list[int]:
    """Indices of the tiles used, in ascending order (all of them when ``wanted`` is 0 or too many)."""
    if wanted == 0 or wanted >= num_tiles:
        return list(range(num_tiles))
    return sorted(int(i) for i in rng.choice(num_tiles, size=wanted, replace=False))


def _tile_splits(scene_name: str, num_tiles: int, config: DatasetConfig, rng: np.random.Generator) -> list[str]:
    """Split of each chosen tile: whole test scenes go to ``test``, whole validation scenes to ``val``; otherwise tiles are shuffled and cut by
    the validation and test fractions (rounded, so a split with a non-zero share gets at least one tile when
    the scene has more than one)."""
    if scene_name in config.test_scenes:
        return ["test"] * num_tiles
    if scene_name in config.val_scenes:
        return ["val"] * num_tiles
    num_val = _share(num_tiles, config.val_fraction)
    num_test = _share(num_tiles - num_val, config.test_fraction / max(1e-12, 1.0 - config.val_fraction))
    labels = ["val"] * num_val + ["test"] * num_test + ["train"] * (num_tiles - num_val - num_test)
    order = rng.permutation(num_tiles)
    return [labels[int(rank)] for rank in np.argsort(order)]


def _share(count: int, fraction: float) -> int:
    if fraction <= 0 or count <= 1:
        return 0
    return int(min(count - 1, max(1, round(fraction * count))))


def _sample_task(index: int, scene_name: str, tile, building: np.ndarray, ground_m: np.ndarray, tx_index: int,
                 split: str, config: DatasetConfig, seed: np.random.SeedSequence) -> SampleTask:
    """Draw the transmitter cell and the UE drop of one sample; the transmitter stands ``tx_height_m`` above
    the local ground of its cell (``ground_m`` [num_y, num_x] [m])."""
    rng = np.random.default_rng(seed)
    open_cells = np.argwhere(~building)
    row, col = open_cells[rng.integers(len(open_cells))]
    x, y, _ = tile.grid.cell_centers_m()[row, col]
    ue_cells = ()
    # a dynamic sample drops its UEs per coherence block, where the moving objects leave room (trace_blocks)
    if config.csi is not None and config.dynamic is None:
        if config.csi.num_ues > len(open_cells):
            raise CkmsimError(f"csi.num_ues={config.csi.num_ues} exceeds the {len(open_cells)} open cells of tile "
                              f"{tile.index} of '{scene_name}'")
        picked = open_cells[rng.choice(len(open_cells), size=config.csi.num_ues, replace=False)]
        ue_cells = tuple((int(r), int(c)) for r, c in picked)
    scene_label = Path(scene_name).parent.name if scene_name.lower().endswith(".xml") else scene_name
    return SampleTask(index=index, id=f"{scene_label}/tile{tile.index:03d}/tx{tx_index:02d}", scene=scene_name,
                      tile_index=int(tile.index), tx_index=tx_index, split=split, grid=tile.grid.to_dict(),
                      tx_position_m=(float(x), float(y), float(ground_m[row, col] + config.tx_height_m)),
                      ue_cells=ue_cells,
                      seed=int(rng.integers(2**31 - 1)))


# ----------------------------------------------------------------------------------------------------------
# One sample
# ----------------------------------------------------------------------------------------------------------

_SCENES: dict = {}


def _scene(name: str):
    """The scene ``name``, loaded once per process (loading dominates small samples otherwise)."""
    from ckmsim.scene.load import load_scene

    if name not in _SCENES:
        _SCENES[name] = load_scene(name)
    return _SCENES[name]


def trace_sample(task: SampleTask, config: DatasetConfig) -> tuple[dict, dict]:
    """Ray-trace one sample. Returns ``(arrays, record)`` for :meth:`DatasetStore.append`.

    ``record["timings_s"]`` splits the time into solver calls (RadioMapSolver, PathSolver, CSI traces,
    building-mask ray casts) and the rest, which the benchmark uses to measure the builder's overhead.
    """
    from ckmsim.raytrace.csi import trace_csi
    from ckmsim.raytrace.ground_truth import trace_ground_truth

    started = time.perf_counter()
    scene = _scene(task.scene)
    grid = Grid.from_dict(task.grid)
    settings = replace(config.ray_tracing, seed=task.seed)
    ckm, paths = trace_ground_truth(scene, task.scene, grid, task.tx_position_m, settings, config.num_map_paths,
                                    progress=False)
    removed = check_no_duplicate_paths(paths, task.id)
    timings = dict(ckm.attrs["timings_s"])
    arrays = {name: (tuple(ckm[name].dims), ckm[name].values) for name in ckm.data_vars}
    arrays["x_m"] = (("x",), ckm["x"].values.astype(np.float64))
    arrays["y_m"] = (("y",), ckm["y"].values.astype(np.float64))
    arrays["tx_position_m"] = (("xyz",), np.asarray(task.tx_position_m, dtype=np.float64))
    if config.dynamic is not None:
        from ckmsim.data.dynamic import trace_blocks

        # after the map: the map layers are the static scene's, the blocks add and remove the moving objects
        ground_m = ckm["ground_m"].values if "ground_m" in ckm else None
        blocks, info = trace_blocks(scene, grid, ckm["building"].values, ground_m, task.tx_position_m, config.csi,
                                    config.dynamic, settings, task.seed)
        arrays.update(blocks)
        timings.update(info["timings_s"])
        dropped = info["max_dropped_power_share"]
    elif config.csi is not None:
        cells = np.asarray(task.ue_cells, dtype=np.int32).reshape(-1, 2)
        ground_m = ckm["ground_m"].values if "ground_m" in ckm else None
        positions = grid.cell_centers_m(ground_m)[cells[:, 0], cells[:, 1]]
        channels, timings["csi_path_solver"] = trace_csi(scene, task.tx_position_m, positions, config.csi, settings)
        arrays["ue_cell"] = (("ue", "rc"), cells)
        arrays["ue_position_m"] = (("ue", "xyz"), positions.astype(np.float64))
        arrays["h_dl"] = (("ue", "subcarrier", "ue_ant", "bs_ant"), channels["h_dl"])
        arrays["h_ul"] = (("ue", "subcarrier", "bs_ant", "ue_ant"), channels["h_ul"])
    timings["solver_total"] = float(sum(v for k, v in timings.items() if k != "dynamic_other"))
    timings["sample_total"] = time.perf_counter() - started
    record = {"id": task.id, "scene": task.scene, "tile_index": task.tile_index, "tx_index": task.tx_index,
              "split": task.split, "seed": task.seed, "grid": task.grid, "tx_position_m": list(task.tx_position_m),
              "num_ues_map": int(ckm.attrs["num_ues"]), "num_duplicate_paths_removed": removed, "timings_s": timings}
    if config.dynamic is not None:
        record["max_dropped_path_power_share"] = dropped
    return arrays, record


def check_no_duplicate_paths(paths, sample_id: str) -> int | None:
    """Raise if a traced path set still holds a copy of a path; return the copies removed while tracing.

    Every path set is deduplicated in :func:`ckmsim.raytrace.paths.trace_paths`; this independent re-check
    (delays and directions, :func:`ckmsim.raytrace.paths.count_duplicate_paths`) guards the stored layers
    against a solver mode or a future change that lets one through. None for a gain-only sample (no paths).
    """
    from ckmsim.raytrace.paths import count_duplicate_paths

    if paths is None:
        return None
    copies = count_duplicate_paths(paths)
    if copies.any():
        raise RuntimeError(f"sample {sample_id}: {int(copies.sum())} duplicate path(s) in {int((copies > 0).sum())} "
                           f"cell(s) survived deduplication (first at UE {int(np.argmax(copies > 0))}); the "
                           f"sample is not stored")
    return int(paths.attrs.get("num_duplicate_paths_removed", 0))


def _trace_in_worker(task: SampleTask, config_dict: dict, thread_count: int | None) -> tuple[dict, dict]:
    """Process-pool and Ray entry point: plain arguments in, plain arrays out."""
    if thread_count:
        import drjit as dr

        dr.set_thread_count(int(thread_count))
    return trace_sample(task, DatasetConfig.from_dict(config_dict))


# ----------------------------------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------------------------------

def build_dataset(config: DatasetConfig, out: str | Path, workers: int = 1, ray_address: str | None = None,
                  max_samples: int | None = None, progress: bool = True, log=print) -> DatasetStore:
    """Build (or resume) the dataset of ``config`` in the folder ``out``.

    Input
    -----
    config : DatasetConfig
    out : path of the store folder; an existing store made from the same config is resumed
    workers : int
        Parallel worker processes (1 = in this process). With Ray, the number of tasks in flight.
    ray_address : str or None
        ``"local"`` or a Ray cluster address (``"ray://host:10001"``, ``"auto"``) to run the tasks on Ray.
    max_samples : int or None
        Stop after this many committed samples in total (a partial build, resumable later).
    progress : bool
        Show a progress bar with samples/s and the remaining time.

    Output
    ------
    store : DatasetStore (the committed samples)
    """
    if not (isinstance(workers, int) and workers >= 1):
        raise CkmsimError(f"workers must be an integer >= 1. Received: workers={workers!r}")
    t0 = time.perf_counter()
    tasks = plan_samples(config)
    plan_s = time.perf_counter() - t0
    store = open_or_create_store(Path(out), config, tasks)
    done = len(store)
    stop = len(tasks) if max_samples is None else min(len(tasks), int(max_samples))
    pending = tasks[done:stop]
    log(f"dataset '{config.name}': {len(tasks)} samples planned ({plan_s:.1f} s), {done} already committed, "
        f"{len(pending)} to trace")
    if pending:
        check_scene_convergence(config, tasks, store, progress=progress, log=log)
    started = time.perf_counter()
    bar = tqdm(total=stop, initial=done, desc="samples", unit="sample", disable=not progress, smoothing=0.1)
    try:
        for arrays, record in _run(pending, config, workers, ray_address):
            store.append(arrays, record)
            bar.update(1)
    finally:
        bar.close()
    builds = store.manifest.get("builds", [])
    builds.append({"samples": len(pending), "wall_s": time.perf_counter() - started, "workers": workers,
                   "ray_address": ray_address, "mitsuba_variant": _mitsuba_variant()})
    store.update_header(builds=builds)
    removed = [r["num_duplicate_paths_removed"] for r in store.records[done:]
               if r.get("num_duplicate_paths_removed") is not None]
    if removed:
        log(f"duplicate paths removed by the PathSolver dedup: {sum(removed)} in {len(removed)} sample(s) "
            f"(median {int(np.median(removed))}, max {max(removed)} per sample); none left in any stored set")
    return store


def check_scene_convergence(config: DatasetConfig, tasks: list[SampleTask], store: DatasetStore,
                            progress: bool = True, log=print) -> dict:
    """Run the config's PathSolver convergence check once per scene, cached in the manifest.

    Each scene is checked on the grid and transmitter of its first planned sample
    (:func:`ckmsim.raytrace.convergence.check_convergence` with ``must_verify_rays`` = the config's
    ``path_samples``, so the match reached at the config's rays is measured against more rays). The manifest's
    ``convergence`` maps each scene to the report plus ``path_samples``, ``match_at_path_samples`` (per rank,
    all probes and NLoS) and, where the config uses fewer rays than the converged count (or the target was not
    reached), a ``warning``, which is also issued as a :class:`UserWarning`. A store resumed after an
    interruption keeps its recorded checks. Nothing runs without a ``[convergence]`` section or for a
    gain-only dataset.
    """
    from ckmsim.raytrace.convergence import check_convergence, probe_positions_m
    from ckmsim.raytrace.scene_setup import place_base_station

    if config.convergence is None or config.gain_only:
        return {}
    recorded = dict(store.manifest.get("convergence", {}))
    rays = int(config.ray_tracing.path_samples)
    for scene_name in config.scenes:
        task = next((t for t in tasks if t.scene == scene_name), None)
        if scene_name in recorded or task is None:
            continue
        scene = _scene(scene_name)
        grid = Grid.from_dict(task.grid)
        settings = replace(config.ray_tracing, seed=task.seed)
        place_base_station(scene, task.tx_position_m, settings)
        positions = probe_positions_m(scene, grid, config.convergence)
        log(f"convergence check of '{scene_name}' on sample {task.id}: {len(positions)} probe cells, rays "
            f"{', '.join(f'{r:.0e}' for r in config.convergence.ray_levels)} and the config's {rays:.0e}")
        report = check_convergence(scene, positions, settings, config.convergence, must_verify_rays=rays,
                                   progress=progress, log=log)
        at_config = report.level(rays)
        entry = {**report.to_dict(), "sample": task.id, "path_samples": rays,
                 "match_at_path_samples": at_config.match, "match_nlos_at_path_samples": at_config.match_nlos}
        log(report.table())
        log(report.summary())
        if report.converged_rays is None or rays < report.converged_rays:
            reached = " / ".join(f"{100 * m:.1f} %" for m in at_config.match)
            wanted = " / ".join(f"{100 * t:.0f} %" for t in config.convergence.target)
            where = (f"the target is reached at {report.converged_rays:.0e} rays" if report.converged_rays
                     else f"the target is not reached within {report.levels[-1].rays:.0e} rays")
            entry["warning"] = (f"'{scene_name}': path_samples = {rays:.0e} matches the strongest paths in {reached} "
                                f"of the probe cells (target {wanted}); {where}")
            log(f"warning: {entry['warning']}")
            warnings.warn(entry["warning"], UserWarning, stacklevel=2)
        recorded[scene_name] = entry
        store.update_header(convergence=recorded)
    return recorded


def open_or_create_store(out: Path, config: DatasetConfig, tasks: list[SampleTask]) -> DatasetStore:
    """Resume the store at ``out`` if it was made from ``config``; else create it."""
    if (out / "manifest.json").exists():
        store = DatasetStore.open(out, writable=True)
        if store.manifest.get("config") != config.to_dict():
            raise CkmsimError(f"'{out}' holds a dataset built from another config; choose a new folder to build "
                              f"this one (or rebuild with the config stored in {out / 'manifest.json'})")
        committed = [r["id"] for r in store.records]
        planned = [t.id for t in tasks[:len(committed)]]
        if committed != planned:
            raise CkmsimError(f"'{out}': committed samples do not match the plan of this config; the store "
                              f"cannot be resumed")
        return store
    header = {"name": config.name, "ckmsim_version": __version__, "config": config.to_dict(),
              "versions": _versions(), "num_planned": len(tasks),
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()}}
    return DatasetStore.create(out, header)


def _run(tasks: list[SampleTask], config: DatasetConfig, workers: int, ray_address: str | None):
    """Yield ``(arrays, record)`` for ``tasks`` in order, from the chosen executor."""
    if ray_address is not None:
        yield from _run_ray(tasks, config, workers, ray_address)
    elif workers == 1:
        for task in tasks:
            yield trace_sample(task, config)
    else:
        yield from _run_pool(tasks, config, workers)


def _run_pool(tasks, config: DatasetConfig, workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Dr.Jit uses every core per process; split them so workers do not oversubscribe the machine.
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from _in_order(tasks, lambda t: pool.submit(_trace_in_worker, t, config.to_dict(), threads),
                             lambda future: future.result(), 2 * workers)


def _run_ray(tasks, config: DatasetConfig, workers: int, ray_address: str):
    try:
        import ray
    except ImportError:
        raise CkmsimError("Ray is not installed: pip install 'ckmsim[ray]' (or drop --ray)") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if ray_address == "local" else ray_address, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=1)(_trace_in_worker)
    in_flight = max(workers, int(ray.cluster_resources().get("CPU", 1)))
    try:
        yield from _in_order(tasks, lambda t: remote.remote(t, config.to_dict(), None), ray.get, in_flight)
    finally:
        if started_here:
            ray.shutdown()


def _in_order(tasks, submit, result, window: int):
    """Submit up to ``window`` tasks ahead and yield their results in task order."""
    handles = {}
    next_submit = 0
    for position in range(len(tasks)):
        while next_submit < len(tasks) and next_submit < position + window:
            handles[next_submit] = submit(tasks[next_submit])
            next_submit += 1
        yield result(handles.pop(position))


def _versions() -> dict:
    out = {}
    for package in RECORDED_PACKAGES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _mitsuba_variant() -> str | None:
    import mitsuba as mi

    return mi.variant()


def task_summary(task: SampleTask) -> dict:
    """Plain-dict form of a task (for logs and tests)."""
    return asdict(task)
