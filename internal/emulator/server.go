package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default delivery settings, the values Keboola uses for real deliveries.
const (
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultDeliveryRetries = 3
	DefaultDeliveryBackoff = time.Second
)

// TimeFormat is the layout of every timestamp the Storage API sends, for
// example "2024-01-15T10:35:01+0000". The emulator always sends UTC.
const TimeFormat = "2006-01-02T15:04:05-0700"

// Options configures a Server. The zero value is a strict emulator that
// serves both the webhooks endpoint and the Notification service. Webhook
// URLs must be https, and webhooks are stored exactly as sent.
type Options struct {
	// Backends selects whether the emulator serves the webhooks endpoint of
	// the Storage API, the Notification service, or both (the zero value).
	Backends Backends

	// AllowHTTPLoopback accepts http:// webhook URLs whose host is a loopback
	// host (localhost, 127.0.0.0/8 or ::1), for webhooks and for webhook
	// recipients of subscriptions. Other http URLs stay invalid.
	AllowHTTPLoopback bool

	// NormalizeWebhooks stores the events of a webhook sorted and adds a
	// trailing "/" to a URL with an empty path, as a real API might. Tests
	// use it to prove that the operator does not update a webhook in a loop
	// when the API returns it in a different but equivalent form.
	NormalizeWebhooks bool

	// DeliveryTimeout limits each delivery attempt. Zero means 30s.
	DeliveryTimeout time.Duration

	// DeliveryRetries is how many times a failed delivery is retried, so a
	// delivery makes at most DeliveryRetries+1 attempts. Zero means 3; a
	// negative value means no retries.
	DeliveryRetries int

	// DeliveryBackoff is the wait before the first retry. Each further retry
	// waits twice as long as the one before. Zero means 1s.
	DeliveryBackoff time.Duration

	// DeliveryTLSConfig is used for deliveries to https receivers, for
	// example the client TLS configuration of an httptest.NewTLSServer. Nil
	// means the system roots, which a test receiver's certificate fails.
	DeliveryTLSConfig *tls.Config

	// Latency is added to every request to the Storage API or the
	// Notification service. Admin requests under /_emulator/ are not
	// delayed.
	Latency time.Duration

	// MaxConcurrentPerProject is how many requests of one project, the
	// project of the request's token, the emulator handles at once, those
	// to the Storage API and the Notification service together. A request
	// beyond the limit waits until one of the project's requests finishes,
	// and its Latency starts only then, so a project handles at most
	// MaxConcurrentPerProject/Latency requests per second.
	// Requests without a known token are not limited. Zero means no limit.
	MaxConcurrentPerProject int

	// OwnerIDAsString sends owner.id in the token verification response as a
	// JSON string instead of a number, as some Keboola stacks do.
	OwnerIDAsString bool

	// SecretAsToken sends the signing secret in a create response under the
	// field "token" instead of "secret". Clients accept both names.
	SecretAsToken bool

	// Logger receives one debug record per Storage API request and records
	// about deliveries. Nil discards them. The emulator logs token ids but
	// never tokens, signing secrets or request bodies.
	Logger *slog.Logger
}

// Server is an emulator of the Keboola Storage API and Notification
// service. All its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	delivery *http.Client

	mu            sync.Mutex
	projects      map[int64]Project
	tokens        map[string]Token // keyed by the token string
	nextTokenID   int64
	webhooks      map[string]*StoredWebhook // keyed by id, across projects
	nextWebhookID int64
	nextEventID   int64
	faults        []activeFault
	nextFaultID   int
	requests      requestLog
	deliveries    deliveryLog
	limiter       *projectLimiter

	// subscriptions of the Notification service are keyed by id, across
	// projects.
	subscriptions      map[string]*StoredSubscription
	nextSubscriptionID int64

	// httpServer and listener are set by Start or Listen.
	httpServer *http.Server
	listener   net.Listener
}

// New returns a Server with no projects, tokens, webhooks or subscriptions.
// It serves nothing until Start or Listen is called, or until Handler is
// mounted in another server.
func New(opts Options) *Server {
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if opts.DeliveryRetries == 0 {
		opts.DeliveryRetries = DefaultDeliveryRetries
	}
	if opts.DeliveryRetries < 0 {
		opts.DeliveryRetries = 0
	}
	if opts.DeliveryBackoff <= 0 {
		opts.DeliveryBackoff = DefaultDeliveryBackoff
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return &Server{
		opts:        opts,
		log:         logger,
		delivery:    newDeliveryClient(opts.DeliveryTLSConfig),
		projects:    make(map[int64]Project),
		tokens:      make(map[string]Token),
		nextTokenID: 1000,
		webhooks:    make(map[string]*StoredWebhook),
		nextEventID: 100000000,
		requests:    newRequestLog(maxRequestLogEntries),
		deliveries:  deliveryLog{max: maxDeliveryLogEntries},
		limiter:     newProjectLimiter(opts.MaxConcurrentPerProject),

		subscriptions:      make(map[string]*StoredSubscription),
		nextSubscriptionID: firstSubscriptionID - 1,
	}
}

// Start listens on a random port of 127.0.0.1 and serves in the background
// until Close.
func (s *Server) Start() error {
	return s.Listen("127.0.0.1:0")
}

// Listen listens on addr and serves in the background until Close or
// Shutdown. It rejects an address whose host is not a loopback address or
// "localhost", because the emulator must not be reachable from other
// machines.
func (s *Server) Listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("invalid listen address %q: the host must be a loopback address such as 127.0.0.1, ::1 or localhost", addr)
	}
	if isLocalhostName(host) {
		// Listen on the address itself rather than look the name up.
		host = "127.0.0.1"
	}

	s.mu.Lock()
	started := s.httpServer != nil
	s.mu.Unlock()
	if started {
		return errors.New("emulator is already listening: create another Server with New")
	}

	listener, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", addr, err)
	}
	// Check the address actually bound, whatever the host string was.
	if tcpAddr, ok := listener.Addr().(*net.TCPAddr); !ok || !tcpAddr.IP.IsLoopback() {
		_ = listener.Close()
		return fmt.Errorf("invalid listen address %q: it resolved to the non-loopback address %s", addr, listener.Addr())
	}

	httpServer := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}

	s.mu.Lock()
	if s.httpServer != nil {
		s.mu.Unlock()
		_ = listener.Close()
		return errors.New("emulator is already listening: create another Server with New")
	}
	s.httpServer = httpServer
	s.listener = listener
	s.mu.Unlock()

	go func() {
		if err := httpServer.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("Emulator stopped serving", "error", err)
		}
	}()
	return nil
}

// URL returns the base URL of the Storage API, such as
// "http://127.0.0.1:41234", or "" before Start or Listen.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// NotificationURL returns the base URL of the Notification service, such as
// "http://127.0.0.1:41234/notification", or "" before Start or Listen. The
// Storage API index sends this URL to clients of URL, unless Backends is
// BackendsWebhooks.
func (s *Server) NotificationURL() string {
	base := s.URL()
	if base == "" {
		return ""
	}
	return base + NotificationPath
}

// Handler returns the handler of the Storage API, of the Notification
// service under NotificationPath and of the admin API under /_emulator/, for
// mounting in a server of the caller's own.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Close stops the server at once and closes all its connections. Deliveries
// in progress are not cancelled: they end with the context given to Fire.
func (s *Server) Close() {
	s.mu.Lock()
	httpServer := s.httpServer
	s.mu.Unlock()
	if httpServer != nil {
		_ = httpServer.Close()
	}
	s.delivery.CloseIdleConnections()
}

// Shutdown stops the server gracefully: it stops accepting connections and
// waits for requests in progress to finish or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	httpServer := s.httpServer
	s.mu.Unlock()
	defer s.delivery.CloseIdleConnections()
	if httpServer == nil {
		return nil
	}
	return httpServer.Shutdown(ctx)
}

// serveHTTP routes admin requests to the admin API and everything else to
// the Storage API.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(adminPrefix, "/") || strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	s.serveStorage(w, r)
}

// isLoopbackHost reports whether host, a host name or IP address without a
// port, is "localhost" or a loopback IP address (127.0.0.0/8 or ::1). It
// never resolves a name.
func isLoopbackHost(host string) bool {
	if isLocalhostName(host) {
		return true
	}
	host = strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
	// A zone such as "%lo" does not change whether the address is loopback.
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sleepContext waits for d or until ctx ends, and reports whether the whole
// wait passed.
func sleepContext(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isLocalhostName reports whether host is the name "localhost", with or
// without a trailing dot.
func isLocalhostName(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}
