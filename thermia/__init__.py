"""thermia: membership inference audits for thermal-image classifiers."""

__version__ = "0.1.0"
