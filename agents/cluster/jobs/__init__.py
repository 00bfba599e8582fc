"""Submitted jobs and what protects them: admission, placement and start of a job's members
(``submission``), coordinated checkpoints (``checkpoints``, ``checkpoint_rpc``), node failure
handled by fencing then restarting (``ha``), and what must be remembered to do so
(``members``); ``fault_tolerance`` starts and stops them together."""
