"""chainproof: the scribe (a Grafeas v1 metadata store) and the judge (policy and admission)."""

__version__ = "0.1.0"
