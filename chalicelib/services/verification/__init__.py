"""Backup verification: prove each asset's RPO by comparing primary and replica, and report it.

Three steps, the same in the Step Functions state machine (Distributed Map over the shards) and in the
on-demand run the CLI and API call (a thread pool over the same shards):

    plan_shards -> run_shard (each shard, in parallel; transient errors retried) -> finalize + publish

A shard that cannot finish makes its asset "incomplete", and an incomplete run is never reported green.
What a shard checks belongs to its asset's kind (`chalicelib.adapters.assets`); this package only
orchestrates:

- `shards.py`: planning a run's shards and running one, each asked of the asset kind's checker;
- `publish.py`: the report's evidence, ledger entry, metrics, asset states and alert;
- `tasks.py`: the state machine's tasks and the hourly schedule;
- `on_demand.py`: a whole run in this process (`lifeboat verify`, the API).

The report itself is pure: `chalicelib.domain.verification.finalize`.
"""
