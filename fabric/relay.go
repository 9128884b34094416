package fabric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// Relay joins one connection of a VM to the fabric listening at addr (a
// loopback address): what r delivers goes to the fabric, what the fabric
// answers goes to w. QEMU's user-mode network runs one relay per guest
// connection (guestfwd=tcp:IP:PORT-cmd:...), so the fabric sees each
// guest connection as one of its own. It returns when the fabric closes
// the connection.
func Relay(ctx context.Context, addr string, r io.Reader, w io.Writer) error {
	if err := CheckLoopback(addr); err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer conn.Close()
	go func() {
		// The guest finished sending: half-close so the fabric sees the
		// end of the request body the way a direct client's would.
		if _, err := io.Copy(conn, r); err == nil {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	if _, err := io.Copy(w, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}
