package localenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Options configure an Env.
type Options struct {
	// AssetsDir is the directory that contains the kube-apiserver, etcd and
	// kubectl binaries, such as bin/k8s/1.37.2 ("make controlplane" builds
	// them).
	AssetsDir string
	// ModuleRoot is the root directory of this Go module. Empty means the
	// nearest directory above the working directory that has a go.mod.
	ModuleRoot string
	// Name prefixes the temporary work directory, such as "demo" or "e2e".
	Name string
	// Version is stamped into the built binaries with
	// -ldflags "-X main.version=...". Empty means "dev".
	Version string
	// KeepLogs keeps the log directory when Close removes the rest of the
	// work directory.
	KeepLogs bool
}

// Env is a local environment. Its exported fields are set by New and
// StartControlPlane and must not be changed.
type Env struct {
	// ModuleRoot is the module's root directory. kubectl and go build run
	// there, so paths such as config/samples work.
	ModuleRoot string
	// Dir is the temporary work directory.
	Dir string
	// LogDir contains one log file per component.
	LogDir string
	// BinDir contains the binaries that Build builds.
	BinDir string
	// KubectlPath is the kubectl binary of the assets directory.
	KubectlPath string
	// AdminKubeconfig is the path of a kubeconfig for the user "admin" in
	// the group system:masters. StartControlPlane writes it.
	AdminKubeconfig string

	opts    Options
	testEnv *envtest.Environment

	mu        sync.Mutex
	processes []*Process
	// controlPlaneLogs are the log files of etcd and kube-apiserver, which
	// stay open until Close.
	controlPlaneLogs []*os.File
	closeOnce        sync.Once
	closeErr         error
}

// controlPlaneBinaries are the files that AssetsDir must contain.
var controlPlaneBinaries = []string{"etcd", "kube-apiserver", "kubectl"}

// New checks the options and creates the work directory. Call Close when
// done, also after an error of a later step.
func New(opts Options) (*Env, error) {
	if opts.AssetsDir == "" {
		return nil, errors.New("the control plane assets directory is not set: run \"make controlplane\" and pass bin/k8s/<version>")
	}
	assets, err := filepath.Abs(opts.AssetsDir)
	if err != nil {
		return nil, fmt.Errorf("invalid assets directory %q: %w", opts.AssetsDir, err)
	}
	opts.AssetsDir = assets
	for _, name := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run \"make controlplane\" to build it: %w", name, assets, err)
		}
	}

	if opts.ModuleRoot == "" {
		root, err := FindModuleRoot()
		if err != nil {
			return nil, err
		}
		opts.ModuleRoot = root
	}
	if opts.Name == "" {
		opts.Name = "localenv"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}

	dir, err := os.MkdirTemp("", "keboola-"+opts.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("failed to create the work directory: %w", err)
	}
	e := &Env{
		ModuleRoot:  opts.ModuleRoot,
		Dir:         dir,
		LogDir:      filepath.Join(dir, "logs"),
		BinDir:      filepath.Join(dir, "bin"),
		KubectlPath: filepath.Join(assets, "kubectl"),
		opts:        opts,
	}
	for _, d := range []string{e.LogDir, e.BinDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	return e, nil
}

// FindModuleRoot returns the nearest directory above the working directory
// that contains a go.mod file.
func FindModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to get the working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory: run from inside the keboola-operator module")
		}
		dir = parent
	}
}

// StartControlPlane starts etcd and kube-apiserver, with their output in
// LogDir, and writes AdminKubeconfig. It installs no CRDs, because kubectl
// does.
//
// NOTE: envtest starts etcd and kube-apiserver without a parent-death
// signal, so they keep running when the caller is killed with SIGKILL.
// Close stops them after a normal exit, a failure or SIGINT/SIGTERM.
func (e *Env) StartControlPlane(ctx context.Context) error {
	// envtest logs through controller-runtime's global logger. Errors
	// reach the caller anyway, and without a logger controller-runtime
	// prints a warning with a stack trace.
	logf.SetLogger(logr.Discard())

	apiServerLog, err := e.createLog("kube-apiserver")
	if err != nil {
		return err
	}
	etcdLog, err := e.createLog("etcd")
	if err != nil {
		_ = apiServerLog.Close()
		return err
	}
	e.controlPlaneLogs = []*os.File{apiServerLog, etcdLog}
	certDir := filepath.Join(e.Dir, "kube-apiserver")
	dataDir := filepath.Join(e.Dir, "etcd")
	for _, d := range []string{certDir, dataDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("failed to create %s: %w", d, err)
		}
	}

	testEnv := &envtest.Environment{
		// Never fall back to the cluster of the user's kubeconfig, even when
		// USE_EXISTING_CLUSTER is true.
		UseExistingCluster:       ptr.To(false),
		BinaryAssetsDirectory:    e.opts.AssetsDir,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	apiServer := testEnv.ControlPlane.GetAPIServer()
	// Explicit paths, because KUBEBUILDER_ASSETS would otherwise take
	// precedence over BinaryAssetsDirectory.
	apiServer.Path = filepath.Join(e.opts.AssetsDir, "kube-apiserver")
	apiServer.CertDir = certDir
	apiServer.Out, apiServer.Err = apiServerLog, apiServerLog
	testEnv.ControlPlane.Etcd = &envtest.Etcd{
		Path:    filepath.Join(e.opts.AssetsDir, "etcd"),
		DataDir: dataDir,
		Out:     etcdLog,
		Err:     etcdLog,
	}
	testEnv.ControlPlane.KubectlPath = e.KubectlPath

	// Start blocks without a context; the timeouts above bound it.
	if _, err := testEnv.Start(); err != nil {
		_ = testEnv.Stop()
		return fmt.Errorf("failed to start the control plane (logs: %s, %s): %w", apiServerLog.Name(), etcdLog.Name(), err)
	}
	e.testEnv = testEnv
	if err := ctx.Err(); err != nil {
		return err
	}

	admin, err := testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("failed to add the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to build the admin kubeconfig: %w", err)
	}
	path := filepath.Join(e.Dir, "admin.kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("failed to write the admin kubeconfig: %w", err)
	}
	e.AdminKubeconfig = path
	return nil
}

// WriteImpersonatingKubeconfig writes a kubeconfig named name.kubeconfig
// into Dir that authenticates as the admin user and impersonates username,
// such as "system:serviceaccount:ns:sa", and returns its path. Requests
// made with it are authorized as username alone; for a ServiceAccount the
// API server adds the groups system:serviceaccounts and
// system:serviceaccounts:<namespace>.
func (e *Env) WriteImpersonatingKubeconfig(name, username string) (string, error) {
	if e.AdminKubeconfig == "" {
		return "", errors.New("the control plane is not started")
	}
	config, err := clientcmd.LoadFromFile(e.AdminKubeconfig)
	if err != nil {
		return "", fmt.Errorf("failed to read the admin kubeconfig: %w", err)
	}
	for _, authInfo := range config.AuthInfos {
		authInfo.Impersonate = username
	}
	path := filepath.Join(e.Dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("failed to write the kubeconfig %s: %w", path, err)
	}
	return path, nil
}

// ServiceAccountUsername returns the user name of a ServiceAccount, as the
// API server authenticates its tokens.
func ServiceAccountUsername(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Close stops every process that Start started, in reverse order, stops
// the control plane and removes the work directory, except the log
// directory when Options.KeepLogs is set. Later calls return the result of
// the first.
func (e *Env) Close() error {
	e.closeOnce.Do(func() {
		var errs []error

		e.mu.Lock()
		processes := e.processes
		e.mu.Unlock()
		for i := len(processes) - 1; i >= 0; i-- {
			if err := processes[i].Stop(); err != nil {
				errs = append(errs, err)
			}
		}

		if e.testEnv != nil {
			if err := e.testEnv.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("failed to stop the control plane: %w", err))
			}
		}
		for _, f := range e.controlPlaneLogs {
			_ = f.Close()
		}

		if err := e.removeWorkDir(); err != nil {
			errs = append(errs, err)
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *Env) removeWorkDir() error {
	if !e.opts.KeepLogs {
		if err := os.RemoveAll(e.Dir); err != nil {
			return fmt.Errorf("failed to remove the work directory: %w", err)
		}
		return nil
	}
	entries, err := os.ReadDir(e.Dir)
	if err != nil {
		return fmt.Errorf("failed to remove the work directory: %w", err)
	}
	var errs []error
	for _, entry := range entries {
		if entry.Name() == filepath.Base(e.LogDir) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(e.Dir, entry.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// createLog creates the log file of a component in LogDir.
func (e *Env) createLog(component string) (*os.File, error) {
	f, err := os.OpenFile(e.LogPath(component), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create the log file of %s: %w", component, err)
	}
	return f, nil
}

// LogPath returns the path of a component's log file.
func (e *Env) LogPath(component string) string {
	return filepath.Join(e.LogDir, component+".log")
}
