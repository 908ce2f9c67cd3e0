// Package packaging holds tests of the operator's packaging: the Helm chart in
// charts/keboola-operator against config/, the kstatus status that Flux and
// other kstatus readers compute from the operator's conditions, and the Argo
// CD health checks in config/argocd. The package has no code of its own.
package packaging
