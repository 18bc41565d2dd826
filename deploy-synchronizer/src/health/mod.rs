//! Health rules for workloads, Jobs, Pods, PVCs, Services and custom resources.
