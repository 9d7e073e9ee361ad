rule ingest:
    input:
        code=package_code("data"),
        manifest=manifest_inputs(config["data"]),
    output:
        f"{RESULTS}/data/frames.h5",
    log:
        f"{RESULTS}/logs/ingest.log",
    conda:
        "../envs/thermia.yaml"
    threads: 2
    params:
        data=config["data"],
        seed=config["seed"],
        frames=lambda wc: frames_fingerprint(config["data"]),
    script:
        "../workflow/scripts/ingest.py"


rule inputs:
    input:
        frames=f"{RESULTS}/data/frames.h5",
        code=package_code("train"),
    output:
        f"{RESULTS}/data/inputs_{{size}}.h5",
    log:
        f"{RESULTS}/logs/inputs_{{size}}.log",
    conda:
        "../envs/thermia.yaml"
    params:
        normalisation=config["data"]["normalisation"],
    script:
        "../workflow/scripts/inputs.py"


rule split:
    input:
        frames=f"{RESULTS}/data/frames.h5",
        code=package_code("data"),
    output:
        f"{RESULTS}/splits/keep.h5",
    log:
        f"{RESULTS}/logs/split.log",
    conda:
        "../envs/thermia.yaml"
    params:
        split=config["split"],
        seed=config["seed"],
    script:
        "../workflow/scripts/split.py"


rule leakage:
    input:
        frames=f"{RESULTS}/data/frames.h5",
        split=f"{RESULTS}/splits/keep.h5",
        code=package_code("data"),
    output:
        f"{RESULTS}/splits/leakage.json",
    log:
        f"{RESULTS}/logs/leakage.log",
    conda:
        "../envs/thermia.yaml"
    script:
        "../workflow/scripts/leakage.py"
