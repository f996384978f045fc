"""The ``figures`` section of a dataset entry: which of the paper's figures to draw, and how.

A dataset entry asks for a figure by naming it (``figures: [fig3]``) or by naming it with
settings (``figures: {fig3: {condition: Status, case: Covid, ...}}``). The settings say which of
the entry's sample covariates and named comparisons each panel reads; omitted ones take defaults
from the entry (:meth:`Fig3Spec.parse`), so any multi-sample cohort with a derived sample-group
set and a DE comparison with gene modules gets the panels of the paper's Fig. 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Figures a dataset entry can ask for (the semi-synthetic Fig. 2 is drawn for every entry with a
#: ``semisynthetic`` section, without asking).
FIGURE_NAMES = ("fig3",)


def _names(values: Any) -> tuple[str, ...]:
    """Return a list of names (one name alone allowed) as a tuple of strings."""
    if values is None:
        return ()
    if isinstance(values, str | int | float):
        values = [values]
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class CohortClaimsSpec:
    """The paper's Fig. 3 statements to check, in terms of the entry's labels and genes.

    ``fewer_in_case``: cell labels the paper finds depleted in the cases (CD16 monocytes and DCs
    in COVID-19, Fig. 3e left); ``more_in_later_group``: labels found enriched in the case group
    with the later onset (CD16 monocytes, Fig. 3e right); ``early_module_genes``: genes of the
    module up in the case group with the earlier onset (the interferon module, Fig. 3f).
    """

    fewer_in_case: tuple[str, ...] = ()
    more_in_later_group: tuple[str, ...] = ()
    early_module_genes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("fewer_in_case", "more_in_later_group", "early_module_genes"):
            object.__setattr__(self, name, _names(getattr(self, name)))


@dataclass(frozen=True)
class Fig3Spec:
    """Settings of the cohort figure (the paper's Fig. 3, Extended Data Fig. 1, Supp. Figs. 3-4).

    Attributes
    ----------
    condition
        Two-valued sample covariate of the cases and controls (COVID-19 ``Status``): panel b's
        colour, an annotation of the distance matrices and the case groups.
    case, control
        Its values of the cases and the controls (``Covid``, ``Healthy``).
    sample_groups
        The ``comparisons.sample_groups`` set whose stratification cluster and donor groups
        panel d shows (the myeloid groups).
    onset
        Numeric sample covariate compared between the two largest case groups (days since
        symptom onset, Extended Data Fig. 1); one of the set's ``compare`` covariates.
    annotations
        Sample covariates annotating the rows of the distance matrices (age, onset, status,
        worst clinical status).
    da
        DA comparisons of panel e (each on the u embedding of its cells).
    de
        The DE comparison with gene modules of panel f.
    compartments
        Compartment name -> cell labels (``labels_key`` values): the Sankey's order and the
        claim that each compartment has its own stratification cluster.
    claims
        The paper's statements to check (:class:`CohortClaimsSpec`).
    max_points
        Cells drawn in an embedding at most (a seeded subsample above; the caption says so).
    """

    condition: str
    case: str
    control: str
    sample_groups: str
    onset: str
    annotations: tuple[str, ...]
    da: tuple[str, ...]
    de: str
    compartments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    claims: CohortClaimsSpec = field(default_factory=CohortClaimsSpec)
    max_points: int = 100_000

    def __post_init__(self) -> None:
        if self.max_points < 100:
            msg = f"max_points must be at least 100 (got {self.max_points})"
            raise ValueError(msg)
        if self.case == self.control:
            msg = f"case and control must differ (both {self.case!r})"
            raise ValueError(msg)

    @classmethod
    def parse(
        cls,
        entry: Mapping[str, Any] | None,
        where: str,
        *,
        sample_covariates: Sequence[str],
        sample_groups: Mapping[str, Sequence[str]],
        da: Sequence[str],
        de_with_modules: Sequence[str],
    ) -> Fig3Spec:
        """Parse the ``fig3`` settings, filling defaults from the entry and checking every name.

        Parameters
        ----------
        entry
            The settings (``None``: all defaults).
        where
            Where the settings are, for messages.
        sample_covariates
            The entry's sample covariates.
        sample_groups
            Its derived sample-group sets -> their ``compare`` covariates.
        da, de_with_modules
            Names of its DA comparisons, and of its DE comparisons with gene modules.

        Raises
        ------
        ValueError
            Naming the setting and what the entry offers instead.
        """
        entry = dict(entry or {})
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(entry) - names)
        if unknown:
            msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}"
            raise ValueError(msg)
        covariates = list(sample_covariates)
        if not sample_groups:
            msg = f"{where}: needs a comparisons.sample_groups set (panel d's donor groups)"
            raise ValueError(msg)
        group_set = str(entry.get("sample_groups", next(iter(sample_groups))))
        if group_set not in sample_groups:
            msg = f"{where}: sample_groups {group_set!r} is not among {sorted(sample_groups)}"
            raise ValueError(msg)
        compared = list(sample_groups[group_set])
        defaults = {
            "condition": covariates[0] if covariates else None,
            "onset": compared[0] if compared else None,
            "annotations": covariates[:4],
            "da": list(da),
            "de": de_with_modules[0] if de_with_modules else None,
        }
        for key, default in defaults.items():
            if entry.get(key) is None:
                if default is None:
                    msg = f"{where}: set {key!r} (the entry offers no default for it)"
                    raise ValueError(msg)
                entry[key] = default
        for key in ("case", "control"):
            if entry.get(key) is None:
                msg = f"{where}: set {key!r}: the value of {entry['condition']!r} of the {key}s"
                raise ValueError(msg)
            entry[key] = str(entry[key])
        entry["sample_groups"] = group_set
        entry["annotations"] = _names(entry["annotations"])
        entry["da"] = _names(entry["da"])
        checks = [
            ("condition", [entry["condition"]], covariates),
            ("onset", [entry["onset"]], compared),
            ("annotations", entry["annotations"], covariates),
            ("da", entry["da"], list(da)),
            ("de", [entry["de"]], list(de_with_modules)),
        ]
        for key, chosen, allowed in checks:
            bad = [c for c in chosen if c not in allowed]
            if bad:
                what = {
                    "onset": f"the compare covariates of sample_groups {group_set!r}",
                    "da": "the DA comparisons",
                    "de": "the DE comparisons with modules",
                }.get(key, "the sample_covariates")
                msg = f"{where}: {key} {bad} not among {what} {allowed}"
                raise ValueError(msg)
        compartments = entry.get("compartments") or {}
        entry["compartments"] = {str(k): _names(v) for k, v in dict(compartments).items()}
        claims = dict(entry.get("claims") or {})
        allowed_claims = set(CohortClaimsSpec.__dataclass_fields__)
        if set(claims) - allowed_claims:
            msg = (
                f"{where}: claims: unknown key(s) {sorted(set(claims) - allowed_claims)}; "
                f"allowed: {sorted(allowed_claims)}"
            )
            raise ValueError(msg)
        entry["claims"] = CohortClaimsSpec(**claims)
        try:
            return cls(**entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err


@dataclass(frozen=True)
class FiguresSpec:
    """The figures a dataset entry asks for (``None``: not asked)."""

    fig3: Fig3Spec | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the figures asked for."""
        return tuple(n for n in FIGURE_NAMES if getattr(self, n) is not None)

    @staticmethod
    def requested(entry: Any, where: str) -> dict[str, dict[str, Any]]:
        """Return the ``figures`` section as figure name -> settings (a list of names: no settings)."""
        if entry is None:
            return {}
        items = (
            {str(n): {} for n in entry}
            if isinstance(entry, list | tuple)
            else {str(k): dict(v or {}) for k, v in dict(entry).items()}
        )
        unknown = sorted(set(items) - set(FIGURE_NAMES))
        if unknown:
            msg = f"{where}: unknown figure(s) {unknown}; an entry can ask for {list(FIGURE_NAMES)}"
            raise ValueError(msg)
        return items
