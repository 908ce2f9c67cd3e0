// Package localenv runs the keboola-operator end to end on one machine, for
// the demo (hack/demo) and the end-to-end test (test/e2e).
//
// An Env owns a temporary work directory and everything started in it. That
// is a control plane of etcd and kube-apiserver, started through envtest
// without installing anything into it, the binaries built from this module,
// and processes whose output goes to log files. kubectl applies every
// manifest, as a user would. Close stops every process in reverse start
// order and removes the work directory. It is safe to call more than once.
//
// A typical run:
//
//	env, err := localenv.New(localenv.Options{AssetsDir: "bin/k8s/1.37.2", Name: "demo"})
//	defer env.Close()
//	err = env.StartControlPlane(ctx)
//	bins, err := env.Build(ctx)
//	manifests, err := env.RenderOperatorManifests(ctx)
//	...
//	operator, err := env.Start(localenv.ProcessSpec{Name: "operator", Path: bins.Operator, Args: ...})
//
// The helpers send traffic only to loopback addresses. Processes are
// managed with POSIX process groups and signals, so the package builds on
// Linux and macOS only.
package localenv
