rule report:
    input:
        metrics=expand(f"{RESULTS}/attack/{{attack}}/metrics.json", attack=ATTACKS),
        scores=expand(f"{RESULTS}/attack/{{attack}}/scores.h5", attack=ATTACKS),
        predictions=expand(f"{RESULTS}/models/{{model}}/predictions.h5", model=MODELS),
        tracking=f"{RESULTS}/tracking/parent.json",
        code=package_code("evaluation"),
    output:
        summary=report(f"{RESULTS}/report/summary.csv", category="Summary"),
        roc=report(f"{RESULTS}/report/roc_all.png", category="Summary"),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/thermia.yaml"
    params:
        attacks=ATTACKS,
        tracking=tracking_params(),
    script:
        "../workflow/scripts/report.py"
