"""The docs site builds with warnings as errors and holds every page it promises.

``mkdocs build --strict`` (MkDocs Material, mkdocstrings for the API pages, mkdocs-jupyter for the stored
notebooks) runs in a subprocess into a temporary site folder, so that CI fails on a broken link, a missing
notebook or a docstring the API pages cannot render. About 15 s on 2 CPU cores.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("mkdocs_jupyter")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01-scene-to-rate", "02-your-own-method", "03-osm-and-procedural-cities", "04-link-level-study",
             "05-cross-ap-and-deployment", "06-learned-method-end-to-end", "07-ckmdiff", "08-ladckm")
GUIDE_PAGES = ("", "quickstart", "scenes", "datasets", "data-formats", "evaluate", "models", "contracts", "tutorials")
SUBPACKAGES = ("scene", "raytrace", "maps", "data", "baselines", "models", "link", "metrics", "eval", "train")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # not --quiet: it drops warnings below the log level, and --strict then counts none of them
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site_dir)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or [result.stderr[-3000:]])
    return site_dir


def _page(site: Path, path: str) -> str:
    page = site / path / "index.html"
    assert page.is_file(), f"{page.relative_to(site)} was not built"
    return page.read_text(encoding="utf-8")


def test_home_guide_and_contracts_pages(site):
    for path in GUIDE_PAGES:
        _page(site, path)
    contracts = _page(site, "contracts")
    for name in ("The CKM", "The Method", "The link score"):
        assert name in contracts


def test_every_method_card_is_built_and_listed_in_the_index(site):
    cards = sorted(p.stem for p in (ROOT / "docs" / "methods").glob("*.md") if p.stem != "index")
    assert len(cards) >= 20
    index = _page(site, "methods")
    for card in cards:
        page = _page(site, f"methods/{card}")
        for field in ("Paper", "Equations", "Inputs it may use", "Predicts", "Tasks", "Tests", "Measured scores"):
            assert field in page, f"card {card} lacks '{field}'"
        assert f'href="{card}/"' in index, f"card {card} is not in the methods index"


def test_every_notebook_is_rendered_and_the_runner_is_not(site):
    for name in NOTEBOOKS:
        page = _page(site, f"notebooks/{name}")
        assert "jp-Notebook" in page or "jupyter-wrapper" in page, f"notebook {name} was not rendered"
    assert not list(site.rglob("execute.py")), "the notebook runner was published"
    assert not list(site.rglob("make_cards.py")) and not list(site.rglob("griffe_ckmsim.py"))


def test_api_pages_document_the_contracts_from_the_docstrings(site):
    for name in SUBPACKAGES:
        _page(site, f"api/{name}")
    assert 'id="ckmsim.maps.ckm.make_ckm"' in _page(site, "api/maps")
    assert 'id="ckmsim.baselines.base.Method"' in _page(site, "api/baselines")
    link = _page(site, "api/link")
    assert 'id="ckmsim.link.score.RateScorer"' in link
    # Sionna-style "Input" blocks are rendered as parameters, with their shapes
    assert "[num_ue, num_subcarriers, num_ant]" in link


def test_method_cards_match_their_generator_and_the_stored_results():
    spec = importlib.util.spec_from_file_location("make_cards", ROOT / "docs" / "methods" / "make_cards.py")
    make_cards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_cards)
    import json
    results = json.loads(make_cards.QUICKSTART_JSON.read_text())
    for card in make_cards.CARDS:
        path = ROOT / "docs" / "methods" / f"{card['slug']}.md"
        assert path.read_text() == make_cards.render(card, results), \
            f"{path.name} differs from docs/methods/make_cards.py: run python docs/methods/make_cards.py"
    assert (ROOT / "docs" / "methods" / "index.md").read_text() == make_cards.index_page(make_cards.CARDS, results)
