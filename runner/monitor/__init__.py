"""``latlab monitor``'s parts below the composition root: its settings, the round schedule and
stop signals, the Prometheus exporter and the alert webhook. runner/app/monitor.py wires them
to runs (the engine) and to the burn-rate views (analysis)."""
