"""One study (ckmsim.eval.study) on the tiny quickstart's area: ground-truth cache, pilots paid, timings,
config checks. The results.json schema and the score bounds are in test_quickstart.py."""

import json
import shutil
from dataclasses import replace

import pytest

from ckmsim.errors import CkmsimError
from ckmsim.eval import study
from ckmsim.eval.study import StudyConfig, run_study


def _canonical(value) -> str:
    """JSON text of a results fragment: compares NaN equal to NaN, unlike ``==`` on floats."""
    return json.dumps(value, sort_keys=True)


def _quiet(*args):
    pass


@pytest.mark.raytrace
def test_rerun_loads_ground_truth_from_cache(tiny_quickstart, tiny_quickstart_config):
    first, out = tiny_quickstart
    assert first["timings_s"]["ground_truth_from_cache"] is False
    second = run_study(tiny_quickstart_config(out), progress=False, log=_quiet).results
    assert second["timings_s"]["ground_truth_from_cache"] is True
    assert _canonical(second["methods"]) == _canonical(first["methods"])
    assert _canonical(second["references"]) == _canonical(first["references"])


@pytest.mark.raytrace
def test_a_declared_pilot_overhead_is_paid_by_every_rate(tiny_quickstart, tiny_quickstart_config, tmp_path,
                                                         monkeypatch):
    """A method declaring rho = 0.125 (LAD-CKM's partial pilots) earns exactly 0.875 times the same method's
    rates with rho = 0; its map scores and margin are unchanged."""
    from ckmsim.baselines.interpolation import Bilinear

    class PilotBilinear(Bilinear):
        name = "pilot_bilinear"
        downlink_pilot_overhead = 0.125

    _, out = tiny_quickstart
    shutil.copytree(out / "ground_truth", tmp_path / "ground_truth")
    monkeypatch.setitem(study.STUDY_METHODS, "pilot_bilinear", PilotBilinear)
    config = replace(tiny_quickstart_config(tmp_path), methods=("bilinear", "pilot_bilinear"), factors=(2,))
    results = run_study(config, progress=False, log=_quiet).results
    assert results["timings_s"]["ground_truth_from_cache"] is True
    free, charged = (next(r for r in results["methods"] if r["name"] == name) for name in ("bilinear", "pilot_bilinear"))
    assert charged["downlink_pilot_overhead"] == 0.125
    assert _canonical(charged["map"]) == _canonical(free["map"])
    for key in ("rate", "rate_precoding", "rate_adaptation", "rate_csi_beamforming"):
        for entry, reference in ((charged[key], free[key]), (charged[key]["all_test_ues"], free[key]["all_test_ues"])):
            assert entry["mean_bps_hz"] == pytest.approx(0.875 * reference["mean_bps_hz"], rel=1e-12), key
    assert charged["rate_adaptation"]["margin_db"] == free["rate_adaptation"]["margin_db"]


@pytest.mark.raytrace
def test_written_total_time_covers_every_step(tiny_quickstart):
    """results.json and report.md state the whole run's time: the figures' time is in the total."""
    results, out = tiny_quickstart
    timings = json.loads((out / "results.json").read_text())["timings_s"]
    assert timings == results["timings_s"]
    steps = ("ground_truth", "link_setup", "methods_and_scores", "outputs")
    assert all(timings[step] > 0 for step in steps)
    assert timings["total"] >= sum(timings[step] for step in steps)
    assert f"total {timings['total']:.1f} s." in (out / "report.md").read_text()


# The other settings' checks are reached through ckmsim evaluate (test_evaluate.py).
def test_a_study_without_a_task_is_refused(tmp_path):
    with pytest.raises(CkmsimError, match="no task"):
        StudyConfig(scene="simple_street_canyon", out=str(tmp_path))


def test_a_study_needs_a_whole_number_of_map_paths(tmp_path):
    with pytest.raises(CkmsimError, match=r"num_map_paths must be an integer >= 1. Received: num_map_paths=0"):
        StudyConfig(scene="simple_street_canyon", out=str(tmp_path), num_map_paths=0,
                    tasks=({"steps": [{"kind": "subsample", "factor": 2}]},))


@pytest.mark.raytrace
def test_methods_stage_has_a_progress_bar_and_keeps_its_log(tiny_quickstart, tiny_quickstart_config, tmp_path,
                                                            capsys):
    """With progress on, a bar counts the (task, method) pairs on stderr and each method's log line is
    printed once on stdout, above it."""
    _, out = tiny_quickstart
    shutil.copytree(out / "ground_truth", tmp_path / "ground_truth")
    config = replace(tiny_quickstart_config(tmp_path), methods=("bilinear", "ls"), factors=(2, 4))
    run_study(config, progress=True)
    captured = capsys.readouterr()
    assert "methods: 100%" in captured.err and "4/4" in captured.err
    for task in ("sr_x2", "sr_x4"):
        for name in ("bilinear", "ls"):
            lines = [line for line in captured.out.splitlines() if line.startswith(f"  {task:6s} {name:16s} gain RMSE")]
            assert len(lines) == 1, (task, name, captured.out)


def test_register_method_adds_a_users_method_and_guards_shipped_names(monkeypatch):
    """A registered factory is what a study config accepts and builds by that name; a shipped name, an
    empty name and a non-callable are refused with the reason."""
    from ckmsim.baselines.interpolation import Bilinear

    class Mine(Bilinear):
        name = "mine"

    monkeypatch.setattr(study, "STUDY_METHODS", dict(study.STUDY_METHODS))
    with pytest.raises(CkmsimError, match="Unknown method"):
        study.StudySettings(methods=("mine",))
    study.register_method("mine", Mine)
    assert isinstance(study.STUDY_METHODS["mine"](), Mine)
    assert study.StudySettings(methods=("bilinear", "mine")).methods == ("bilinear", "mine")
    with pytest.raises(CkmsimError, match="already a study method"):
        study.register_method("bicubic", Mine)
    study.register_method("bicubic", Mine, replace=True)
    assert isinstance(study.STUDY_METHODS["bicubic"](), Mine)
    with pytest.raises(CkmsimError, match="non-empty"):
        study.register_method(" ", Mine)
    with pytest.raises(CkmsimError, match="factory"):
        study.register_method("other", Mine())
