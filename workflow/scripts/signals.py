from thermia.attacks.view import write_view
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
write_view(
    snakemake.output[0],
    frames_path=snakemake.input.frames,
    split_path=snakemake.input.split,
    prediction_paths=list(snakemake.input.predictions),
)
