from thermia.logs import setup_job_logging
from thermia.train.job import train_model

setup_job_logging(snakemake.log[0])
train_model(
    frames_path=snakemake.input.frames,
    inputs_path=snakemake.input.inputs,
    split_path=snakemake.input.split,
    model_index=int(snakemake.wildcards.model),
    model_config=snakemake.params.model,
    checkpoint_path=snakemake.output.checkpoint,
    predictions_path=snakemake.output.predictions,
    threads=snakemake.threads,
    config=snakemake.config,
    resume_dir=snakemake.params.resume_dir,
    **snakemake.params.tracking,
)
