"""The ops HTTP endpoint: a small server, the routes, the metrics, and the control interface the daemon offers to triggers."""
