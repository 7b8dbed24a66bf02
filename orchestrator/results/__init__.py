"""What a sweep found: its trials read back (`sweep.load_sweep`, the public API), the results
table and files (`summary`), ablation deltas and parameter importance (`analysis`), each
ablation against the baseline paired by seed (`ablation_stats`), and the report (`report`:
the summary wandb run, `plots`, `markdown`)."""

from orchestrator.results.sweep import Sweep, load_sweep

__all__ = ["Sweep", "load_sweep"]
