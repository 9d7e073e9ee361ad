from thermia.data.manifest import warn_if_unit_finer_than_subject
from thermia.data.splits import split_from_frames, write_split
from thermia.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
settings = snakemake.params.split
warn_if_unit_finer_than_subject(settings["membership_unit"])
split = split_from_frames(
    snakemake.input.frames,
    unit=settings["membership_unit"],
    scheme=settings["scheme"],
    n_models=settings["n_models"],
    seed=snakemake.params.seed,
    target_fraction=settings["target_fraction"],
    unit_fraction=settings["unit_fraction"],
)
write_split(snakemake.output[0], split)
