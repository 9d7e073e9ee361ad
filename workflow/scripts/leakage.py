from thermia.data.splits import check_leakage, write_leakage_report
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
summary = check_leakage(snakemake.input.frames, snakemake.input.split)
write_leakage_report(snakemake.output[0], summary)
