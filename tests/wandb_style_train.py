"""A training script as W&B's docs write them, copied by tests as `train.py` into a sweep dir.

argparse gives defaults, `wandb.init(config=args)` records them, and `wandb.config` (where the
sweep's values win) drives the run. The "loss" falls with each epoch at a rate set by `lr`,
so pruning has a bad trial to stop. It records what it saw (argv, wandb.config, the run) in
`seen.json`, each start in `starts.jsonl` and a SIGTERM in `sigterm`, in
ORCHESTRATE_CHECKPOINT_DIR (or the cwd).
"""

import argparse
import json
import os
import signal
import sys
import time

import wandb

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--optimizer", default="sgd")
parser.add_argument("--nesterov", type=lambda s: s == "True", nargs="?", const=True, default=False)
parser.add_argument("--epoch_seconds", type=float, default=0.0)
args, unknown = parser.parse_known_args()  # other macro forms arrive as extra arguments
out = os.environ.get("ORCHESTRATE_CHECKPOINT_DIR", ".")


def on_sigterm(signum, frame):
    with open(os.path.join(out, "sigterm"), "w") as handle:
        handle.write(str(os.getpid()))
    wandb.finish(exit_code=143)
    sys.exit(143)


signal.signal(signal.SIGTERM, on_sigterm)

run = wandb.init(config=vars(args))
config = wandb.config
seen = {
    "argv": sys.argv[1:],
    "config": {k: v for k, v in config.items() if not k.startswith("_")},
    "run_id": run.id,
    "run_dir": run.dir,
}
with open(os.path.join(out, "seen.json"), "w") as handle:
    json.dump(seen, handle)
with open(os.path.join(out, "starts.jsonl"), "a") as handle:
    handle.write(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "run_id": run.id}) + "\n")

loss = 1.0
for epoch in range(config.epochs):
    loss = loss * (1.0 - config.lr)
    wandb.log({"epoch": epoch, "loss": loss})
    time.sleep(config.epoch_seconds)
wandb.summary["loss"] = loss
wandb.finish()
