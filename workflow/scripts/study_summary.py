import logging

from thermia.logs import setup_job_logging
from thermia.study import write_study_summary

setup_job_logging(snakemake.log[0])
for reason in snakemake.params.skipped:
    logging.getLogger("thermia.study").info("skipped point %s", reason)
write_study_summary(
    metrics_paths=list(snakemake.input.metrics),
    summary_path=snakemake.output.summary,
    figure_dir=str(snakemake.output.figures[0]).rsplit("/", 1)[0],
    factors=snakemake.params.factors,
    config=snakemake.config,
    **snakemake.params.tracking,
)
