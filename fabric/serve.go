package fabric

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// request is one request being handled: the HTTP request with its body
// read, the goal state it is answered from, and its record entry, where
// handlers note what the request carried (Body) and why it was rejected
// (Error).
type request struct {
	r     *http.Request
	body  []byte
	st    *state
	entry *Entry
}

// reply is a handler's answer, kept whole so that faults can mangle it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func xmlReply(b []byte) reply {
	return reply{status: http.StatusOK, header: http.Header{"Content-Type": {"text/xml; charset=utf-8"}}, body: b}
}

func jsonReply(status int, b []byte) reply {
	return reply{status: status, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: b}
}

func textReply(status int, msg string) reply {
	return reply{status: status, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte(msg + "\n")}
}

// reject answers a request the fabric refuses with status and notes why.
func (q *request) reject(status int, err error) reply {
	q.entry.Error = err.Error()
	return textReply(status, err.Error())
}

func methodNotAllowed(allow string) reply {
	rep := textReply(http.StatusMethodNotAllowed, "method not allowed; use "+allow)
	rep.header.Set("Allow", allow)
	return rep
}

func notFound(q *request) reply {
	return textReply(http.StatusNotFound, "azinit-fabric: no such resource: "+q.r.Method+" "+q.r.URL.RequestURI())
}

// garbage is what a garbage fault answers: neither XML nor JSON nor text.
const garbage = "\x00\xff\xfeazinit-fabric garbage <<<{{{ not the document you asked for\x00"

// handler serves one listener: it reads the request, applies the next
// fault for its kind, answers through route, and records the exchange. The
// record entry is added before the client can see the answer, so a client
// that got its answer finds its request in the record.
func (f *Fabric) handler(server Server, route func(*request) reply) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &Entry{Time: time.Now().UTC(), Server: server, Method: r.Method, Path: r.URL.RequestURI(), Kind: classify(server, r)}
		// Reading the whole body also lets the server notice when the
		// client goes away, which ends a timeout fault.
		body, readErr := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		q := &request{r: r, body: body, entry: e}
		answer := func() reply {
			if readErr != nil {
				return q.reject(http.StatusBadRequest, fmt.Errorf("reading the request body: %w", readErr))
			}
			q.st = f.state.Load()
			return route(q)
		}
		send := func(rep reply, how func(http.ResponseWriter, reply)) {
			e.Status = rep.status
			f.rec.add(*e)
			how(w, rep)
		}
		fault, faulted := f.faults.take(e.Kind)
		if !faulted {
			send(answer(), write)
			return
		}
		e.Fault = fault.action()
		switch fault.Action {
		case ActionStatus:
			send(textReply(fault.Status, "azinit-fabric: injected fault "+fault.String()), write)
		case ActionTimeout:
			f.rec.add(*e)
			f.hold(r, MaxHold)
			abort(w, false)
		case ActionReset:
			f.rec.add(*e)
			abort(w, true)
		case ActionSlow:
			if f.hold(r, fault.Delay) {
				send(answer(), write)
				return
			}
			f.rec.add(*e) // the client gave up while we waited
			abort(w, false)
		case ActionTruncate:
			send(answer(), truncate)
		case ActionGarbage:
			rep := answer()
			rep.status, rep.body = http.StatusOK, []byte(garbage)
			send(rep, write)
		}
	})
}

// hold waits d, or until the client goes away or the fabric closes; it
// reports whether the whole d passed.
func (f *Fabric) hold(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-f.closing:
	}
	return false
}

func write(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	w.Write(rep.body) // a client that went away is not the fabric's problem
}

// abort closes the connection without an answer; with reset, by a TCP RST
// (SO_LINGER 0) rather than a FIN.
func abort(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	if tcp, ok := conn.(*net.TCPConn); ok && reset {
		tcp.SetLinger(0) // if this fails, a FIN still fails the request
	}
	conn.Close()
}

// truncate announces rep's full length, sends half of the body and closes
// the connection. An empty body is announced as one byte, so the answer is
// short either way.
func truncate(w http.ResponseWriter, rep reply) {
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	h := rep.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", strconv.Itoa(max(len(rep.body), 1)))
	h.Set("Connection", "close")
	// Write errors end the connection just the same.
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", rep.status, http.StatusText(rep.status))
	h.Write(bw)
	bw.WriteString("\r\n")
	bw.Write(rep.body[:len(rep.body)/2])
	bw.Flush()
}
