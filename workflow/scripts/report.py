from thermia.evaluation.job import write_report
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
write_report(
    metrics_paths=list(snakemake.input.metrics),
    scores_paths=list(snakemake.input.scores),
    prediction_paths=list(snakemake.input.predictions),
    attacks=snakemake.params.attacks,
    summary_path=snakemake.output.summary,
    roc_path=snakemake.output.roc,
    config=snakemake.config,
    **snakemake.params.tracking,
)
