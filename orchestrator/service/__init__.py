"""Sweeps as a service on a Ray cluster: `submit`, `status`, `logs`, `cancel`, `pull` from
where you type (`client`, over the Ray Jobs API), and the detached controller and queries on
the head node (`host`, run as `python -m orchestrator.service.host`)."""
