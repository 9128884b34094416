// Package media finds the Azure provisioning media (a CD-ROM holding ovf-env.xml) and reads it in
// user space, without mounting: UDF through internal/udf first, then ISO9660.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/azinit/azinit/internal/httpx"
	"github.com/azinit/azinit/internal/udf"
)

var (
	// ErrNoMedia means no CD-ROM drive held a disc within the wait.
	ErrNoMedia = errors.New("no provisioning media")
	// ErrNoOVF means a disc was read but holds no ovf-env.xml.
	ErrNoOVF = errors.New("no ovf-env.xml on the media")
)

// maxFileSize bounds what is read from the media: Azure limits custom data to 64 KiB and an OVF
// environment is a few kilobytes.
const maxFileSize = 16 << 20

// Media is what the provisioning media carry. OVF and CustomData are secrets (a password, custom
// data): String, GoString and LogValue show only their sizes.
type Media struct {
	Device     string // the device or image file read
	Format     string // "udf" or "iso9660"
	OVF        []byte // ovf-env.xml as found
	CustomData []byte // CustomData.bin, when present
}

func (m *Media) String() string {
	return fmt.Sprintf("media{device: %s, format: %s, ovf: %d bytes, custom data: %d bytes}", m.Device, m.Format, len(m.OVF), len(m.CustomData))
}

// GoString keeps %#v from printing the secrets.
func (m *Media) GoString() string { return m.String() }

// LogValue keeps slog from printing the secrets.
func (m *Media) LogValue() slog.Value {
	return slog.GroupValue(slog.String("device", m.Device), slog.String("format", m.Format),
		slog.Int("ovf_bytes", len(m.OVF)), slog.Int("custom_data_bytes", len(m.CustomData)))
}

// Options say where to look for the media.
type Options struct {
	// Source is "auto" (or empty): the CD-ROM drives; else a device or image file to read.
	Source string
	// Wait bounds how long auto mode waits for a disc; 0 looks once.
	Wait time.Duration
	// Poll is the interval between looks in auto mode; 0 means one second.
	Poll time.Duration
	Log  *slog.Logger

	// The system, replaceable in tests; the zero values are the real one.
	SysBlock    string                                           // the block class directory, /sys/class/block
	DevDir      string                                           // where device nodes are, /dev
	DriveStatus func(device string) (int, error)                 // CDROM_DRIVE_STATUS of a device
	Sleep       func(ctx context.Context, d time.Duration) error // httpx.Sleep
}

func (o Options) withDefaults() Options {
	if o.Source == "" {
		o.Source = "auto"
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SysBlock == "" {
		o.SysBlock = "/sys/class/block"
	}
	if o.DevDir == "" {
		o.DevDir = "/dev"
	}
	if o.DriveStatus == nil {
		o.DriveStatus = driveStatus
	}
	if o.Sleep == nil {
		o.Sleep = httpx.Sleep
	}
	return o
}

// Read finds and reads the provisioning media. In auto mode it considers only CD-ROM drives with a
// disc in them (the drive status decides, so that a disk the user attached is never read), and
// waits up to opts.Wait for one to hold the media. It returns an error wrapping ErrNoMedia when no
// drive held a disc in that time, and the drives' errors (ErrNoOVF among them) when the discs
// present are not provisioning media.
func Read(ctx context.Context, opts Options) (*Media, error) {
	opts = opts.withDefaults()
	if opts.Source != "auto" {
		m, err := ReadPath(opts.Source)
		if err == nil {
			opts.Log.Info("read provisioning media", "media", m)
		}
		return m, err
	}
	var waited time.Duration
	for {
		m, failed, waiting := lookOnce(opts)
		switch {
		case m != nil:
			opts.Log.Info("read provisioning media", "media", m)
			return m, nil
		case len(waiting) == 0: // every drive holds a disc: waiting changes nothing
			return nil, failed
		case waited >= opts.Wait && len(failed) > 0:
			return nil, failed
		case waited >= opts.Wait:
			return nil, fmt.Errorf("media: %w: no CD-ROM drive held a disc within %v: %w", ErrNoMedia, opts.Wait, waiting)
		}
		d := min(opts.Poll, opts.Wait-waited)
		opts.Log.Debug("waiting for provisioning media", "waited", waited, "next", d, "reason", waiting)
		if err := opts.Sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("media: waiting for a disc: %w", err)
		}
		waited += d
	}
}

// CD-ROM drive status (linux/cdrom.h).
const (
	cdsNoInfo        = 0
	cdsNoDisc        = 1
	cdsTrayOpen      = 2
	cdsDriveNotReady = 3
	cdsDiscOK        = 4
	deviceTypeCDROM  = "5" // SCSI peripheral device type of a CD/DVD drive
)

func statusText(s int) string {
	switch s {
	case cdsNoInfo:
		return "drive status unknown"
	case cdsNoDisc:
		return "no disc"
	case cdsTrayOpen:
		return "tray open"
	case cdsDriveNotReady:
		return "drive not ready"
	}
	return fmt.Sprintf("drive status %d", s)
}

// lookOnce reads the CD-ROM drives that hold a disc and returns the media found, or the errors of
// the drives whose disc is not provisioning media (failed) and why the others could not be read
// yet (waiting).
func lookOnce(opts Options) (m *Media, failed, waiting errorList) {
	names, err := cdroms(opts.SysBlock)
	if err != nil {
		return nil, nil, errorList{err}
	}
	if len(names) == 0 {
		return nil, nil, errorList{fmt.Errorf("no CD-ROM drive in %s", opts.SysBlock)}
	}
	for _, name := range names {
		dev := opts.DevDir + "/" + name
		status, err := opts.DriveStatus(dev)
		if err == nil && status != cdsDiscOK {
			err = errors.New(statusText(status))
		}
		if err != nil {
			waiting = append(waiting, fmt.Errorf("%s: %w", dev, err))
			continue
		}
		m, err := ReadPath(dev)
		if err == nil {
			return m, nil, nil
		}
		failed = append(failed, err)
	}
	return nil, failed, waiting
}

// errorList is the errors of several drives, on one line.
type errorList []error

func (l errorList) Error() string {
	s := make([]string, len(l))
	for i, err := range l {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (l errorList) Unwrap() []error { return l }

// cdroms lists the CD-ROM drives in the block class directory: sr* and the devices of SCSI
// type 5.
func cdroms(sysBlock string) ([]string, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "sr") {
			b, err := os.ReadFile(sysBlock + "/" + name + "/device/type")
			if err != nil || strings.TrimSpace(string(b)) != deviceTypeCDROM {
				continue
			}
		}
		out = append(out, name)
	}
	return out, nil
}

// ReadPath reads the provisioning media in a device or image file.
func ReadPath(path string) (*Media, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	// Stat reports no size for a block device; seeking to the end does.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("media: %s: finding the size: %w", path, err)
	}
	m, err := ReadImage(f, size)
	if err != nil {
		return nil, fmt.Errorf("media: %s: %w", path, err)
	}
	m.Device = path
	return m, nil
}

// ReadImage reads the provisioning media in r (size bytes): UDF first, then ISO9660.
func ReadImage(r io.ReaderAt, size int64) (*Media, error) {
	fsys, udfErr := udf.Open(r, size)
	if udfErr == nil {
		return readUDF(fsys)
	}
	m, isoErr := readISO(r, size)
	if isoErr == nil {
		return m, nil
	}
	if errors.Is(udfErr, udf.ErrNotUDF) {
		return nil, fmt.Errorf("not UDF; %w", isoErr)
	}
	return nil, fmt.Errorf("%w; %w", udfErr, isoErr)
}

// rootFile is a file in the root directory of the media.
type rootFile struct {
	name string
	size int64
	read func() ([]byte, error)
}

func readUDF(fsys *udf.FS) (*Media, error) {
	entries, err := fsys.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var files []rootFile
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() {
			files = append(files, rootFile{name: e.Name(), size: info.Size(), read: func() ([]byte, error) { return fsys.ReadFile(e.Name()) }})
		}
	}
	return collect("udf", files)
}

// collect picks ovf-env.xml and CustomData.bin among the root files and reads them.
func collect(format string, files []rootFile) (*Media, error) {
	ovf := find(files, "ovf-env.xml")
	if ovf == nil {
		var names []string
		for _, f := range files[:min(len(files), 10)] {
			names = append(names, f.name)
		}
		return nil, fmt.Errorf("%w (%s root holds %d files: %q)", ErrNoOVF, format, len(files), names)
	}
	m := &Media{Format: format}
	var err error
	if m.OVF, err = readRootFile(ovf); err != nil {
		return nil, err
	}
	// CUSTOMDA.BIN is the ISO9660 8.3 form.
	if cd := find(files, "customdata.bin", "customda.bin"); cd != nil {
		if m.CustomData, err = readRootFile(cd); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func readRootFile(f *rootFile) ([]byte, error) {
	if f.size > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", f.name, f.size, maxFileSize)
	}
	b, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.name, err)
	}
	return b, nil
}

// find returns the file named like one of want (lower case): an exact name first, else one that
// matches as Azure and genisoimage write names (any case, '_' for '-', a ";1" version suffix).
func find(files []rootFile, want ...string) *rootFile {
	for _, f := range files {
		if slices.Contains(want, f.name) {
			return &f
		}
	}
	for _, f := range files {
		if slices.Contains(want, normalize(f.name)) {
			return &f
		}
	}
	return nil
}

func normalize(name string) string {
	if i := strings.LastIndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimSuffix(name, ".")
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}
