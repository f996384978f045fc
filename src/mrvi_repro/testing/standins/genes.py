"""Gene symbols of the stand-ins' planted programs (real HGNC symbols, as the published files use).

The programs follow what the paper reports for each dataset (its Results on Figs. 3-5):
interferon-response genes up early in COVID-19 and MHC-II / TNF-NF-kB genes up later, in myeloid
cells; CDH11 and fibrosis / activation markers up in stromal cells of stenosing (B2) Crohn's disease,
with LUM, PDGFRB and TGFBI in HIGD1B+STEAP4+ pericytes only; the Tirosh et al. (2016) cell-cycle
genes for the sci-Plex phase. The membership is the stand-ins' choice, not a curated gene set.
"""

from __future__ import annotations

#: The cell-cycle genes of Tirosh et al. 2016 in the order of ``regev_lab_cell_cycle_genes.txt``
#: (scanpy_usage 180209_cell_cycle): 43 S-phase genes.
TIROSH_S_GENES = (
    "MCM5", "PCNA", "TYMS", "FEN1", "MCM2", "MCM4", "RRM1", "UNG", "GINS2", "MCM6", "CDCA7",
    "DTL", "PRIM1", "UHRF1", "MLF1IP", "HELLS", "RFC2", "RPA2", "NASP", "RAD51AP1", "GMNN",
    "WDR76", "SLBP", "CCNE2", "UBR7", "POLD3", "MSH2", "ATAD2", "RAD51", "RRM2", "CDC45", "CDC6",
    "EXO1", "TIPIN", "DSCC1", "BLM", "CASP8AP2", "USP1", "CLSPN", "POLA1", "CHAF1B", "BRIP1",
    "E2F8",
)  # fmt: skip
#: ... then 54 G2/M genes.
TIROSH_G2M_GENES = (
    "HMGB2", "CDK1", "NUSAP1", "UBE2C", "BIRC5", "TPX2", "TOP2A", "NDC80", "CKS2", "NUF2",
    "CKS1B", "MKI67", "TMPO", "CENPF", "TACC3", "FAM64A", "SMC4", "CCNB2", "CKAP2L", "CKAP2",
    "AURKB", "BUB1", "KIF11", "ANP32E", "TUBB4B", "GTSE1", "KIF20B", "HJURP", "CDCA3", "HN1",
    "CDC20", "TTK", "CDC25C", "KIF2C", "RANGAP1", "NCAPD2", "DLGAP5", "CDCA2", "CDCA8", "ECT2",
    "KIF23", "HMMR", "AURKA", "PSRC1", "ANLN", "LBR", "CKAP5", "CENPE", "CTCF", "NEK2", "G2E3",
    "GAS2L3", "CBX5", "CENPA",
)  # fmt: skip

#: COVID-19, myeloid cells of early patients (few days from onset): interferon response (Fig. 3f's
#: second module: GBP1, IFITM3, IFI27 named in the paper).
COVID_INTERFERON = (
    "IFI27", "GBP1", "IFITM3", "ISG15", "MX1", "IFI6", "IFI44L", "IFIT1", "IFIT3", "OAS1",
    "RSAD2", "STAT1", "XAF1",
)  # fmt: skip
#: COVID-19, myeloid cells of late patients: CSF3R, MHC-II (LGALS2, HLA-DR) and TNF / NFKBIZ
#: (Fig. 3f's first and third modules).
COVID_LATE = (
    "CSF3R", "LGALS2", "HLA-DRA", "HLA-DRB1", "HLA-DPA1", "CD74", "TNF", "NFKBIZ", "NFKBIA",
    "IER3", "CD83", "SOD2",
)  # fmt: skip

#: IBD, every stromal cell of B2 (stenosing) donors: CDH11 and markers of fibrosis and activation.
IBD_B2_STROMAL = (
    "CDH11", "COL1A1", "S100A6", "MT2A", "JUN", "FN1", "POSTN", "THBS2", "CTHRC1", "SERPINE1",
)  # fmt: skip
#: IBD, HIGD1B+STEAP4+ pericytes of B2 donors only.
IBD_B2_PERICYTE = ("LUM", "PDGFRB", "TGFBI", "COL4A1")
#: IBD, every cell of inflamed biosamples (``Type`` ``Infl``).
IBD_INFLAMMATION = (
    "CXCL8", "IL1B", "S100A8", "S100A9", "LCN2", "DUOX2", "CHI3L1", "MMP3", "SAA1", "REG1A",
    "CXCL1", "IDO1",
)  # fmt: skip
#: IBD compartment markers (every cell of the compartment; they make the compartments apart).
IBD_MARKERS = {
    "EPI": ("EPCAM", "KRT8", "KRT19", "CDH1"),
    "IMM": ("PTPRC", "CD52", "CORO1A", "LAPTM5"),
    "STR": ("VIM", "COL3A1", "SPARC", "IGFBP7"),
}
