from thermia.attacks.view import run_attack_file
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
run_attack_file(
    snakemake.input.signals,
    snakemake.output[0],
    attack=snakemake.wildcards.attack,
    settings=snakemake.params.attacks,
    seed=snakemake.params.seed,
)
