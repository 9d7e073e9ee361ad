rule study:
    input:
        f"{STUDY_DIR}/summary.csv",
        expand(f"{STUDY_DIR}/figures/{{factor}}.png", factor=STUDY_FACTORS),


rule study_tracking:
    output:
        f"{STUDY_DIR}/tracking/parent.json",
    log:
        f"{RESULTS}/logs/study/tracking.log",
    conda:
        "../envs/thermia.yaml"
    params:
        tracking=tracking_params(),
    script:
        "../workflow/scripts/study_tracking.py"


use rule ingest as study_ingest with:
    input:
        code=package_code("data"),
        manifest=lambda wc: manifest_inputs(STUDY.data[wc.data]),
    output:
        f"{STUDY_DIR}/data/{{data}}/frames.h5",
    log:
        f"{RESULTS}/logs/study/ingest_{{data}}.log",
    params:
        data=lambda wc: STUDY.data[wc.data],
        seed=config["seed"],
        frames=lambda wc: frames_fingerprint(STUDY.data[wc.data]),


use rule inputs as study_inputs with:
    input:
        frames=f"{STUDY_DIR}/data/{{data}}/frames.h5",
        code=package_code("train"),
    output:
        f"{STUDY_DIR}/data/{{data}}/inputs_{{size}}.h5",
    log:
        f"{RESULTS}/logs/study/inputs_{{data}}_{{size}}.log",


rule study_split:
    input:
        frames=lambda wc: f"{STUDY_DIR}/data/{STUDY.splits[wc.split]['data']}/frames.h5",
        code=package_code("data"),
    output:
        f"{STUDY_DIR}/splits/{{split}}/keep.h5",
    log:
        f"{RESULTS}/logs/study/split_{{split}}.log",
    conda:
        "../envs/thermia.yaml"
    params:
        split=lambda wc: STUDY.splits[wc.split],
        seed=config["seed"],
    script:
        "../workflow/scripts/split.py"


rule study_leakage:
    input:
        frames=lambda wc: f"{STUDY_DIR}/data/{STUDY.splits[wc.split]['data']}/frames.h5",
        split=f"{STUDY_DIR}/splits/{{split}}/keep.h5",
        code=package_code("data"),
    output:
        f"{STUDY_DIR}/splits/{{split}}/leakage.json",
    log:
        f"{RESULTS}/logs/study/leakage_{{split}}.log",
    conda:
        "../envs/thermia.yaml"
    script:
        "../workflow/scripts/leakage.py"


rule study_train:
    input:
        frames=lambda wc: f"{STUDY_DIR}/data/{study_group(wc)['data']}/frames.h5",
        inputs=lambda wc: (
            f"{STUDY_DIR}/data/{study_group(wc)['data']}/"
            f"inputs_{study_group(wc)['size']}.h5"
        ),
        split=lambda wc: f"{STUDY_DIR}/splits/{study_group(wc)['split']}/keep.h5",
        leakage=lambda wc: (
            f"{STUDY_DIR}/splits/{study_group(wc)['split']}/leakage.json"
        ),
        tracking=f"{STUDY_DIR}/tracking/parent.json",
        code=package_code("train"),
    output:
        checkpoint=f"{STUDY_DIR}/models/{{group}}/{{model}}/model.ckpt",
        predictions=f"{STUDY_DIR}/models/{{group}}/{{model}}/predictions.h5",
    log:
        f"{RESULTS}/logs/study/train_{{group}}_{{model}}.log",
    conda:
        "../envs/thermia.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        group=study_group,
        tracking=tracking_params(),
        resume_dir=lambda wc: f"{STUDY_DIR}/.resume/{wc.group}/{wc.model}",
    script:
        "../workflow/scripts/study_train.py"


rule study_point:
    input:
        unpack(study_point_inputs),
        code=package_code("attacks") + package_code("evaluation"),
    output:
        f"{STUDY_DIR}/points/{{point}}/metrics.json",
    log:
        f"{RESULTS}/logs/study/point_{{point}}.log",
    conda:
        "../envs/thermia.yaml"
    params:
        point=lambda wc: POINTS[wc.point],
        tracking=tracking_params(),
    script:
        "../workflow/scripts/study_point.py"


rule study_summary:
    input:
        metrics=expand(f"{STUDY_DIR}/points/{{point}}/metrics.json", point=POINTS),
        code=package_code("evaluation"),
    output:
        summary=report(f"{STUDY_DIR}/summary.csv", category="Study"),
        figures=report(
            expand(f"{STUDY_DIR}/figures/{{factor}}.png", factor=STUDY_FACTORS),
            category="Study",
        ),
    log:
        f"{RESULTS}/logs/study/summary.log",
    conda:
        "../envs/thermia.yaml"
    params:
        factors=STUDY_FACTORS,
        skipped=STUDY.skipped,
        tracking=tracking_params(),
    script:
        "../workflow/scripts/study_summary.py"
