// Package kvp writes Hyper-V KVP (key-value pair) records to the guest
// pool, /var/lib/hyperv/.kvp_pool_1, from which hv_kvp_daemon hands them
// to the host. Azure reads provisioning reports and diagnostics there even
// when the VM has no network.
//
// The pool is a flat file of fixed-size records: a 512-byte key and a
// 2048-byte value, UTF-8, NUL-padded. Writers append under flock(LOCK_EX),
// as cloud-init and azure-init do (hv_kvp_daemon uses fcntl locks but
// re-reads the file before every operation). The host sees at most 254
// bytes of a key and 1022 of a value, so:
//
//   - a key longer than MaxKeySize is an error (ErrKeyTooLong);
//   - a value longer than MaxValueSize is split, at UTF-8 character
//     boundaries, into chunks of at most MaxValueSize bytes, written in
//     order as records keyed "<key>|0", "<key>|1", ... (cloud-init's
//     suffix); a value that fits keeps its key unchanged.
//
// Writing never creates /var/lib/hyperv: hv_kvp_daemon does, and without
// it the VM is not on Hyper-V, so writes report ErrNoPool instead.
package kvp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/azinit/azinit/internal/sys"
	"golang.org/x/sys/unix"
)

// Pool layout and the limits of what the host sees.
const (
	KeyFieldSize   = 512
	ValueFieldSize = 2048
	RecordSize     = KeyFieldSize + ValueFieldSize
	// MaxRecords is the most records a pool holds (HV_KVP_EXCHANGE_MAX_RECORDS).
	MaxRecords = 1024
	// MaxKeySize and MaxValueSize are the longest key and value, in bytes,
	// that reach the host whole: the kernel's UTF-16 conversion cuts longer
	// ones silently.
	MaxKeySize   = 254
	MaxValueSize = 1022
)

// Dir and PoolPath are where the guest pool lives under the root.
const (
	Dir      = "/var/lib/hyperv"
	PoolPath = Dir + "/.kvp_pool_1"
)

var (
	// ErrNoPool is returned by writes when Dir does not exist: the VM is
	// not on Hyper-V (hv_kvp_daemon creates the directory), and nothing is
	// written. Callers may ignore it.
	ErrNoPool = errors.New("no Hyper-V KVP pool (" + Dir + " does not exist)")
	// ErrKeyTooLong is returned for a key (with its chunk suffix) longer
	// than MaxKeySize bytes.
	ErrKeyTooLong = fmt.Errorf("KVP key longer than %d bytes", MaxKeySize)
	// ErrPoolFull is returned when the records would not fit in the pool's
	// MaxRecords; nothing of the batch is written.
	ErrPoolFull = fmt.Errorf("KVP pool full (%d records)", MaxRecords)
	// ErrInvalid is returned for an empty key, or a key or value that is
	// not valid UTF-8 or holds a NUL byte (which would end it early).
	ErrInvalid = errors.New("invalid KVP key or value")
)

// Record is a key and its value.
type Record struct {
	Key   string
	Value string
}

// Options configures a Pool.
type Options struct {
	// BootTime returns when the running system booted; nil reads it from
	// the host's /proc/stat (HostBootTime).
	BootTime func() (time.Time, error)
}

// Pool appends records to the guest pool under a root. It is safe for
// concurrent use, and with other processes writing the same pool.
type Pool struct {
	root     *sys.Root
	bootTime func() (time.Time, error)
	// staleChecked is set once this Pool has looked for a previous boot's
	// records, which it does before its first write only.
	staleChecked atomic.Bool
}

// Open returns the guest pool under root. It touches nothing: the pool
// file is created by the first write.
func Open(root *sys.Root, opts Options) (*Pool, error) {
	if root == nil {
		return nil, errors.New("kvp: no root")
	}
	p := &Pool{root: root, bootTime: opts.BootTime}
	if p.bootTime == nil {
		p.bootTime = HostBootTime
	}
	return p, nil
}

// Write appends key and value, split into chunks if the value is long.
func (p *Pool) Write(key, value string) error {
	return p.WriteAll([]Record{{Key: key, Value: value}})
}

// WriteAll appends records (long values split into chunks) as one batch:
// under one lock, with one write, all or nothing. Before this Pool's first
// write, a pool last modified before the current boot is emptied: its
// records are a previous boot's.
func (p *Pool) WriteAll(records []Record) error {
	buf, n, err := encode(records)
	if err != nil || n == 0 {
		return err
	}
	if _, err := p.root.Stat(Dir); errors.Is(err, fs.ErrNotExist) {
		return ErrNoPool
	}
	f, err := p.root.OpenFile(PoolPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("kvp: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("kvp: locking %s: %w", PoolPath, err)
	}
	// Closing the file releases the lock.
	if err := p.appendLocked(f, buf, n); err != nil {
		return fmt.Errorf("kvp: writing %s: %w", PoolPath, err)
	}
	return nil
}

// appendLocked appends n encoded records to the locked pool file f.
func (p *Pool) appendLocked(f *os.File, buf []byte, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if !p.staleChecked.Load() {
		boot, err := p.bootTime()
		if err != nil {
			return fmt.Errorf("boot time: %w", err)
		}
		if fi.ModTime().Before(boot) {
			size = 0
		}
	}
	// A writer that died mid-write leaves a torn record; cut it off so the
	// records that follow stay aligned.
	size -= size % RecordSize
	if size != fi.Size() {
		if err := f.Truncate(size); err != nil {
			return err
		}
	}
	if held := int(size / RecordSize); held+n > MaxRecords {
		return fmt.Errorf("%w: it holds %d, %d more do not fit", ErrPoolFull, held, n)
	}
	if _, err := f.Write(buf); err != nil {
		return err
	}
	p.staleChecked.Store(true)
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// encode validates records, splits long values and returns the records as
// pool bytes with their count.
func encode(records []Record) ([]byte, int, error) {
	var out []Record
	for _, r := range records {
		if err := check(r); err != nil {
			return nil, 0, err
		}
		if len(r.Value) <= MaxValueSize {
			out = append(out, r)
			continue
		}
		if len(r.Value) > MaxRecords*MaxValueSize {
			return nil, 0, fmt.Errorf("%w: a %d-byte value for %q needs more records than a pool holds", ErrPoolFull, len(r.Value), r.Key)
		}
		for i, chunk := range chunks(r.Value) {
			key := r.Key + "|" + strconv.Itoa(i)
			if len(key) > MaxKeySize {
				return nil, 0, fmt.Errorf("%w: %q with its chunk suffix", ErrKeyTooLong, truncate(key))
			}
			out = append(out, Record{Key: key, Value: chunk})
		}
	}
	if len(out) > MaxRecords {
		return nil, 0, fmt.Errorf("%w: a batch of %d records", ErrPoolFull, len(out))
	}
	buf := make([]byte, len(out)*RecordSize)
	for i, r := range out {
		rec := buf[i*RecordSize:]
		copy(rec[:KeyFieldSize], r.Key)
		copy(rec[KeyFieldSize:RecordSize], r.Value)
	}
	return buf, len(out), nil
}

func check(r Record) error {
	switch {
	case r.Key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(r.Key) > MaxKeySize:
		return fmt.Errorf("%w: %q", ErrKeyTooLong, truncate(r.Key))
	case !utf8.ValidString(r.Key) || strings.IndexByte(r.Key, 0) >= 0:
		return fmt.Errorf("%w: key %q is not UTF-8 text without NUL", ErrInvalid, truncate(r.Key))
	case !utf8.ValidString(r.Value) || strings.IndexByte(r.Value, 0) >= 0:
		return fmt.Errorf("%w: value for %q is not UTF-8 text without NUL", ErrInvalid, truncate(r.Key))
	}
	return nil
}

// chunks splits valid UTF-8 s into pieces of at most MaxValueSize bytes,
// never inside a character.
func chunks(s string) []string {
	var out []string
	for len(s) > MaxValueSize {
		cut := MaxValueSize
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}

// truncate shortens a key for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// ReadAll decodes a pool: each record's key and value up to its first NUL.
// A trailing partial record is an error naming its offset, returned with
// the whole records before it.
func ReadAll(r io.Reader) ([]Record, error) {
	var out []Record
	buf := make([]byte, RecordSize)
	for off := int64(0); ; off += RecordSize {
		n, err := io.ReadFull(r, buf)
		switch {
		case err == io.EOF:
			return out, nil
		case err == io.ErrUnexpectedEOF:
			return out, fmt.Errorf("kvp: truncated record at offset %d: %d of %d bytes", off, n, RecordSize)
		case err != nil:
			return out, fmt.Errorf("kvp: reading record at offset %d: %w", off, err)
		}
		out = append(out, Record{Key: cstring(buf[:KeyFieldSize]), Value: cstring(buf[KeyFieldSize:])})
	}
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// HostBootTime is when the running kernel booted: "btime" in /proc/stat.
// It is read from the host, not the target root, since it is the running
// system's boot that makes pool records stale.
func HostBootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	return parseBootTime(b)
}

func parseBootTime(stat []byte) (time.Time, error) {
	for line := range strings.Lines(string(stat)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || sec <= 0 {
				return time.Time{}, fmt.Errorf("/proc/stat: bad btime %q", strings.TrimSpace(v))
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat: no btime line")
}
