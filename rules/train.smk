rule tracking_store:
    output:
        f"{RESULTS}/tracking/parent.json",
    log:
        f"{RESULTS}/logs/tracking_store.log",
    conda:
        "../envs/thermia.yaml"
    params:
        tracking=tracking_params(),
    script:
        "../workflow/scripts/tracking_store.py"


rule train:
    input:
        frames=f"{RESULTS}/data/frames.h5",
        inputs=f"{RESULTS}/data/inputs_{INPUT_SIZE}.h5",
        split=f"{RESULTS}/splits/keep.h5",
        leakage=f"{RESULTS}/splits/leakage.json",
        tracking=f"{RESULTS}/tracking/parent.json",
        code=package_code("train"),
    output:
        checkpoint=f"{RESULTS}/models/{{model}}/model.ckpt",
        predictions=f"{RESULTS}/models/{{model}}/predictions.h5",
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    conda:
        "../envs/thermia.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        model=config["model"],
        tracking=tracking_params(),
        resume_dir=lambda wc: f"{RESULTS}/.resume/models/{wc.model}",
    script:
        "../workflow/scripts/train.py"
