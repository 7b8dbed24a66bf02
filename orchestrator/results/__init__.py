"""What a sweep found: its trials read back (`sweep.load_sweep`, the public API), the results
table and files (`summary`), ablation deltas and parameter importance (`analysis`), plots
(`plots`), and the report with its summary wandb run (`report`)."""

from orchestrator.results.sweep import Sweep, load_sweep

__all__ = ["Sweep", "load_sweep"]
