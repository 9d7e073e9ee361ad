from thermia.evaluation.job import evaluate_attack
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
evaluate_attack(
    scores_path=snakemake.input.scores,
    signals_path=snakemake.input.signals,
    outputs=dict(snakemake.output.items()),
    attack=snakemake.wildcards.attack,
    settings=snakemake.params.evaluation,
    real_unit_ids=snakemake.params.real_unit_ids,
    seed=snakemake.params.seed,
    config=snakemake.config,
    **snakemake.params.tracking,
)
