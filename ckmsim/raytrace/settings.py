"""Ray-tracing settings: one validated record, stored with every map it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_fraction, is_whole_number

#: Values of ``RayTracingSettings.path_solver``.
PATH_SOLVERS = ("standard", "pooled")


@dataclass(frozen=True)
class RayTracingSettings:
    """Settings for Sionna RT's RadioMapSolver and PathSolver.

    Parameters
    ----------
    frequency_hz : float
        Carrier frequency [Hz].
    max_depth : int
        Maximum number of interactions per path.
    diffraction, edge_diffraction : bool
        Wedge and edge diffraction (Sionna RT 1.2). Without them about a quarter of the street cells of
        ``munich`` at depth 3 receive no path at all.
    radio_map_samples : int
        Rays launched by the RadioMapSolver for the channel-gain map.
    path_samples : int
        Rays launched per source by the PathSolver for the per-cell path lists.
    max_num_paths_per_src : int
        PathSolver's path budget per source; Sionna silently drops paths beyond it, hence the high default.
    receivers_per_call : int
        Receivers per PathSolver call. Fixed so that Dr.Jit compiles its kernels once and reuses them.
    seed : int
        Seed of both solvers' ray sampling.
    deterministic_radio_map : bool
        Run the RadioMapSolver on one CPU thread. With diffraction on, Sionna RT 1.2's RadioMapSolver gives
        different maps for the same seed when Dr.Jit's LLVM backend runs several threads (NVlabs/sionna
        #1071; measured here: up to 126 dB on single cells of an 8x8 map at 1e5 rays), which breaks
        reproducible datasets. One thread is exact; the map is the cheap part of a sample. No effect on CUDA.
    diffraction_sampling_probability : float in [0, 1]
        Share of the PathSolver's rays that hit a surface near a diffracting edge and are turned into a
        diffraction there (Sionna RT 1.2.2's ``SBCandidateGenerator.DIFFRACTION_SAMPLING_PROBABILITY``,
        0.2 by default; set for each call and restored, see :func:`ckmsim.raytrace.paths.diffraction_sampling`).
        Only which candidates are found depends on it, not the field of a found path.
    candidate_hash_slots : int
        Minimum slots of each of the PathSolver's two tables of seen candidate chains (Sionna RT 1.2.2's
        ``SBCandidateGenerator.MIN_SPEC_COUNT_SIZE``, 1e6; the tables have ``max(max_num_paths_per_src, this)``
        slots, 4 bytes each). A new chain whose slot is taken is silently dropped: on munich at 1e5 rays and
        512 UEs per call the 1e7 slots Sionna would use lost a chain's slot often enough that 1.0 % of the
        strongest and 3.8 % of the second paths went missing; 1e8 slots (800 MB) lost none of them, for 15 %
        more time. Fewer UEs per call help too (32 per call lost none either) but cost 2-3x the time.
    path_solver : {"standard", "pooled"}
        How per-cell paths are traced. ``"standard"``: Sionna RT's PathSolver for every UE.
        ``"pooled"`` (:mod:`ckmsim.raytrace.pooling`, sionna-rt 1.2.2 only): shoot-and-bounce for one probe
        cell per ``pool_stride x pool_stride`` block, each probe's candidate chains validated exactly (image
        method + field calculator) for the cells within ``pool_radius`` of it, LoS for every cell. It needs
        the UEs' grid cells (``trace_paths(..., cells=...)``); UE sets without cells (CSI drops, probe
        subsets) use the standard solver. Default ``"pooled"``, because it wins where it applies
        (``benchmarks/bench_pooled_paths.py``, munich 64 x 64, 2457 open cells, depth 3 with diffraction,
        against a union reference, one run on the shared 2-core machine): at the default 1e5 rays,
        ``pool_stride=3, pool_radius=2, pool_seeds=4`` took 14 s against 37 s and found the strongest
        path in 86.5 % of cells (NLoS 72.7 %) against 83.9 % (67.5 %), the second in 81.8 % against 79.0 %;
        at 3e5 rays 16 s against 84 s (CPU 28 s against 100 s), 88.2 % against 85.5 %.
    pool_stride : int
        Probe spacing of the pooled solver [cells], >= 1.
    pool_radius : int
        Chebyshev radius [cells], >= 0, within which a probe's chains are tried; ``pool_stride = 1`` with
        ``pool_radius = 0`` and ``pool_seeds = 1`` is the standard solver less its duplicate paths.
    pool_seeds : {1, 2, 4}
        Seeds of the pooled solver's probes (``seed``, ``seed + 1``, ...), laid out so that neighbouring probes
        differ (:func:`ckmsim.raytrace.pooling.probe_seed_groups`): a cell pools independent ray samplings at
        the cost of one.
    """

    frequency_hz: float = 28e9
    max_depth: int = 3
    diffraction: bool = True
    edge_diffraction: bool = True
    radio_map_samples: int = 10**7
    path_samples: int = 10**5
    max_num_paths_per_src: int = 10**7
    receivers_per_call: int = 512
    seed: int = 42
    deterministic_radio_map: bool = True
    diffraction_sampling_probability: float = 0.2
    candidate_hash_slots: int = 10**8
    path_solver: str = "pooled"
    pool_stride: int = 3
    pool_radius: int = 2
    pool_seeds: int = 4

    def __post_init__(self):
        if not self.frequency_hz > 0:
            raise CkmsimError(f"frequency_hz must be > 0. Received: frequency_hz={self.frequency_hz}")
        for name in ("max_depth", "radio_map_samples", "path_samples", "max_num_paths_per_src",
                     "receivers_per_call", "candidate_hash_slots"):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name == "max_depth" else 1):
                raise CkmsimError(f"RayTracingSettings.{name} must be a positive integer. Received: {name}={value}")
        check_fraction(self.diffraction_sampling_probability, "RayTracingSettings.diffraction_sampling_probability")
        if self.path_solver not in PATH_SOLVERS:
            raise CkmsimError(f"RayTracingSettings.path_solver must be one of {PATH_SOLVERS}. "
                              f"Received: path_solver={self.path_solver!r}")
        for name, minimum in (("pool_stride", 1), ("pool_radius", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not is_whole_number(value, minimum=minimum):
                raise CkmsimError(f"RayTracingSettings.{name} must be an integer >= {minimum}. Received: {name}={value!r}")
        if isinstance(self.pool_seeds, bool) or self.pool_seeds not in (1, 2, 4):
            raise CkmsimError(f"RayTracingSettings.pool_seeds must be 1, 2 or 4. Received: pool_seeds={self.pool_seeds!r}")

    def to_dict(self) -> dict:
        """Plain-dict form, for attrs and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RayTracingSettings":
        """Inverse of :meth:`to_dict`; unknown keys fail with their names."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise CkmsimError(f"Unknown ray-tracing setting(s) {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**values)
