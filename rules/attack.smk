rule signals:
    input:
        frames=f"{RESULTS}/data/frames.h5",
        split=f"{RESULTS}/splits/keep.h5",
        predictions=expand(f"{RESULTS}/models/{{model}}/predictions.h5", model=MODELS),
        code=package_code("attacks"),
    output:
        f"{RESULTS}/attack/signals.h5",
    log:
        f"{RESULTS}/logs/signals.log",
    conda:
        "../envs/thermia.yaml"
    script:
        "../workflow/scripts/signals.py"


rule attack:
    input:
        signals=f"{RESULTS}/attack/signals.h5",
        code=package_code("attacks"),
    output:
        f"{RESULTS}/attack/{{attack}}/scores.h5",
    log:
        f"{RESULTS}/logs/attack/{{attack}}.log",
    conda:
        "../envs/thermia.yaml"
    params:
        attacks=config["attacks"],
        seed=config["seed"],
    script:
        "../workflow/scripts/attack.py"


rule evaluate:
    input:
        scores=f"{RESULTS}/attack/{{attack}}/scores.h5",
        signals=f"{RESULTS}/attack/signals.h5",
        tracking=f"{RESULTS}/tracking/parent.json",
        code=package_code("evaluation"),
    output:
        metrics=f"{RESULTS}/attack/{{attack}}/metrics.json",
        roc=report(
            f"{RESULTS}/attack/{{attack}}/roc.png",
            category="Attacks",
            subcategory="{attack}",
        ),
        histogram=f"{RESULTS}/attack/{{attack}}/histogram.png",
        risk=f"{RESULTS}/attack/{{attack}}/unit_risk.csv",
    log:
        f"{RESULTS}/logs/evaluate/{{attack}}.log",
    conda:
        "../envs/thermia.yaml"
    params:
        evaluation=config["evaluation"],
        real_unit_ids=config["tracking"]["real_unit_ids"],
        tracking=tracking_params(),
        seed=config["seed"],
    script:
        "../workflow/scripts/evaluate.py"
