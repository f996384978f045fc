"""Every caption of the Snakemake report, and its landing page, render without a docutils problem.

Snakemake renders each caption as a Jinja2 template (``snakemake``, ``categories`` and ``files`` in
its context), appends hyperlink targets of the report's panels, then runs docutils'
``publish_parts`` on it; a docutils warning or error (e.g. ``|x|`` read as an undefined
substitution) ends up as a red "System Message" box in the report. This test does the same on
every ``.rst`` file of ``workflow/report/`` with docutils set to raise on any warning, so no Snakemake
run is needed; ``test_workflow.py``'s tiny full run also builds the report and checks its HTML.
"""

from __future__ import annotations

import io
import textwrap
from types import SimpleNamespace

import pytest
from docutils.core import publish_parts
from docutils.utils import SystemMessage
from jinja2 import Environment

from mrvi_repro.settings.names import FIG2_PANELS, FIG3_PANELS, FIG4_PANELS, FIG5_PANELS

#: The hyperlink targets Snakemake appends to every caption (snakemake.report, Snakemake 9).
RST_LINKS = textwrap.dedent("""

    .. _Workflow: javascript:show_panel('workflow')
    .. _Statistics: javascript:show_panel('statistics')
    {% for cat, catresults in categories|dictsort %}
    .. _{{ cat.name }}: javascript:app.showCategory('{{ cat.name|urlencode }}')
    {% endfor %}
    {% for res in files %}
    .. _{{ res.target }}: javascript:app.showResultInfo('{{ res.path|urlencode }}')
    {% endfor %}
    """)


def render(text: str) -> str:
    """The HTML body of a caption, rendered as Snakemake does; raises on any docutils warning."""
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    snakemake = SimpleNamespace(
        config={"datasets": ["config/datasets/semisynthetic.yaml"]},
        wildcards=SimpleNamespace(dataset="semisynthetic"),
        rule="fig2_panels",
    )
    rst = env.from_string(text + RST_LINKS).render(snakemake=snakemake, categories={}, files=[])
    warnings = io.StringIO()
    parts = publish_parts(
        rst,
        writer="html",
        settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": warnings},
    )
    assert warnings.getvalue() == "", warnings.getvalue()
    return parts["html_body"]


def captions(repo):
    return sorted((repo / "workflow" / "report").glob("*.rst"))


def test_every_caption_renders_cleanly(repo):
    files = captions(repo)
    assert len(files) >= 14  # the panels, the metric tables, run time and the landing page
    for path in files:
        try:
            html = render(path.read_text())
        except SystemMessage as err:
            pytest.fail(f"{path.name}: {err}")
        assert "system-message" not in html, path.name


def test_a_bad_caption_is_caught():
    # the error the report showed before: |x| is a substitution reference in reStructuredText
    with pytest.raises(SystemMessage, match="Undefined substitution referenced"):
        render("ranked by |log ratio| per cell")
    assert "absolute" in render("ranked by the absolute log ratio per cell")


def test_every_report_item_has_a_caption(repo):
    """Each caption named in the rules exists, and each caption file is used."""
    names = {p.stem for p in captions(repo)}
    panels = set(FIG2_PANELS) | set(FIG3_PANELS) | set(FIG4_PANELS) | set(FIG5_PANELS)
    assert panels <= names
    rules = "".join(p.read_text() for p in (repo / "workflow" / "rules").glob("*.smk"))
    snakefile = (repo / "Snakefile").read_text()
    for path in captions(repo):
        if path.name == "workflow.rst":
            assert 'report: "workflow/report/workflow.rst"' in snakefile
        elif path.stem in panels:
            # one per panel of the Fig. 2, Fig. 3, Fig. 4 and Fig. 5 rules
            assert rules.count('caption=f"../report/{panel}.rst"') == 4
        else:
            assert f'"../report/{path.name}"' in rules, path.name
