package emulator

import (
	"net"
	"net/http"
)

// indexBody is the Storage API index, of which the emulator sends only the
// fields that clients use to find other services.
type indexBody struct {
	API      string        `json:"api"`
	Version  string        `json:"version"`
	Services []serviceBody `json:"services"`
}

// serviceBody is one entry of the index's list of services.
type serviceBody struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// handleIndex sends the Storage API index. It lists the Notification
// service only when that backend is served. The queue and encryption
// entries make clients pick a service by id, and their URLs lead to 404.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	base := s.requestBaseURL(r)
	services := []serviceBody{{ID: "queue", URL: base + "/queue"}}
	if s.opts.Backends.notification() {
		services = append(services, serviceBody{ID: "notification", URL: base + NotificationPath})
	}
	services = append(services, serviceBody{ID: "encryption", URL: base + "/encryption"})

	writeJSON(w, http.StatusOK, indexBody{API: "storage", Version: "v2", Services: services})
}

// requestBaseURL returns the scheme and authority under which the client
// reached the emulator, such as "http://127.0.0.1:41234". It works alike
// for Listen and for Handler mounted in an httptest server with or without
// TLS, because it reads the request rather than the listener.
func (s *Server) requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		// An HTTP/1.0 request may come without a Host header.
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = addr.String()
		}
	}
	return scheme + "://" + host
}
