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
FIGURE_NAMES = ("fig3", "fig4", "fig5")


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
        entry = _known_keys(entry, cls, where)
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
        claims = _known_keys(entry.get("claims"), CohortClaimsSpec, f"{where}: claims")
        entry["claims"] = CohortClaimsSpec(**claims)
        try:
            return cls(**entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err


def _known_keys(entry: Mapping[str, Any] | None, cls: type, where: str) -> dict[str, Any]:
    """Return ``entry`` as a dict; refuse keys that are not fields of the dataclass ``cls``."""
    entry = dict(entry or {})
    names = set(cls.__dataclass_fields__)
    unknown = sorted(set(entry) - names)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}"
        raise ValueError(msg)
    return entry


def _selection(entry: Any, where: str) -> dict[str, tuple[str, ...]]:
    """``{sample covariate: [values]}`` with the values as text (one value alone allowed)."""
    if not isinstance(entry, Mapping) or not entry:
        msg = f"{where}: give {{sample covariate: [values]}}, got {entry!r}"
        raise ValueError(msg)
    return {str(k): _names(v) for k, v in entry.items()}


#: Directions of an enrichment claim: the DE genes up in the cluster, down, or either.
ENRICHMENT_DIRECTIONS = ("up", "down", "either")


@dataclass(frozen=True)
class EnrichmentClaim:
    """A gene-set finding of Fig. 4f: a cluster of the selected samples calls one of the sets.

    ``samples``: ``{sample covariate: [values]}`` (e.g. ``{target: [HDAC]}``); the clusters
    checked are those in which the selected retained samples are the majority (or, when none
    is, the cluster holding most of them). ``gene_sets``: names in the GMT file; ``direction``:
    the enrichment of the cluster's up-regulated DE genes, down-regulated ones, or either.
    """

    samples: dict[str, tuple[str, ...]]
    gene_sets: tuple[str, ...]
    direction: str = "either"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gene_sets", _names(self.gene_sets))
        if not self.gene_sets:
            msg = "gene_sets must name at least one gene set"
            raise ValueError(msg)
        if self.direction not in ENRICHMENT_DIRECTIONS:
            msg = f"direction must be one of {list(ENRICHMENT_DIRECTIONS)}, got {self.direction!r}"
            raise ValueError(msg)


@dataclass(frozen=True)
class ScreenClaimsSpec:
    """The paper's Fig. 4 statements about the sample clusters, in the entry's terms.

    ``one_cluster``: sample selections (``{covariate: [values]}``, e.g. all doses of
    trametinib) whose retained samples should fall into one cluster; ``mostly``: selections
    (e.g. ``{target: [HDAC]}``) whose retained samples should lie in clusters made mostly of
    them; ``enriched``: gene-set findings (:class:`EnrichmentClaim`).
    """

    one_cluster: tuple[dict[str, tuple[str, ...]], ...] = ()
    mostly: tuple[dict[str, tuple[str, ...]], ...] = ()
    enriched: tuple[EnrichmentClaim, ...] = ()

    @classmethod
    def parse(cls, entry: Mapping[str, Any] | None, where: str) -> ScreenClaimsSpec:
        """Parse ``{one_cluster: [...], mostly: [...], enriched: [...]}``."""
        entry = _known_keys(entry, cls, where)
        enriched = []
        for i, item in enumerate(entry.get("enriched") or []):
            item = dict(item or {})
            try:
                enriched.append(
                    EnrichmentClaim(
                        _selection(item.get("samples"), f"{where}.enriched[{i}].samples"),
                        item.get("gene_sets"),
                        str(item.get("direction", "either")),
                    )
                )
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}.enriched[{i}]: {err}") from err
        return cls(
            one_cluster=tuple(
                _selection(s, f"{where}.one_cluster[{i}]")
                for i, s in enumerate(entry.get("one_cluster") or [])
            ),
            mostly=tuple(
                _selection(s, f"{where}.mostly[{i}]")
                for i, s in enumerate(entry.get("mostly") or [])
            ),
            enriched=tuple(enriched),
        )

    @property
    def covariates(self) -> set[str]:
        """The sample covariates the claims select on."""
        selections = [*self.one_cluster, *self.mostly, *(e.samples for e in self.enriched)]
        return {c for s in selections for c in s}


@dataclass(frozen=True)
class CmapSpec:
    """The Connectivity Map ground truth of Fig. 4d: iLINCS L1000 exports (registry keys).

    ``signatures`` and ``metadata``: the signature and signature-metadata files of the cell line
    (download-registry keys, e.g. ``l1000/A549_sig_batch_1.xls``); ``dose``: the dose whose
    samples are scored (the paper's highest, 10,000 nM); ``min_ratio`` and ``exclude``: the
    matching of perturbagen names to the screen's drugs; ``resolution``: Leiden on the
    signatures' similarity graph.
    """

    signatures: tuple[str, ...]
    metadata: tuple[str, ...]
    dose: str = "10000"
    min_ratio: float = 0.9
    exclude: tuple[str, ...] = ("Estradiol", "sirolimus", "YC1")
    resolution: float = 0.9

    def __post_init__(self) -> None:
        for name in ("signatures", "metadata", "exclude"):
            object.__setattr__(self, name, _names(getattr(self, name)))
        object.__setattr__(self, "dose", str(self.dose))
        if not self.signatures or not self.metadata:
            msg = "cmap needs signatures and metadata files (download-registry keys)"
            raise ValueError(msg)
        if not 0 < self.min_ratio <= 1 or self.resolution <= 0:
            msg = "cmap: min_ratio must lie in (0, 1] and resolution be > 0"
            raise ValueError(msg)

    @property
    def resources(self) -> tuple[str, ...]:
        """Every registry key the ground truth reads."""
        return (*self.signatures, *self.metadata)


@dataclass(frozen=True)
class ScreenDESpec:
    """DE of each sample cluster against the reference (Fig. 4f) and the DE gene sets.

    MrVI's multivariate DE with the clusters as one covariate, fitted on the retained samples
    and the reference, each cluster's contrast against the reference; LFCs averaged over at most
    ``max_cells`` cells (a seeded subsample). DE genes: mean LFC (log2) beyond ``min_lfc`` in
    either direction, the ``max_genes`` strongest per direction, tested for over-representation
    in each gene set of ``min_size`` to ``max_size`` genes among the model's genes.
    """

    mc_samples: int = 20
    max_cells: int = 10_000
    admissibility: bool = True
    min_lfc: float = 0.5
    max_genes: int = 200
    min_size: int = 5
    max_size: int = 500

    def __post_init__(self) -> None:
        if min(self.mc_samples, self.max_cells, self.max_genes) < 1:
            msg = "mc_samples, max_cells and max_genes must be >= 1"
            raise ValueError(msg)
        if self.min_lfc < 0 or not 1 <= self.min_size <= self.max_size:
            msg = "need min_lfc >= 0 and 1 <= min_size <= max_size"
            raise ValueError(msg)


@dataclass(frozen=True)
class Fig4Spec:
    """Settings of the perturbation-screen figure (the paper's Fig. 4 and Extended Data Figs. 2-4).

    Attributes
    ----------
    reference
        The control sample every effect is measured from (``Vehicle_0``).
    product, dose, pathway
        Sample covariates: the drug (intra-drug percentile, claims), its dose, and the pathway
        colouring panel a and annotating the matrices.
    phase
        ``obs`` column of the cell-cycle phase (panels a-c).
    top_fraction
        Share of the samples, by distance to the reference, kept as "retained" (the paper's top
        20 %, 74 of 368): opaque in panel a, the matrix of panel e, the clusters and their DE.
    n_clusters
        Ward clusters of the retained samples' mean distance matrix (panel e).
    annotations
        More sample covariates annotating the matrices (besides pathway and dose).
    cmap
        The Connectivity Map ground truth (:class:`CmapSpec`; ``None``: no CMap data for this
        cell line, the silhouette is not computed, as for K562 in the paper).
    de
        DE of the clusters against the reference (:class:`ScreenDESpec`).
    gene_sets
        Download-registry key of the GMT of panel f (``None``: no enrichment).
    n_permutations
        Permutations of MrVI's matrix for the random baseline of panel d (the paper's 100).
    label
        The figure's name in titles and the report (``Fig. 4``, ``Extended Data Fig. 3``).
    claims
        The paper's statements to check (:class:`ScreenClaimsSpec`).
    max_points
        Cells drawn in an embedding at most.
    """

    reference: str
    product: str
    dose: str
    pathway: str
    phase: str = "phase"
    top_fraction: float = 0.2
    n_clusters: int = 8
    annotations: tuple[str, ...] = ()
    cmap: CmapSpec | None = None
    de: ScreenDESpec = field(default_factory=ScreenDESpec)
    gene_sets: str | None = None
    n_permutations: int = 100
    label: str = "Fig. 4"
    claims: ScreenClaimsSpec = field(default_factory=ScreenClaimsSpec)
    max_points: int = 100_000

    def __post_init__(self) -> None:
        if not 0 < self.top_fraction <= 1:
            msg = f"top_fraction must lie in (0, 1] (got {self.top_fraction})"
            raise ValueError(msg)
        if self.n_clusters < 2 or self.n_permutations < 1 or self.max_points < 100:
            msg = "need n_clusters >= 2, n_permutations >= 1 and max_points >= 100"
            raise ValueError(msg)

    @property
    def sample_columns(self) -> tuple[str, ...]:
        """Every sample covariate the figure and its claims read."""
        return tuple(
            dict.fromkeys(
                [self.product, self.dose, self.pathway, *self.annotations, *self.claims.covariates]
            )
        )

    @classmethod
    def parse(
        cls, entry: Mapping[str, Any] | None, where: str, *, sample_covariates: Sequence[str]
    ) -> Fig4Spec:
        """Parse the ``fig4`` settings and check every sample covariate they name.

        Raises
        ------
        ValueError
            Naming the setting and what the entry offers instead.
        """
        entry = _known_keys(entry, cls, where)
        for key in ("reference", "product", "dose", "pathway"):
            if entry.get(key) is None:
                msg = f"{where}: set {key!r} (no default)"
                raise ValueError(msg)
            entry[key] = str(entry[key])
        entry["annotations"] = _names(entry.get("annotations"))
        try:
            entry["claims"] = ScreenClaimsSpec.parse(entry.get("claims"), f"{where}.claims")
            if entry.get("cmap") is not None:
                entry["cmap"] = CmapSpec(**dict(entry["cmap"]))
            entry["de"] = ScreenDESpec(**dict(entry.get("de") or {}))
            spec = cls(**entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err
        bad = [c for c in spec.sample_columns if c not in sample_covariates]
        if bad:
            msg = f"{where}: {bad} not among the sample_covariates {list(sample_covariates)}"
            raise ValueError(msg)
        return spec


@dataclass(frozen=True)
class StenosisClaimsSpec:
    """The paper's Fig. 5 statements to check, in terms of the entry's labels and genes.

    ``fewer_in_a`` / ``more_in_a``: cell labels the paper finds depleted / enriched in group
    ``a`` of the DA comparison (fewer lymphatic and LTC4S+ endothelial cells, more ADAMDEC1+
    fibroblasts in B2, Fig. 5c); ``strongest``: the label whose cells carry the strongest effect
    of the DE comparison's contrast (a small HIGD1B+STEAP4+ pericyte population, Fig. 5a,
    Extended Data Fig. 6c); ``up_in_a``: genes up in ``a`` in the analysed cells (CDH11, Fig. 5d-e);
    ``unique_to_strongest``: genes up in ``a`` more in the ``strongest`` label than in any other
    analysed label (LUM, TGFBI, Fig. 5e).
    """

    fewer_in_a: tuple[str, ...] = ()
    more_in_a: tuple[str, ...] = ()
    strongest: str | None = None
    up_in_a: tuple[str, ...] = ()
    unique_to_strongest: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("fewer_in_a", "more_in_a", "up_in_a", "unique_to_strongest"):
            object.__setattr__(self, name, _names(getattr(self, name)))
        if self.strongest is not None:
            object.__setattr__(self, "strongest", str(self.strongest))


@dataclass(frozen=True)
class SubclusterMarkersSpec:
    """Which analysed labels Extended Data Fig. 7b ranks marker genes of, and how many.

    ``match``: labels of the analysed cells whose name contains it (case-insensitive; the
    endothelial subclusters: ``endothelial``); ``exclude``: minus those containing any of these
    (``lymphatic``: the paper left lymphatic endothelial cells out); ``n_markers``: top genes per
    label (the paper's 3); ``max_cells``: cells per label ranked at most (a seeded subsample
    above, which keeps the Wilcoxon test's time and memory bounded at the atlas's size).
    """

    match: str
    exclude: tuple[str, ...] = ()
    n_markers: int = 3
    max_cells: int = 2_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", str(self.match))
        object.__setattr__(self, "exclude", _names(self.exclude))
        if not self.match.strip():
            msg = "subclusters.match must name a part of the labels (e.g. endothelial)"
            raise ValueError(msg)
        if self.n_markers < 1 or self.max_cells < 10:
            msg = (
                f"subclusters: n_markers must be at least 1 and max_cells at least 10 "
                f"(got {self.n_markers}, {self.max_cells})"
            )
            raise ValueError(msg)

    def chosen(self, labels: Sequence[str]) -> list[str]:
        """Return the labels of ``labels`` that match and are not excluded, in order, once each."""
        out = []
        for label in dict.fromkeys(str(x) for x in labels):
            name = label.lower()
            if self.match.lower() in name and not any(e.lower() in name for e in self.exclude):
                out.append(label)
        return out


@dataclass(frozen=True)
class Fig5Spec:
    """Settings of the disease-behaviour figure (the paper's Fig. 5, Extended Data Figs. 5-7).

    Panels b-f and Extended Data Figs. 6-7 show the cells of the DE comparison ``de`` (the
    stromal cells) on the u UMAP of all cells.

    Attributes
    ----------
    collection
        Sample covariate of the tissue-collection method (``procedure``; panel a).
    de
        The DE comparison of panels e-f (B2 vs B1 in stromal cells, its per-cell LFCs).
    da
        The DA comparison of panel c and Extended Data Fig. 7c (same cells as ``de``).
    effects
        Covariates of ``analysis.de.contrasts`` whose per-cell effect sizes (squared norm of
        beta) colour panel a (inflammation, behaviour); default: every reported contrast.
    coarse
        Coarse label -> ``{obs column: [values]}`` (panel a's colours; e.g. ``Stromal: {bundle:
        [CO_STR, TI_STR]}``); cells matching none are "other". Empty: the ``labels_key``.
    inflammation
        Sample covariate splitting Extended Data Fig. 7a's violins (``Type``); ``None``: none.
    expression_gene
        Gene of panel d (CDH11), expression library-size normalised and log1p.
    lfc_genes
        Genes of panel e's LFC violins (default: the 6 with the largest mean |LFC|).
    umap_genes
        Genes whose per-cell LFCs panel f draws on the UMAP (default: the two largest mean LFCs);
        ``more_umap_genes``: those of Extended Data Fig. 6e.
    markers
        Genes of Extended Data Fig. 6d (markers of the endothelial-to-mesenchymal transition).
    focus
        The label of Extended Data Fig. 7a (HIGD1B+STEAP4+ pericytes; default
        ``claims.strongest``); ``focus_genes``: its genes (default ``lfc_genes``).
    subclusters
        The labels whose top marker genes Extended Data Fig. 7b shows as a dot plot
        (:class:`SubclusterMarkersSpec`); ``None``: that panel says it is not set.
    claims
        The paper's statements to check (:class:`StenosisClaimsSpec`).
    max_points
        Cells drawn in an embedding at most (a seeded subsample above; titles say so).
    """

    collection: str
    de: str
    da: str
    effects: tuple[str, ...] = ()
    coarse: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    inflammation: str | None = None
    expression_gene: str | None = None
    lfc_genes: tuple[str, ...] = ()
    umap_genes: tuple[str, ...] = ()
    more_umap_genes: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    focus: str | None = None
    focus_genes: tuple[str, ...] = ()
    subclusters: SubclusterMarkersSpec | None = None
    claims: StenosisClaimsSpec = field(default_factory=StenosisClaimsSpec)
    max_points: int = 100_000

    def __post_init__(self) -> None:
        if self.max_points < 100:
            msg = f"max_points must be at least 100 (got {self.max_points})"
            raise ValueError(msg)

    @property
    def genes(self) -> tuple[str, ...]:
        """Every gene the figure names (LFCs and expression are read for these only)."""
        named = [
            *([self.expression_gene] if self.expression_gene else []),
            *self.lfc_genes,
            *self.umap_genes,
            *self.more_umap_genes,
            *self.markers,
            *self.focus_genes,
            *self.claims.up_in_a,
            *self.claims.unique_to_strongest,
        ]
        return tuple(dict.fromkeys(named))

    @classmethod
    def parse(
        cls,
        entry: Mapping[str, Any] | None,
        where: str,
        *,
        sample_covariates: Sequence[str],
        de: Sequence[str],
        da: Sequence[str],
        effects: Sequence[str],
    ) -> Fig5Spec:
        """Parse the ``fig5`` settings, filling defaults from the entry and checking every name.

        Parameters
        ----------
        entry
            The settings (``None``: all defaults).
        where
            Where the settings are, for messages.
        sample_covariates
            The entry's sample covariates.
        de, da
            Names of its DE and DA comparisons.
        effects
            The covariates of its ``analysis.de.contrasts``.

        Raises
        ------
        ValueError
            Naming the setting and what the entry offers instead.
        """
        entry = _known_keys(entry, cls, where)
        defaults = {
            "de": de[0] if de else None,
            "da": da[0] if da else None,
            "effects": list(dict.fromkeys(effects)),
        }
        for key, default in defaults.items():
            if entry.get(key) is None or (key == "effects" and not entry[key]):
                if default is None or (key == "effects" and not default):
                    msg = f"{where}: set {key!r} (the entry offers no default for it)"
                    if key == "effects":
                        msg = f"{where}: needs analysis.de.contrasts (panel a's effect sizes)"
                    raise ValueError(msg)
                entry[key] = default
        if entry.get("collection") is None:
            msg = (
                f"{where}: set 'collection' (the sample covariate of the tissue-collection method)"
            )
            raise ValueError(msg)
        for key in ("effects", "lfc_genes", "umap_genes", "more_umap_genes", "markers"):
            entry[key] = _names(entry.get(key))
        entry["focus_genes"] = _names(entry.get("focus_genes"))
        coarse = entry.get("coarse") or {}
        if not isinstance(coarse, Mapping):
            msg = f"{where}: coarse must map a coarse label to {{obs column: [values]}}"
            raise ValueError(msg)
        entry["coarse"] = {str(k): _selection(v, f"{where}.coarse.{k}") for k, v in coarse.items()}
        claims = _known_keys(entry.get("claims"), StenosisClaimsSpec, f"{where}: claims")
        try:
            entry["claims"] = StenosisClaimsSpec(**claims)
            if entry.get("subclusters") is not None:
                sub = entry["subclusters"]
                if not isinstance(sub, Mapping):
                    msg = "subclusters must be {match: ..., exclude: [...], n_markers: ...}"
                    raise ValueError(msg)
                sub = _known_keys(sub, SubclusterMarkersSpec, f"{where}: subclusters")
                entry["subclusters"] = SubclusterMarkersSpec(**sub)
            for key in ("collection", "de", "da", "inflammation", "expression_gene", "focus"):
                if entry.get(key) is not None:
                    entry[key] = str(entry[key])
            if entry.get("focus") is None:
                entry["focus"] = entry["claims"].strongest
            spec = cls(**entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err
        checks = [
            ("collection", [spec.collection], list(sample_covariates), "the sample_covariates"),
            ("inflammation", [spec.inflammation] if spec.inflammation else [],
             list(sample_covariates), "the sample_covariates"),
            ("de", [spec.de], list(de), "the DE comparisons"),
            ("da", [spec.da], list(da), "the DA comparisons"),
            ("effects", list(spec.effects), list(effects), "the analysis.de.contrasts covariates"),
        ]  # fmt: skip
        for key, chosen, allowed, what in checks:
            bad = [c for c in chosen if c not in allowed]
            if bad:
                msg = f"{where}: {key} {bad} not among {what} {allowed}"
                raise ValueError(msg)
        return spec


@dataclass(frozen=True)
class FiguresSpec:
    """The figures a dataset entry asks for (``None``: not asked)."""

    fig3: Fig3Spec | None = None
    fig4: Fig4Spec | None = None
    fig5: Fig5Spec | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the figures asked for."""
        return tuple(n for n in FIGURE_NAMES if getattr(self, n) is not None)

    def require(self, name: str, dataset: str) -> Any:
        """Return figure ``name``'s settings; a ValueError when dataset ``dataset`` does not ask."""
        settings = getattr(self, name, None) if name in FIGURE_NAMES else None
        if settings is None:
            msg = (
                f"dataset {dataset!r} does not ask for {name}: add `figures: {{{name}: ...}}` "
                "to its entry"
            )
            raise ValueError(msg)
        return settings

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
