//! Rendering a source tree into Kubernetes objects: plain YAML directories and Kustomize.
