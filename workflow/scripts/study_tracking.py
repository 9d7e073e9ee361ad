from thermia.logs import setup_job_logging
from thermia.study import study_hash
from thermia.tracking import open_study

setup_job_logging(snakemake.log[0])
open_study(
    snakemake.output[0],
    snakemake.config,
    parent_hash=study_hash(snakemake.config),
    name="grid",
    **snakemake.params.tracking,
)
