"""The `pipeline` command: one module per command (`run`, `validate`, `manifest`, `slurm`), the
helpers they share, and the terminal display of a run. `pipeline.cli.app` assembles them."""
