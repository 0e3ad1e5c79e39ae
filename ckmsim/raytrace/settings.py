"""Ray-tracing settings: one validated record, stored with every map it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ckmsim.errors import CkmsimError


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

    def __post_init__(self):
        if not self.frequency_hz > 0:
            raise CkmsimError(f"frequency_hz must be > 0. Received: frequency_hz={self.frequency_hz}")
        for name in ("max_depth", "radio_map_samples", "path_samples", "max_num_paths_per_src",
                     "receivers_per_call"):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name == "max_depth" else 1):
                raise CkmsimError(f"RayTracingSettings.{name} must be a positive integer. Received: {name}={value}")

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
