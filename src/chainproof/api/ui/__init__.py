"""The web UI (dashboard) served by `chainproof serve` at `/`."""
