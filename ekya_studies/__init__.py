"""The paper's studies on top of the platform: sweeps, reports, capacity, profiler fidelity, reproduction.

Depends on ``ekya`` and never the other way round; ``flows/`` maps Hydra configs onto it and runs
it under Prefect. No module here imports ``flows``: what needs a config turned into objects or a
Prefect flow run (checking a point, running it, profiling a trace) is passed in by the entry point.

    sweeps             the points of a study: Hydra multiruns expanded by hand; the trace's stamp
    plan               the reproduction's plan: every study point composed and checked (Hydra compose)
    reproduce          the reproduction's stages: trace, studies, reports, sim_vs_local, headline
    report             a sweep's runs read back from MLflow: figures, summary.md, headline numbers
    capacity           streams a box of G GPUs holds at an accuracy target (Table 2)
    sim_vs_local       the same points with the local and the simulated executor, compared
    headline           reports/headline.md: the headline numbers of a reproduction
    profiler_fidelity  the micro-profiler's estimates against full retraining (Figure 11a)
"""
