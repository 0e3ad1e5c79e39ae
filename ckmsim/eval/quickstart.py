"""`ckmsim quickstart`: one scene, one BS, sparse sampling, classical reconstructions, map and link scores.

The quickstart is a config over :mod:`ckmsim.eval.study` (ground truth -> degradation -> methods -> map score
and link score -> ``results.json`` + ``report.md`` + figures): its defaults (munich, a 64 x 64 area of 2 m
cells, every method), its tasks given as uniform down-sampling factors, and its curated study areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.eval.study import StudyConfig, run_study, study_geometry, write_study_outputs
from ckmsim.maps.degrade import Degradation, Subsample

#: Curated study-area centres, used when they qualify (:func:`ckmsim.scene.study_area.pick_study_area`);
#: munich's keeps its published quickstart numbers comparable. Other scenes' areas are picked.
DEFAULT_CENTERS_M = {"munich": (8.5, 21.0)}


@dataclass(frozen=True)
class QuickstartConfig(StudyConfig):
    """Everything a quickstart run depends on: a :class:`~ckmsim.eval.study.StudyConfig` with the
    quickstart's defaults, stored in ``results.json``.

    ``tasks`` left empty: one uniform x``factor`` sampling task for each of ``factors``. ``center_m`` and
    ``bs_position_m`` left ``None``: the area is picked with ``DEFAULT_CENTERS_M`` as the preferred centre of
    its scene (unless ``preferred_center_m`` names another), and the BS stands above the area's centre.
    """

    scene: str = "munich"
    out: str = "ckmsim-out"
    factors: tuple[int, ...] = (2, 4)

    def __post_init__(self):
        if any(int(f) != f or f < 2 for f in self.factors):
            raise CkmsimError(f"Down-sampling factors must be integers >= 2. Received: factors={self.factors}")
        if self.preferred_center_m is None:
            # frozen: set once, here, as dataclasses do for derived fields
            object.__setattr__(self, "preferred_center_m", DEFAULT_CENTERS_M.get(self.scene))
        super().__post_init__()

    def degradations(self) -> list[Degradation]:
        """The tasks: the configured degradations, or uniform x``factor`` sampling for each factor."""
        if self.tasks:
            return super().degradations()
        return [Degradation([Subsample(int(factor))], seed=self.seed) for factor in self.factors]


#: The study geometry under the name tests/scene/test_study_area.py imports from here: with a
#: QuickstartConfig, the quickstart's area and BS of a scene.
_study_geometry = study_geometry


def run_quickstart(config: QuickstartConfig, progress: bool = True, log=print) -> dict:
    """Run the quickstart and write ``results.json``, ``report.md`` and figures into ``config.out``.

    Returns the results dictionary (the content of ``results.json``).
    """
    run = run_study(config, progress, log)
    out = Path(config.out)
    write_study_outputs(run, out, "ckmsim quickstart")
    log(f"wrote {out / 'results.json'}, {out / 'report.md'} and figures in {run.results['timings_s']['total']:.1f} s")
    return run.results
