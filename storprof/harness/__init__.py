"""One way through a run: the frozen plan, sessions, units, the scheduler, progress, the ownership record."""
