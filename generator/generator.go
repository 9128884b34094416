// Package generator is azinit-generator, the systemd generator that decides
// on every boot, before most of userspace, whether azinit runs: it reads the
// kernel command line, a marker file, the configuration and the DMI chassis
// asset tag, then links azinit.target into the boot and keeps co-installed
// agents (cloud-init, WALinuxAgent) from provisioning a second time. It
// reads a handful of small files and starts nothing: Gather reads, Decide
// is pure, Write writes.
package generator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/sys"
)

// Paths under the target root.
const (
	// StatePath records the last decision (State) for azinit status.
	StatePath = "/run/azinit/generator.json"
	// WaagentConfPath is the waagent.conf a WALinuxAgent kept for
	// extensions runs with: /etc/waagent.conf with provisioning disabled.
	WaagentConfPath = "/run/azinit/waagent.conf"
	// DisabledMarker turns azinit off while it exists.
	DisabledMarker = "/etc/azinit/azinit.disabled"
	// InitrdRelease exists only in an initramfs.
	InitrdRelease = "/etc/initrd-release"
	// CmdlinePath is the kernel command line.
	CmdlinePath = "/proc/cmdline"
)

// AzureAssetTag is the DMI chassis asset tag of every Azure VM.
const AzureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// azinit's units the generator looks at.
const (
	// TargetUnit starts azinit in the real root.
	TargetUnit = "azinit.target"
	// InitrdUnit starts azinit in the initramfs.
	InitrdUnit = "azinit-initrd.service"
	// ExtensionsUnit runs the extensions; an admin masks it to leave them
	// to WALinuxAgent.
	ExtensionsUnit = "azinit-extensions.service"
)

// unitDirs are where installed unit files are looked for, the admin's first.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// cloudInitUnits are cloud-init's boot stages: the four classic units, and
// cloud-init-main and cloud-init-network, which replace cloud-init.service
// in cloud-init 24 and later.
var cloudInitUnits = []string{
	"cloud-init-main.service", "cloud-init-local.service", "cloud-init-network.service",
	"cloud-init.service", "cloud-config.service", "cloud-final.service",
}

// waagentUnits are WALinuxAgent's unit on Debian/Ubuntu and on RHEL/SUSE.
var waagentUnits = []string{"walinuxagent.service", "waagent.service"}

// Inputs is everything the decision depends on, as Gather read it.
type Inputs struct {
	// Cmdline is what the kernel command line says (ParseCmdline):
	// "enabled", "disabled" or "".
	Cmdline string
	// Marker reports that DisabledMarker exists.
	Marker bool
	// Platform is datasource.platform: auto, azure or none.
	Platform string
	// ConfigErr is why the configuration did not load; Platform is then
	// ignored and the platform detected.
	ConfigErr error
	// AssetTag is the DMI chassis asset tag, trimmed; AssetTagErr says why
	// it could not be read.
	AssetTag    string
	AssetTagErr error
	// Initrd reports that the root is an initramfs.
	Initrd bool
	// Units are the installed units the generator deals with, by name.
	Units map[string]Unit
	// ExtensionsMasked reports that the admin masked ExtensionsUnit, so
	// that WALinuxAgent runs the extensions.
	ExtensionsMasked bool
	// WaagentConf is /etc/waagent.conf (nil when absent); WaagentConfErr
	// says why it could not be read.
	WaagentConf    []byte
	WaagentConfErr error
	// Warnings are inputs that could not be read but did not stop Gather.
	Warnings []string
}

// Unit is an installed unit file.
type Unit struct {
	// Path is the unit file's root-absolute path.
	Path string
	// Masked reports that it is a symlink to /dev/null.
	Masked bool
	// Data is the file, read only for WALinuxAgent's units when they get a
	// drop-in; Err says why it could not be read.
	Data []byte
	Err  error
}

// State is what StatePath records of one boot's decision.
type State struct {
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
	Initrd  bool   `json:"initrd"`
	// Platform is "azure" when the configuration or the DMI data says the
	// VM is on Azure, else "".
	Platform string `json:"platform"`
	// Masked are the units masked for this boot.
	Masked []string `json:"masked"`
	// Warnings are what went wrong without changing the decision.
	Warnings []string  `json:"warnings,omitempty"`
	Time     time.Time `json:"time"`
}

// Decision is Decide's answer: the State and the outputs that carry it out.
type Decision struct {
	State
	// Links are the symlinks to make in the normal generator directory, in
	// order: masks first, the unit that starts azinit last.
	Links []Link
	// DropIns are the unit drop-ins to write there.
	DropIns []File
	// WaagentConf is the content of WaagentConfPath, nil for none.
	WaagentConf []byte
}

// Link is a symlink Name (relative to the generator directory) → Target.
type Link struct{ Name, Target string }

// File is a file Name (relative to the generator directory) holding Data.
type File struct {
	Name string
	Data []byte
}

// Run is one generator run: it loads the configuration, gathers the inputs
// under root, decides, writes the outputs (the units into normalDir) and
// logs the decision on one line.
func Run(root *sys.Root, normalDir string, log *slog.Logger, now time.Time) (State, error) {
	cfg, cfgErr := config.Load(root, "")
	if cfgErr != nil {
		def := config.Default()
		cfg = &def
	}
	st, err := Write(root, normalDir, Decide(Gather(root, cfg, cfgErr)), now)
	for _, w := range st.Warnings {
		log.Warn(w)
	}
	msg := "azinit disabled"
	if st.Enabled {
		msg = "azinit enabled"
	}
	log.Info(msg, "reason", st.Reason, "initrd", st.Initrd, "platform", st.Platform, "masked", st.Masked)
	return st, err
}

// Gather reads what Decide needs under root. cfg is the configuration to
// use; a non-nil cfgErr says why the configuration did not load (cfg is
// then the default). The DMI data is read from cfg's sysfs, a host path.
func Gather(root *sys.Root, cfg *config.Config, cfgErr error) Inputs {
	in := Inputs{Platform: cfg.Datasource.Platform, ConfigErr: cfgErr}
	switch b, err := root.ReadFile(CmdlinePath); {
	case err == nil:
		in.Cmdline = ParseCmdline(b)
	case !errors.Is(err, fs.ErrNotExist):
		in.Warnings = append(in.Warnings, fmt.Sprintf("reading %s: %v", CmdlinePath, err))
	}
	in.Marker = exists(root, DisabledMarker)
	in.Initrd = exists(root, InitrdRelease)
	tagFile := filepath.Join(cfg.Datasource.Azure.Sysfs, "class/dmi/id/chassis_asset_tag")
	if b, err := os.ReadFile(tagFile); err != nil {
		in.AssetTagErr = err
	} else {
		in.AssetTag = strings.TrimSpace(string(b))
	}
	if in.Initrd {
		in.Units = installedUnits(root, InitrdUnit)
		return in
	}
	in.Units = installedUnits(root, slices.Concat([]string{TargetUnit, ExtensionsUnit}, cloudInitUnits, waagentUnits)...)
	in.ExtensionsMasked = in.Units[ExtensionsUnit].Masked
	if !in.ExtensionsMasked {
		return in
	}
	for _, name := range waagentUnits {
		if u, ok := in.Units[name]; ok {
			u.Data, u.Err = root.ReadFile(u.Path)
			in.Units[name] = u
		}
	}
	in.WaagentConf, in.WaagentConfErr = root.ReadFile(config.WaagentConfig)
	if errors.Is(in.WaagentConfErr, fs.ErrNotExist) {
		in.WaagentConfErr = nil
	}
	return in
}

// installedUnits finds the unit files of names in unitDirs: the first
// directory holding one wins. Each directory is opened once.
func installedUnits(root *sys.Root, names ...string) map[string]Unit {
	units := map[string]Unit{}
	for _, dir := range unitDirs {
		d, err := root.OpenRoot(dir)
		if err != nil {
			continue
		}
		for _, name := range names {
			if _, ok := units[name]; ok {
				continue
			}
			_, err := d.Stat(name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			u := Unit{Path: path.Join(dir, name)}
			if err != nil {
				// The root does not follow a mask's symlink to /dev/null.
				target, _ := d.Readlink(name)
				u.Masked = target == "/dev/null"
			}
			units[name] = u
		}
		d.Close()
	}
	return units
}

// exists reports whether name is there: anything but "does not exist"
// counts, such as a symlink to /dev/null that the root cannot follow.
func exists(root *sys.Root, name string) bool {
	_, err := root.Stat(name)
	return !errors.Is(err, fs.ErrNotExist)
}

// ParseCmdline returns what the kernel command line cmdline says of
// azinit: "disabled" when any word is azinit=disabled (the units'
// ConditionKernelCommandLine=!azinit=disabled matches any, so the
// generator must agree), else "enabled" for azinit=enabled, else "". It
// splits the
// first line into words as systemd does (ConditionKernelCommandLine):
// whitespace separates words, single or double quotes group, a backslash is
// an ordinary character.
func ParseCmdline(cmdline []byte) string {
	line, _, _ := bytes.Cut(cmdline, []byte("\n"))
	var said string
	for _, w := range cmdlineWords(string(line)) {
		switch w {
		case "azinit=disabled":
			return "disabled"
		case "azinit=enabled":
			said = "enabled"
		}
	}
	return said
}

// cmdlineWords splits s into words: whitespace separates them outside
// quotes, quotes are removed, and an unterminated quote runs to the end.
func cmdlineWords(s string) []string {
	var (
		words  []string
		word   strings.Builder
		inWord bool
		quote  byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// Decide turns the inputs into the decision; the first rule that applies
// wins: azinit=disabled, the marker, azinit=enabled, datasource.platform
// none or azure, then the DMI chassis asset tag. When azinit runs in the
// real root, cloud-init's units and WALinuxAgent's are masked for this boot;
// WALinuxAgent gets a drop-in that disables its provisioning instead when
// the admin masked azinit-extensions so that it runs the extensions.
func Decide(in Inputs) Decision {
	d := Decision{State: State{Initrd: in.Initrd, Warnings: slices.Clone(in.Warnings)}}
	if in.ConfigErr != nil {
		// A broken configuration must never keep a VM from being
		// provisioned; the stages report it themselves.
		d.Warnings = append(d.Warnings, fmt.Sprintf("the configuration did not load, detecting the platform: %v", in.ConfigErr))
		in.Platform = "auto"
	}
	if in.Platform == "azure" || (in.Platform == "auto" && in.AssetTag == AzureAssetTag) {
		d.Platform = "azure"
	}
	d.Enabled, d.Reason = decide(in)
	if !d.Enabled {
		return d
	}
	start, wants := TargetUnit, "multi-user.target.wants"
	if in.Initrd {
		start, wants = InitrdUnit, "initrd.target.wants"
	}
	u, ok := in.Units[start]
	switch {
	case !ok:
		d.Enabled, d.Reason = false, start+" is not installed"
		return d
	case u.Masked:
		d.Enabled, d.Reason = false, start+" is masked"
		return d
	}
	if !in.Initrd {
		d.keepAgentsAway(in)
	}
	d.Links = append(d.Links, Link{Name: wants + "/" + start, Target: u.Path})
	return d
}

func decide(in Inputs) (bool, string) {
	switch {
	case in.Cmdline == "disabled":
		return false, "kernel command line azinit=disabled"
	case in.Marker:
		return false, DisabledMarker + " exists"
	case in.Cmdline == "enabled":
		return true, "kernel command line azinit=enabled"
	case in.Platform == "none":
		return false, "datasource.platform is none"
	case in.Platform == "azure":
		return true, "datasource.platform is azure"
	case in.AssetTagErr != nil:
		return false, fmt.Sprintf("no DMI chassis asset tag: %v", in.AssetTagErr)
	case in.AssetTag == AzureAssetTag:
		return true, "the DMI chassis asset tag is Azure's"
	}
	return false, fmt.Sprintf("chassis asset tag %q is not Azure's", in.AssetTag)
}

// keepAgentsAway masks the co-installed agents' units, or gives
// WALinuxAgent its drop-in; units the admin masked are left alone.
func (d *Decision) keepAgentsAway(in Inputs) {
	for _, name := range cloudInitUnits {
		if u, ok := in.Units[name]; ok && !u.Masked {
			d.mask(name)
		}
	}
	for _, name := range waagentUnits {
		u, ok := in.Units[name]
		switch {
		case !ok || u.Masked:
		case !in.ExtensionsMasked:
			// azinit-extensions runs the extensions: two agents must never
			// run handlers or upload status concurrently.
			d.mask(name)
		default:
			if err := d.keepWaagent(name, u, in); err != nil {
				d.Warnings = append(d.Warnings, fmt.Sprintf("%s: %v; masked instead", name, err))
				d.mask(name)
			}
		}
	}
}

func (d *Decision) mask(name string) {
	d.Links = append(d.Links, Link{Name: name, Target: "/dev/null"})
	d.Masked = append(d.Masked, name)
}

// keepWaagent lets WALinuxAgent run, for the extensions only: its unit
// gets a drop-in that starts it after azinit-network with WaagentConfPath.
func (d *Decision) keepWaagent(name string, u Unit, in Inputs) error {
	if u.Err != nil {
		return u.Err
	}
	if in.WaagentConfErr != nil {
		return in.WaagentConfErr
	}
	dropIn, err := WaagentDropIn(u.Data)
	if err != nil {
		return fmt.Errorf("%s: %w", u.Path, err)
	}
	d.DropIns = append(d.DropIns, File{Name: name + ".d/50-azinit.conf", Data: dropIn})
	d.WaagentConf = DisableProvisioning(in.WaagentConf)
	return nil
}

// dropInComment heads WaagentDropIn's drop-in.
const dropInComment = `# Written by azinit-generator at boot. azinit provisions this VM and
# azinit-extensions.service is masked, so WALinuxAgent runs the VM
# extensions only: it starts after azinit's network stage, with a copy of
# /etc/waagent.conf that says Provisioning.Agent=disabled.

`

// WaagentDropIn is the drop-in for WALinuxAgent's unit, read from
// unitFile: it starts the agent after azinit-network.service with its
// ExecStart plus -configuration-path:WaagentConfPath.
func WaagentDropIn(unitFile []byte) ([]byte, error) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(unitFile))
	if err != nil {
		return nil, fmt.Errorf("parsing the unit: %w", err)
	}
	var exec string
	for _, o := range opts {
		// An empty ExecStart= resets the list; a service of WALinuxAgent's
		// type has one command, the last.
		if o.Section == "Service" && o.Name == "ExecStart" {
			exec = o.Value
		}
	}
	if exec == "" {
		return nil, errors.New("no ExecStart in [Service]")
	}
	var b bytes.Buffer
	b.WriteString(dropInComment)
	io.Copy(&b, unit.Serialize([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "After", "azinit-network.service"),
		unit.NewUnitOption("Service", "ExecStart", ""),
		unit.NewUnitOption("Service", "ExecStart", exec+" -configuration-path:"+WaagentConfPath),
	}))
	return b.Bytes(), nil
}

// DisableProvisioning returns waagent.conf with Provisioning.Agent=disabled:
// each Provisioning.Agent line is replaced, or one is appended; every
// other line and comment is kept.
func DisableProvisioning(conf []byte) []byte {
	const setting = "Provisioning.Agent=disabled"
	var out bytes.Buffer
	replaced := false
	for rest := conf; len(rest) > 0; {
		line, tail, found := bytes.Cut(rest, []byte("\n"))
		rest = tail
		if isSetting(line, "Provisioning.Agent") {
			line, replaced = []byte(setting), true
		}
		out.Write(line)
		if found {
			out.WriteByte('\n')
		}
	}
	if !replaced {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteString("# azinit provisions this VM (azinit-generator).\n" + setting + "\n")
	}
	return out.Bytes()
}

// isSetting reports whether line sets key, the way waagent.conf is read.
func isSetting(line []byte, key string) bool {
	line = bytes.TrimSpace(line)
	k, _, ok := bytes.Cut(line, []byte("="))
	return ok && !bytes.HasPrefix(line, []byte("#")) && string(bytes.TrimSpace(k)) == key
}

// Write carries d out: WaagentConfPath under root, then the drop-ins and
// links in normalDir (the generator's normal directory, a host path), then
// StatePath, stamped now. When an output cannot be written, the outputs
// links and drop-ins already made are removed, so that the boot goes on as
// without azinit rather than with half of it, and the State says so. It returns the State
// it recorded; an error names every output that could not be written.
func Write(root *sys.Root, normalDir string, d Decision, now time.Time) (State, error) {
	st := d.State
	st.Time = now
	if st.Masked == nil {
		st.Masked = []string{}
	}
	var errs []error
	if st.Enabled {
		if err := writeUnits(root, normalDir, d); err != nil {
			errs = append(errs, err)
			st.Enabled, st.Masked = false, []string{}
			st.Reason = fmt.Sprintf("writing the generator's outputs: %v", err)
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = root.MkdirAll(path.Dir(StatePath), 0o755)
	}
	if err == nil {
		err = root.WriteFileAtomic(StatePath, append(b, '\n'), 0o644)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("writing %s: %w", StatePath, err))
	}
	return st, errors.Join(errs...)
}

// writeUnits writes d's unit outputs, all or none of the links and
// drop-ins.
func writeUnits(root *sys.Root, normalDir string, d Decision) error {
	if d.WaagentConf != nil {
		// Before the drop-in that points WALinuxAgent at it.
		if err := root.MkdirAll(path.Dir(WaagentConfPath), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", WaagentConfPath, err)
		}
		if err := root.WriteFileAtomic(WaagentConfPath, d.WaagentConf, 0o644); err != nil {
			return err
		}
	}
	dir, err := sys.OpenRoot(normalDir)
	if err != nil {
		return fmt.Errorf("generator directory: %w", err)
	}
	defer dir.Close()
	var made []string
	if err := writeInto(dir, d, &made); err != nil {
		for _, name := range made {
			dir.Remove(name)
		}
		return fmt.Errorf("in %s: %w", normalDir, err)
	}
	return nil
}

// writeInto writes d's drop-ins and links into dir, adding each to made.
func writeInto(dir *sys.Root, d Decision, made *[]string) error {
	for _, f := range d.DropIns {
		if err := dir.MkdirAll(path.Dir(f.Name), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", f.Name, err)
		}
		if err := dir.WriteFileAtomic(f.Name, f.Data, 0o644); err != nil {
			return err
		}
		*made = append(*made, f.Name)
	}
	links, err := dir.OpenRoot("/")
	if err != nil {
		return err
	}
	defer links.Close()
	for _, l := range d.Links {
		if err := symlink(links, l); err != nil {
			return fmt.Errorf("linking %s to %s: %w", l.Name, l.Target, err)
		}
		*made = append(*made, l.Name)
	}
	return nil
}

// symlink makes l in dir, replacing what is there: the link is made under
// a temporary name and renamed over l.Name.
func symlink(dir *os.Root, l Link) error {
	if parent := path.Dir(l.Name); parent != "." {
		if err := dir.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	tmp := path.Join(path.Dir(l.Name), "."+path.Base(l.Name)+".azinit-tmp")
	err := dir.Symlink(l.Target, tmp)
	if errors.Is(err, fs.ErrExist) {
		// Left by a run that was killed.
		dir.Remove(tmp)
		err = dir.Symlink(l.Target, tmp)
	}
	if err != nil {
		return err
	}
	if err := dir.Rename(tmp, l.Name); err != nil {
		dir.Remove(tmp)
		return err
	}
	return nil
}

// ReadState reads the last decision, StatePath, under root.
func ReadState(root *sys.Root) (*State, error) {
	b, err := root.ReadFile(StatePath)
	if err != nil {
		return nil, fmt.Errorf("reading the generator's decision: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", StatePath, err)
	}
	return &st, nil
}
