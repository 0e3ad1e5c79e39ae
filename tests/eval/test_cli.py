"""The CLI: bad input ends in one line on stderr and exit code 2, before any ray is traced; help texts keep
their units and flags."""

import re

import pytest

import ckmsim.eval.study
from ckmsim.cli import main


@pytest.fixture(autouse=True)
def _no_ray_tracing(monkeypatch):
    """Every case here must fail before ray tracing; reaching the tracer fails the test instead."""
    def trace(*args, **kwargs):
        raise AssertionError("bad input reached ray tracing")

    monkeypatch.setattr(ckmsim.eval.study, "trace_ground_truth", trace)


def _run_failing(capsys, *args) -> str:
    """Run ``ckmsim quickstart ARGS`` in-process; assert exit code 2 and one error line; return it."""
    code = main(["quickstart", "--quiet", *args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ckmsim: error: ")
    return lines[0]


def test_unknown_scene_name(capsys, tmp_path):
    message = _run_failing(capsys, "--scene", "nowhere", "--out", str(tmp_path / "out"))
    assert "Unknown scene 'nowhere'" in message
    assert "simple_street_canyon" in message  # the built-in names are listed


def test_invalid_mitsuba_xml(capsys, tmp_path):
    xml = tmp_path / "bad.xml"
    xml.write_text("this is <not> Mitsuba <<<")
    message = _run_failing(capsys, "--scene", str(xml), "--out", str(tmp_path / "out"))
    assert f"Cannot load scene XML '{xml}'" in message


def test_mitsuba_xml_without_geometry(capsys, tmp_path):
    xml = tmp_path / "empty.xml"
    xml.write_text('<scene version="2.1.0"></scene>')
    message = _run_failing(capsys, "--scene", str(xml), "--out", str(tmp_path / "out"))
    assert "has no geometry" in message


def test_missing_xml_file(capsys, tmp_path):
    xml = tmp_path / "missing.xml"
    message = _run_failing(capsys, "--scene", str(xml), "--out", str(tmp_path / "out"))
    assert f"Scene file '{xml}' does not exist" in message


def test_grid_outside_scene(capsys, tmp_path):
    message = _run_failing(capsys, "--scene", "simple_street_canyon", "--center", "100000,0",
                           "--out", str(tmp_path / "out"))
    assert "falls outside scene 'simple_street_canyon'" in message


def test_unwritable_output_folder(capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    out = blocker / "out"
    message = _run_failing(capsys, "--scene", "simple_street_canyon", "--cells", "16", "--out", str(out))
    assert f"Output folder '{out}' cannot be written" in message


@pytest.mark.parametrize("option, value, count", [("--bs", "1,2", 3), ("--bs", "1,2,z", 3), ("--center", "5", 2)])
def test_malformed_coordinates(capsys, tmp_path, option, value, count):
    out = tmp_path / "out"
    message = _run_failing(capsys, "--scene", "simple_street_canyon", option, value, "--out", str(out))
    assert f"{option} expects {count} comma-separated numbers. Received: '{value}'" in message
    assert not out.exists()  # parsed before the run starts


def test_help_exits_zero(capsys):
    assert main(["quickstart", "--help"]) == 0
    assert "--scene" in capsys.readouterr().out


def test_scene_generate_writes_loadable_folder(capsys, tmp_path):
    from ckmsim.scene.load import load_scene

    assert main(["scene", "generate", "--out", str(tmp_path / "city"), "--seed", "1", "--size", "128"]) == 0
    assert "buildings, seed 1" in capsys.readouterr().out
    assert load_scene(str(tmp_path / "city" / "scene.xml")).objects


@pytest.mark.parametrize("network", ["esrresnet", "crossap", "ckmdiff", "pix2pix"])
def test_train_with_a_missing_config_is_one_line(capsys, tmp_path, network):
    code = main(["train", network, str(tmp_path / "none.toml")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "none.toml' does not exist" in err and len(err.strip().splitlines()) == 1


def test_scene_import_missing_file(capsys, tmp_path):
    code = main(["scene", "import", str(tmp_path / "none.osm"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "none.osm' does not exist" in err


def test_scene_preview_and_tiles(capsys, tmp_path):
    assert main(["scene", "generate", "--out", str(tmp_path / "city"), "--size", "128"]) == 0
    xml = str(tmp_path / "city" / "scene.xml")
    png = tmp_path / "preview.png"
    assert main(["scene", "preview", xml, "--out", str(png), "--cells", "64"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["scene", "tiles", xml, "--tile-cells", "16", "--cell-size", "2", "--min-open-fraction", "0"]) == 0
    assert "16 tile(s) of 16 x 16 cells" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- help texts
def _commands():
    """``(argv prefix, click command)`` of every command of the app, sub-commands included."""
    import typer

    from ckmsim.cli import app

    found, todo = [], [([], typer.main.get_command(app))]
    while todo:
        prefix, command = todo.pop()
        if hasattr(command, "commands"):  # a group (typer 0.29's TyperGroup is its own click-like class)
            todo += [(prefix + [name], sub) for name, sub in command.commands.items()]
        else:
            found.append((prefix, command))
    return found


COMMANDS = _commands()


def _help(capsys, argv) -> str:
    """The ``--help`` text of ``ckmsim ARGV``, whitespace runs (line wrapping) folded to one space."""
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_command_is_found():
    names = {" ".join(prefix) for prefix, _ in COMMANDS}
    assert {"quickstart", "evaluate", "scene import", "raytrace check", "dataset build", "train esrresnet"} <= names


@pytest.mark.parametrize("argv, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_keeps_bracketed_units(capsys, argv, command):
    """Every bracketed unit a help text declares ("[m]", "[dB]", "[0, 1]") is printed, not eaten as markup."""
    declared = [token for param in command.params for token in re.findall(r"\[[^\]]*\]", param.help or "")]
    shown = _help(capsys, argv)
    for token in declared:
        assert " ".join(token.split()) in shown, (argv, token)


def test_quickstart_help_shows_metre_units(capsys):
    shown = _help(capsys, ["quickstart"])
    assert "Cell size [m]." in shown
    assert "Study-area centre 'x,y' [m]" in shown


@pytest.mark.parametrize("argv, command", [(p, c) for p, c in COMMANDS if any(q.name == "quiet" for q in c.params)],
                         ids=[" ".join(p) for p, c in COMMANDS if any(q.name == "quiet" for q in c.params)])
def test_quiet_is_a_flag(capsys, argv, command):
    """``--quiet`` takes no value: the help lists it without a metavar, straight before its text."""
    quiet = next(param for param in command.params if param.name == "quiet")
    assert quiet.is_flag and quiet.opts == ["--quiet"] and not quiet.secondary_opts
    assert f"--quiet {' '.join(quiet.help.split())}" in _help(capsys, argv)


def test_quiet_does_not_swallow_the_next_option(capsys, tmp_path):
    """Given first, ``--quiet`` leaves ``--scene`` to be read as an option (an error on the scene name
    proves it was)."""
    code = main(["quickstart", "--quiet", "--scene", "nowhere", "--out", str(tmp_path / "out")])
    assert code == 2 and "Unknown scene 'nowhere'" in capsys.readouterr().err


def test_quickstart_help_names_every_method_it_runs(capsys):
    from ckmsim.eval.quickstart import QuickstartConfig

    shown = _help(capsys, ["quickstart"])
    methods = QuickstartConfig().methods
    assert len(methods) == 11
    for name in methods:
        assert re.search(rf"\b{name}\b", shown), name
    assert "classical methods" not in shown


def test_tensorflow_start_up_noise_is_dropped_and_every_other_line_kept():
    """TensorFlow's CUDA-registration lines (E0000 ... on a CPU machine) are dropped; with its own logging
    turned up, every other line a plain import prints still reaches stderr."""
    import os
    import subprocess
    import sys

    from ckmsim.native import TENSORFLOW_NOISE

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}

    def stderr(code: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        # "2026-12-04 04:26:40.271545: I tensorflow/...] text" -> "text": the time stamps differ between runs
        return [line.split("] ", 1)[-1] for line in done.stderr.splitlines() if line.strip()]

    plain = stderr("import ckmsim, tensorflow")
    quiet = stderr("import ckmsim; ckmsim.import_tensorflow()")
    assert not [line for line in quiet if TENSORFLOW_NOISE.search(line)]
    assert quiet == [line for line in plain if not TENSORFLOW_NOISE.search(line)]
