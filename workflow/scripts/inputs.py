from thermia.logs import setup_job_logging
from thermia.train.inputs import prepare_inputs

setup_job_logging(snakemake.log[0])
width, height = map(int, snakemake.wildcards.size.split("x"))
prepare_inputs(
    snakemake.input.frames,
    snakemake.output[0],
    height=height,
    width=width,
    normalisation=snakemake.params.normalisation,
)
