"""`lmaas run`: the CRs on one machine, with the operator's own builders and status functions.

Modules: `documents` (read and validate -f sources), `store` (state on disk), `kubelet` (a pod as
a local process), `jobs` (a local Job controller), `workloads` (TrainJob, CompressJob),
`serving` (ModelService), `runner` (order, skip, resume, Ctrl-C), `display`, `table` (`lmaas get`).
No torch here: workers are child processes.
"""
