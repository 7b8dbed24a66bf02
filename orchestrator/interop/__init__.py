"""Working with W&B's and Optuna's own tools: W&B agents as Ray tasks (`agent`), a spec as a
pure W&B sweep config (`export`), and optuna-dashboard on a sweep's store (`dashboard`)."""
