"""Running a manifest: the options, the plan, the execution loop over a pool of workers (Ray,
or this process), the run's state as it goes, and shards for job arrays.

`run` (in `pipeline.run.execute`) plans and executes; `plan_run` and `execute` are its two steps.
"""
