// Package check validates what deploy/ ships without a cluster or a Docker
// engine: the Helm chart (lint, render, strict decoding into the typed
// Kubernetes API, the design's scaling and disruption rules) and the
// compose file (the Compose loader). It is a module of its own so that
// Helm's and Kubernetes' dependencies stay out of the product's.
package check
