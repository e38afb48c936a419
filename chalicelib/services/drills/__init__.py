"""DR drills: inject a fault on purpose, let Lifeboat run the whole runbook on its own (detect, switch
traffic, validate the backup, restore the primary, fail back gradually), measure it, and keep the evidence.

`DrillRunner.run` is the use case. Like an AWS FIS experiment it has pre-conditions (a clean, healthy
subject), actions (the scenario's faults), and stop conditions (the drill's timeout, an operator's Ctrl-C,
any error, or its lease lapsing because the process died); whatever stops it, the cleanup restores the
faults and a clean traffic state and the drill is recorded as `interrupted` with what was restored.

Where a drill runs: in the local cloud, against the plan itself (the local cloud is a sandbox); in an AWS
account, against the plan's drill target (`drill.target`, a drill copy of the workload), or - only with
`live` and the workload's name as confirmation - against production.

The parts, in the order a drill uses them:

- `subject`: which plan the drill breaks; `preflight`: its pre-conditions;
- `control`: the control record in the ledger (claim, heartbeat, lease, take-over);
- `context`: one running drill's shared state, narration, clock and poll (`tick`);
- `dataset`: the drill's writes to the dataset (the writer itself is the `adapters.drill_dataset` adapter);
- `faults`: the fault injector registry, each scenario's faults, the flapping primary;
- `watch`: alarm transitions, ledger decisions, the failovers the drill caused;
- `measure`: RTO, RPO, phases, step timings; `failback`: the gradual failback and its duration;
- `corruption`: the data-corruption scenario (no failover: detect, judge, restore in place, validate);
- `cleanup`: leftovers, then the subject left clean; `report`: verdict, evidence, ledger summary;
- `runner`: `DrillRunner`, the order of all of the above;
- `recovery`: a drill whose process died; `past`: finished drills; `requests`: API, schedule, drill function.
"""

from __future__ import annotations

from chalicelib.adapters.drill_faults import FaultUnsupported
from chalicelib.models.drill import DrillRecord
from chalicelib.services.drills.cleanup import clean_subject
from chalicelib.services.drills.context import DrillObserver, LogObserver
from chalicelib.services.drills.control import CONTROL_KEY
from chalicelib.services.drills.dataset import WRITE_PREFIX, dataset_copy, remove_writes
from chalicelib.services.drills.errors import DrillInterrupted, DrillRefused, SimulatedKill
from chalicelib.services.drills.faults import injector_for, register_injector
from chalicelib.services.drills.past import UnknownDrill, get_drill, list_drills
from chalicelib.services.drills.recovery import recover
from chalicelib.services.drills.report import finish_record
from chalicelib.services.drills.requests import request_drill, run_drill, run_requested, schedule_monthly
from chalicelib.services.drills.runner import DrillRunner
from chalicelib.services.drills.subject import in_local_cloud, resolve_subject

__all__ = [
    "CONTROL_KEY",
    "WRITE_PREFIX",
    "DrillInterrupted",
    "DrillObserver",
    "DrillRecord",
    "DrillRefused",
    "DrillRunner",
    "FaultUnsupported",
    "LogObserver",
    "SimulatedKill",
    "UnknownDrill",
    "clean_subject",
    "dataset_copy",
    "finish_record",
    "get_drill",
    "in_local_cloud",
    "injector_for",
    "list_drills",
    "recover",
    "register_injector",
    "remove_writes",
    "request_drill",
    "resolve_subject",
    "run_drill",
    "run_requested",
    "schedule_monthly",
]
