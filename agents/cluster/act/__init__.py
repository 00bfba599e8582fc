"""Act: the applier. The plan executor starts each action when its dependencies are done and its
precondition holds on fresh state (``executor``); actions become agent commands through the
driver (``driver``); every step is journaled in SQLite before and after it happens
(``journal``), so a restarted manager knows where it was."""
