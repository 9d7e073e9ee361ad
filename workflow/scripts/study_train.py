from thermia.logs import setup_job_logging
from thermia.study import study_hash
from thermia.train.job import train_model

setup_job_logging(snakemake.log[0])
group = snakemake.params.group
train_model(
    frames_path=snakemake.input.frames,
    inputs_path=snakemake.input.inputs,
    split_path=snakemake.input.split,
    model_index=int(snakemake.wildcards.model),
    model_config={**group["model"], "epochs": group["epochs"]},
    checkpoint_path=snakemake.output.checkpoint,
    predictions_path=snakemake.output.predictions,
    threads=snakemake.threads,
    config=snakemake.config,
    snapshot_epochs=tuple(group["snapshots"]),
    parent_hash=study_hash(snakemake.config),
    run_kind="study_model",
    run_key_prefix=f"{snakemake.wildcards.group}/",
    resume_dir=snakemake.params.resume_dir,
    tags={"thermia.model_group": snakemake.wildcards.group},
    **snakemake.params.tracking,
)
