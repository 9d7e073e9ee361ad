from pathlib import Path

from thermia.config import validate_config

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


def tracking_params():
    return {
        "uri": config["tracking"]["uri"],
        "experiment": config["tracking"]["experiment"],
    }
