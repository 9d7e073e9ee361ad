# thermia: a membership inference audit of a thermal-image classifier.
#
#   snakemake --cores all                  # the study in config.yaml
#   snakemake --cores all --configfile config/incar.yaml
#
# Every path lives here and in rules/; every idea lives in the thermia package.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/report.smk"
include: "rules/study.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/report/summary.csv",
        f"{RESULTS}/report/roc_all.png",
