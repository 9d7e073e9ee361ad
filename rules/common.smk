from pathlib import Path

from thermia.config import validate_config
from thermia.data.manifest import fingerprint as manifest_fingerprint
from thermia.study import plan_study, point_path

config.update(validate_config(config, source="config"))

RESULTS = config["results"]
N_MODELS = config["split"]["n_models"]
MODELS = list(range(N_MODELS))
ATTACKS = config["attacks"]["enabled"]
INPUT_SIZE = f"{config['model']['input_width']}x{config['model']['input_height']}"


wildcard_constraints:
    model=r"\d+",
    attack="|".join(ATTACKS),
    size=r"\d+x\d+",


def package_code(*parts):
    """The package sources a rule depends on, so that a code change reruns it."""
    root = Path(workflow.basedir) / "thermia"
    files = sorted(str(p) for part in parts for p in (root / part).glob("**/*.py"))
    files += [str(root / name) for name in ("io.py", "config.py", "logs.py")]
    return files


def manifest_inputs(data):
    """The manifest a data section reads, so that editing it reruns ingest."""
    return [data["manifest"]["path"]] if data["source"] == "manifest" else []


def frames_fingerprint(data):
    """Size and time of every file the manifest names: replacing one reruns ingest."""
    if data["source"] != "manifest":
        return ""
    return manifest_fingerprint(data["manifest"]["path"])


def tracking_params():
    return {
        "uri": config["tracking"]["uri"],
        "experiment": config["tracking"]["experiment"],
    }


STUDY = plan_study(config)
STUDY_DIR = f"{RESULTS}/study"
POINTS = {point_path(name): point for name, point in STUDY.points.items()}
STUDY_FACTORS = sorted({p.factor for p in POINTS.values()} - {"base", "earlier_study"})


wildcard_constraints:
    data=r"d[0-9a-f]{10}",
    split=r"s[0-9a-f]{10}",
    group=r"g[0-9a-f]{10}",
    point=r"[A-Za-z0-9_\-]+",


def study_group(wildcards):
    return STUDY.groups[wildcards.group]


def study_point_models(wildcards):
    point = POINTS[wildcards.point]
    n = 1 + point.settings["n_shadows"]
    return [f"{STUDY_DIR}/models/{point.group}/{m}/predictions.h5" for m in range(n)]


def study_point_inputs(wildcards):
    group = STUDY.groups[POINTS[wildcards.point].group]
    return {
        "frames": f"{STUDY_DIR}/data/{group['data']}/frames.h5",
        "split": f"{STUDY_DIR}/splits/{group['split']}/keep.h5",
        "predictions": study_point_models(wildcards),
    }
