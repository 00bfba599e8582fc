"""Placement rules as cluster state: the rules operators define and those each submitted job
brings, journaled so they survive restarts (``store``), and the checks every path uses
(``check``): whether a move or start would break a rule that holds now, and which rules the
current placement violates. The applier consults them before every action."""
