from thermia.logs import setup_job_logging
from thermia.study import evaluate_point

setup_job_logging(snakemake.log[0])
point = snakemake.params.point
evaluate_point(
    point=point.name,
    settings=point.settings,
    factor=point.factor,
    group=point.group,
    attacks=list(point.attacks),
    frames_path=snakemake.input.frames,
    split_path=snakemake.input.split,
    prediction_paths=list(snakemake.input.predictions),
    out_path=snakemake.output[0],
    config=snakemake.config,
    **snakemake.params.tracking,
)
