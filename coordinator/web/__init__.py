"""The live web dashboard and its JSON HTTP API, served by the coordinator or a cluster manager.

``build_app(backend, tokens)`` makes the aiohttp application; a ``Backend`` hides whether the
data comes from one cluster manager (``ClusterBackend``) or the grid coordinator
(``CoordinatorBackend``). ``WebServer`` runs it on a loopback or public address.
"""
