from thermia.data.ingest import ingest
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
ingest(
    snakemake.output[0],
    snakemake.params.data,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
