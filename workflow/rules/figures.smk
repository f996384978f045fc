# Figures (plotnine): results/{dataset}/figures/. Every final figure is in the Snakemake report
# (`snakemake --report report.html`) with a caption saying what to look for. Target rules:
# `fig2` (the semi-synthetic benchmark's panels), `fig3` (the cohort figure of every entry whose
# `figures` list asks for it, with its claims table), `fig4` (the perturbation-screen figure of
# every entry asking for it: Fig. 4 for A549, Extended Data Figs. 3-4 for MCF-7 and K562, with
# claims), `fig5` (the disease-behaviour figure of the IBD atlas: Fig. 5, Extended Data Figs.
# 5-7, with claims), `extended_data` (every Extended Data figure made so far) and `benchmarks` (run time
# and memory per rule).


rule embeddings_2d:
    input:
        rules.latent_mrvi.output[0],
    output:
        "results/{dataset}/figures/data/umap.tsv.gz",
    log:
        "results/{dataset}/logs/embeddings_2d.log",
    benchmark:
        "results/{dataset}/benchmarks/embeddings_2d.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=grow(4000, 80),
        runtime=grow(30, 1),
    params:
        seed=get_seed,
    script:
        "../scripts/embeddings_2d.py"


rule fig2_panels:
    input:
        umap=rules.embeddings_2d.output[0],
        h5ad=rules.preprocess_dataset.output.h5ad,
        da=rules.differential_abundance.output[0],
        de=rules.differential_expression.output[0],
        distances=rules.sample_distances.output[0],
        pr_curves=rules.da_metrics.output.curves,
        lfc_scatter=rules.de_metrics.output.scatter,
    output:
        **{
            panel: report(
                f"results/{{dataset}}/figures/{panel}.png",
                caption=f"../report/{panel}.rst",
                category="Figure 2",
                subcategory="{dataset}",
                labels=report_labels(*FIG2_REPORT_LABELS[panel]),
            )
            for panel in FIG2_PANELS
        },
    log:
        "results/{dataset}/logs/fig2_panels.log",
    benchmark:
        "results/{dataset}/benchmarks/fig2_panels.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 5),
        runtime=grow(20, 0.05),
    script:
        "../scripts/fig2_panels.py"


rule fig3_panels:
    input:
        unpack(fig3_inputs),
        umap=rules.embeddings_2d.output[0],
    output:
        **{
            panel: report(
                f"results/{{dataset}}/figures/fig3/{panel}.png",
                caption=f"../report/{panel}.rst",
                category="Figure 3",
                subcategory="{dataset}",
                labels=report_labels(*FIG3_REPORT_LABELS[panel]),
            )
            for panel in FIG3_PANELS
        },
        module_genes=report(
            "results/{dataset}/figures/fig3/fig3f_module_genes.tsv",
            caption="../report/fig3f_module_genes.rst",
            category="Figure 3",
            subcategory="{dataset}",
            labels=report_labels("3f.2", "genes of each DE module"),
        ),
    log:
        "results/{dataset}/logs/fig3_panels.log",
    benchmark:
        "results/{dataset}/benchmarks/fig3_panels.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 10),
        runtime=grow(30, 0.1),
    params:
        entry=figures_entry,
    script:
        "../scripts/fig3_panels.py"


rule cohort_claims:
    input:
        unpack(fig3_inputs),
    output:
        report(
            "results/{dataset}/metrics/claims.tsv",
            caption="../report/claims.rst",
            category="Claims",
            subcategory="{dataset}",
            labels=report_labels("1", "the paper's statements checked"),
        ),
    log:
        "results/{dataset}/logs/cohort_claims.log",
    benchmark:
        "results/{dataset}/benchmarks/cohort_claims.tsv"
    wildcard_constraints:
        dataset="|".join(FIG3) or "^$",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 5),
        runtime=grow(20, 0.05),
    params:
        entry=figures_entry,
    script:
        "../scripts/cohort_claims.py"


rule fig4_panels:
    input:
        umap=rules.embeddings_2d.output[0],
        h5ad=rules.preprocess_dataset.output.h5ad,
        distances=rules.sample_distances.output[0],
        stratification=rules.stratify_cells.output[0],
        clusters=rules.screen_clusters.output.clusters,
        de=rules.screen_clusters.output.de,
        enrichment=rules.screen_clusters.output.enrichment,
        metrics=rules.screen_metrics.output[0],
    output:
        **{
            panel: report(
                f"results/{{dataset}}/figures/fig4/{panel}.png",
                caption=f"../report/{panel}.rst",
                category="Figure 4 and Extended Data Figs. 2-4",
                subcategory="{dataset}",
                labels=report_labels(*FIG4_REPORT_LABELS[panel]),
            )
            for panel in FIG4_PANELS
        },
    log:
        "results/{dataset}/logs/fig4_panels.log",
    benchmark:
        "results/{dataset}/benchmarks/fig4_panels.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 10),
        runtime=grow(30, 0.1),
    params:
        entry=figures_entry,
    script:
        "../scripts/fig4_panels.py"


rule screen_claims:
    input:
        h5ad=rules.preprocess_dataset.output.h5ad,
        distances=rules.sample_distances.output[0],
        stratification=rules.stratify_cells.output[0],
        clusters=rules.screen_clusters.output.clusters,
        de=rules.screen_clusters.output.de,
        enrichment=rules.screen_clusters.output.enrichment,
        metrics=rules.screen_metrics.output[0],
    output:
        report(
            "results/{dataset}/metrics/claims.tsv",
            caption="../report/screen_claims.rst",
            category="Claims",
            subcategory="{dataset}",
            labels=report_labels("1", "the paper's statements checked"),
        ),
    log:
        "results/{dataset}/logs/screen_claims.log",
    benchmark:
        "results/{dataset}/benchmarks/screen_claims.tsv"
    wildcard_constraints:
        dataset="|".join(FIG4) or "^$",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(2000, 5),
        runtime=grow(10, 0.05),
    params:
        entry=figures_entry,
    script:
        "../scripts/screen_claims.py"


rule fig5_panels:
    input:
        unpack(fig5_inputs),
        umap=rules.embeddings_2d.output[0],
    output:
        **{
            panel: report(
                f"results/{{dataset}}/figures/fig5/{panel}.png",
                caption=f"../report/{panel}.rst",
                category="Figure 5 and Extended Data Figs. 5-7",
                subcategory="{dataset}",
                labels=report_labels(*FIG5_REPORT_LABELS[panel]),
            )
            for panel in FIG5_PANELS
        },
    log:
        "results/{dataset}/logs/fig5_panels.log",
    benchmark:
        "results/{dataset}/benchmarks/fig5_panels.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 10),
        runtime=grow(30, 0.1),
    params:
        entry=fig5_entry,
    script:
        "../scripts/fig5_panels.py"


rule stenosis_claims:
    input:
        unpack(fig5_inputs),
    output:
        report(
            "results/{dataset}/metrics/claims.tsv",
            caption="../report/stenosis_claims.rst",
            category="Claims",
            subcategory="{dataset}",
            labels=report_labels("1", "the paper's statements checked"),
        ),
    log:
        "results/{dataset}/logs/stenosis_claims.log",
    benchmark:
        "results/{dataset}/benchmarks/stenosis_claims.tsv"
    wildcard_constraints:
        dataset="|".join(FIG5) or "^$",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=grow(4000, 5),
        runtime=grow(20, 0.05),
    params:
        entry=fig5_entry,
    script:
        "../scripts/stenosis_claims.py"


rule metric_figures:
    input:
        summary=rules.metrics_summary.output[0],
        integration=rules.integration_metrics.output[0],
    output:
        summary=report(
            "results/{dataset}/figures/summary_metrics.png",
            caption="../report/summary_metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels=report_labels("2", "benchmark metric table"),
        ),
        integration=report(
            "results/{dataset}/figures/integration_metrics.png",
            caption="../report/integration_metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels=report_labels("3 (Supp. 2)", "integration metrics"),
        ),
    log:
        "results/{dataset}/logs/metric_figures.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/metric_figures.py"


rule runtime_figure:
    input:
        get_benchmark_files,
    output:
        report(
            "results/{dataset}/figures/runtime.png",
            caption="../report/runtime.rst",
            category="Run time and memory",
            subcategory="{dataset}",
            labels=report_labels("1", "wall time and peak memory per rule"),
        ),
    log:
        "results/{dataset}/logs/runtime_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/runtime_figure.py"


rule fig2:
    input:
        expand(list(rules.fig2_panels.output), dataset=SEMISYNTHETIC),


rule fig3:
    input:
        [f for name in FIG3 for f in fig3_outputs(name)],


rule fig4:
    input:
        [f for name in FIG4 for f in fig4_outputs(name)],


rule fig5:
    input:
        [f for name in FIG5 for f in fig5_outputs(name)],


rule extended_data:
    input:
        expand(rules.fig3_panels.output.ed1_onset, dataset=FIG3),
        expand(rules.fig4_panels.output.ed2_all_distances, dataset=FIG4),
        expand(rules.metric_figures.output.integration, dataset=FIG5),
        expand(
            [o for k, o in rules.fig5_panels.output.items() if k.startswith("ed")],
            dataset=FIG5,
        ),


rule benchmarks:
    input:
        expand(rules.runtime_figure.output[0], dataset=DATASETS),
