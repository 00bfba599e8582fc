"""The cluster's side of the grid: the uplink to the coordinator (``uplink``), what the cluster
tells it (``summary``), grid commands carried out (``commands``) with their journal
(``journal``) and the reservations that place arriving VMs (``reservations``)."""
