"""Decide: triggers with hold time and hysteresis (``control``), the pure decision cycle from a
snapshot to what should start (``thinking``), run in a forked child (``forked``) by the running
loop (``loop``: trigger, decide, approve, execute, cool down), the production decider
(``policy_decider``) and what happens to a drained node's VMs (``maintenance``)."""
