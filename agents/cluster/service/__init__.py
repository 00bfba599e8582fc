"""The program: configuration (``config``, ``runtime_config``, ``ft_config``), the gRPC servicers
and server (``rpc``, ``server``), Prometheus metrics (``metrics``), the runtime that wires every
stage together (``runtime``) and the ``vmgrid-cluster`` entry point (``main``)."""
