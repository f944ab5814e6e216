"""The lmaas test control plane: real etcd, kube-apiserver and kube-controller-manager.

See README.md beside this file, and launcher.py for the API.
"""

from .launcher import CONTROLLERS, ClusterError, TestCluster, build, kubernetes_version

__all__ = ["CONTROLLERS", "ClusterError", "TestCluster", "build", "kubernetes_version"]
