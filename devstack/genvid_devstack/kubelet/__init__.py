"""A process kubelet: the node agent (and binder) of the local control plane.

The local stack runs a real kube-apiserver and kube-controller-manager but no container runtime
and no scheduler. This package stands in for both on one node: it binds pending pods to its
node and runs their containers as local processes, reporting status through the API exactly as
a kubelet would, so Jobs, garbage collection and `kubectl logs` behave as they do on a cluster.
Images are ignored: a container must say what to run with `command`.

Modules, by concern:
- `envvars`, `podstatus`: pure functions (environment and `$(VAR)` expansion; pod status).
- `runtime`: containers as processes (namespaces, termination messages, logs, signals).
- `podworker`: one pod's lifecycle (init containers, restarts, deadline, deletion).
- `agent`: the watch over this node's pods that drives the pod workers.
- `node`, `binder`: the Node object and its Lease; binding pending pods to the node.
- `logserver`: `GET /containerLogs/...` over HTTPS for `kubectl logs`.
- `kube`: API client plumbing shared by the above (kubeconfigs, list+watch).
"""
