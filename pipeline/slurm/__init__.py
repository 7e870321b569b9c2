"""SLURM: render and submit the sbatch templates of the top-level `slurm/` folder, read a job's
environment, and stop cleanly and requeue on SLURM's warning signal.

* `environment`: `SlurmEnvironment`, the one reader of a job's ``SLURM_*`` variables;
* `render`: `JobRequest` and `render_script`, a pure function from a request to the script text;
* `commands`: `SlurmCommands`, every call to sbatch and scontrol, and `SlurmError`;
* `submit`: `submit_job`, render + write the script next to the output + sbatch;
* `preempt`: `StopSignals`, the USR1/TERM handlers, and `requeue`;
* `raywait`: wait until a Ray cluster has its nodes (used by ``slurm/ray-cluster.sbatch``).

The ``pipeline slurm`` commands are in `pipeline.cli.slurm_command`.
"""
