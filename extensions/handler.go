package extensions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strconv"

	"github.com/azinit/azinit/datasource/azure/extconfig"
	"github.com/azinit/azinit/internal/unzip"
)

// enable brings the item's handler to its goal-state version, installed
// (or updated from the version installed before), and enables the
// extension (§17.9 "enabled").
func (m *Manager) enable(ctx context.Context, it item, log *slog.Logger) error {
	h := it.handler
	manifest, location, err := m.Fetch.Manifest(ctx, h)
	if err != nil {
		return &Error{Code: CodeManifestDownload, Message: "Failed to download artifacts: " + err.Error()}
	}
	pkg, err := manifest.Select(h.Version)
	if err != nil {
		return &Error{Code: CodeUnknown, Message: fmt.Sprintf("Unable to find version %s in manifest for extension %s", h.Version, h.Name)}
	}
	version := pkg.Version
	if !handlerVersion.MatchString(version) {
		return &Error{Code: CodeManifestInvalid, Message: fmt.Sprintf("the manifest of %s gives version %q", h.Name, version)}
	}
	inv := m.invocationFor(it, version)
	old, err := m.installedVersion(h.Name, version)
	if err != nil {
		return err
	}
	uninstallExit := notRun
	switch m.readState(inv.dir) {
	case notInstalled, failedUpgrade:
		if err := m.unpack(ctx, h.Name, pkg, location); err != nil {
			return err
		}
		if inv.manifest, err = m.initialize(it, version); err != nil {
			return err
		}
		if err := m.writeSettings(it, inv.dir); err != nil {
			return err
		}
		if old == "" {
			if err := m.install(ctx, inv, notRun); err != nil {
				return err
			}
		} else if uninstallExit, err = m.update(ctx, it, old, inv, log); err != nil {
			return err
		}
	default:
		if inv.manifest, err = m.loadManifest(inv.dir); err != nil {
			return err
		}
		if h.MultiConfig && !inv.manifest.SupportsMultipleExtensions {
			return errNoMultiConfig(h.Name)
		}
		if err := m.writeSettings(it, inv.dir); err != nil {
			return err
		}
	}

	if it.settings != nil && it.settings.State == extconfig.StateDisabled {
		// A multi-config extension turned off while its handler stays.
		if m.extensionEnabled(inv.dir, inv.ext) {
			inv.op = extconfig.OpDisable
			if _, err := m.launch(ctx, inv); err != nil {
				log.Warn("disabling the extension failed; going on", "error", err)
			}
		}
		return m.removeExtensionFiles(inv.dir, it)
	}
	inv.op = extconfig.OpEnable
	inv.env = []string{"AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE=" + uninstallExit}
	if _, err := m.launch(ctx, inv); err != nil {
		return err
	}
	if inv.ext != "" {
		if err := m.setExtensionEnabled(inv.dir, inv.ext, true); err != nil {
			return err
		}
	}
	if err := m.writeState(inv.dir, enabled); err != nil {
		return err
	}
	return m.setStatus(h.Name, HandlerStatus{Version: version, Status: statusReady, Message: "Plugin enabled", MultiConfig: h.MultiConfig})
}

// install runs the install command and records the handler installed.
func (m *Manager) install(ctx context.Context, inv invocation, uninstallExit string) error {
	inv.op = extconfig.OpInstall
	inv.env = []string{"AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE=" + uninstallExit}
	if _, err := m.launch(ctx, inv); err != nil {
		return err
	}
	if err := m.writeState(inv.dir, installed); err != nil {
		return err
	}
	return m.setStatus(inv.name, HandlerStatus{Version: inv.version, Status: statusNotReady, Message: "Plugin installed but not enabled", MultiConfig: inv.ext != ""})
}

// update replaces the installed version old by inv's (§17.9 2f): old
// disable, new update (old's update for a downgrade), old uninstall, new
// install. It returns old's uninstall exit code, for the new version's
// enable.
func (m *Manager) update(ctx context.Context, it item, old string, inv invocation, log *slog.Logger) (string, error) {
	h := it.handler
	oldInv := m.invocationFor(it, old)
	var err error
	if oldInv.manifest, err = m.loadManifest(oldInv.dir); err != nil {
		return "", err
	}
	log = log.With("from", old, "to", inv.version)
	log.Info("updating the handler")
	// A failing step of the old version stops the update unless the new
	// version says it copes.
	tolerate := func(op string, err error) error {
		if err == nil || inv.manifest.ContinueOnUpdateFailure {
			return nil
		}
		return &Error{Code: CodeUpdate, Message: fmt.Sprintf("%s of the old version %s failed: %s", op, old, err)}
	}

	var disableEnv []string
	if m.readState(oldInv.dir) == enabled {
		oldInv.op = extconfig.OpDisable
		if h.MultiConfig {
			type exit struct {
				Name string `json:"extensionName"`
				Code string `json:"exitCode"`
			}
			var exits []exit
			for _, s := range h.Settings {
				if !m.extensionEnabled(oldInv.dir, s.Name) {
					continue
				}
				oldInv.ext, oldInv.seq = s.Name, s.SeqNo
				code, err := m.launch(ctx, oldInv)
				if err := tolerate("disable", err); err != nil {
					return "", err
				}
				exits = append(exits, exit{s.Name, strconv.Itoa(code)})
			}
			b, _ := json.Marshal(exits)
			disableEnv = []string{"AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS=" + string(b)}
		} else {
			code, err := m.launch(ctx, oldInv)
			if err := tolerate("disable", err); err != nil {
				return "", err
			}
			disableEnv = []string{"AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE=" + strconv.Itoa(code)}
		}
	} else if !h.MultiConfig {
		disableEnv = []string{"AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE=" + notRun}
	}
	if err := m.carryOver(oldInv.dir, inv.dir); err != nil {
		return "", err
	}

	// The higher version's update command runs; on a downgrade that is the
	// old one's, told it goes "from" the new version (as the platform's
	// agent does it).
	up, from := inv, old
	if newer(old, inv.version) {
		up, from = oldInv, inv.version
	}
	up.op, up.ext, up.seq = extconfig.OpUpdate, inv.ext, inv.seq
	up.env = append([]string{"VERSION=" + inv.version, "AZURE_GUEST_AGENT_UPDATING_FROM_VERSION=" + from}, disableEnv...)
	if _, err := m.launch(ctx, up); err != nil {
		if serr := m.writeState(up.dir, failedUpgrade); serr != nil {
			log.Error("recording the failed update", "error", serr)
		}
		return "", err
	}

	oldInv.op = extconfig.OpUninstall
	code, err := m.launch(ctx, oldInv)
	if err := tolerate("uninstall", err); err != nil {
		return "", err
	}
	uninstallExit := strconv.Itoa(code)
	if err := m.removeVersion(h.Name, old); err != nil {
		return "", err
	}
	if inv.manifest.UpdateWithInstall {
		return uninstallExit, m.install(ctx, inv, uninstallExit)
	}
	if err := m.writeState(inv.dir, installed); err != nil {
		return "", err
	}
	return uninstallExit, nil
}

// newer reports whether version a is higher than b.
func newer(a, b string) bool {
	va, errA := extconfig.ParseVersion(a)
	vb, errB := extconfig.ParseVersion(b)
	return errA == nil && errB == nil && va.Compare(vb) > 0
}

// disable turns off a handler whose goal state is "disabled" (§17.9).
func (m *Manager) disable(ctx context.Context, it item, log *slog.Logger) error {
	version, err := m.installedVersion(it.handler.Name, "")
	if err != nil || version == "" {
		return err
	}
	inv := m.invocationFor(it, version)
	if m.readState(inv.dir) != enabled {
		return nil
	}
	if inv.manifest, err = m.loadManifest(inv.dir); err != nil {
		return err
	}
	inv.op = extconfig.OpDisable
	if _, err := m.launch(ctx, inv); err != nil {
		return err
	}
	if inv.ext != "" {
		if err := m.setExtensionEnabled(inv.dir, inv.ext, false); err != nil {
			return err
		}
		if m.anyExtensionEnabled(it.handler, inv.dir) {
			return nil
		}
	}
	log.Info("handler disabled")
	if err := m.writeState(inv.dir, installed); err != nil {
		return err
	}
	return m.setStatus(it.handler.Name, HandlerStatus{Version: version, Status: statusNotReady, Message: "Plugin disabled", MultiConfig: it.handler.MultiConfig})
}

func (m *Manager) anyExtensionEnabled(h *extconfig.Handler, dir string) bool {
	for _, s := range h.Settings {
		if m.extensionEnabled(dir, s.Name) {
			return true
		}
	}
	return false
}

// uninstall disables and uninstalls the installed version, if any, and
// removes the handler; its status is no longer reported (§17.9).
func (m *Manager) uninstall(ctx context.Context, it item, log *slog.Logger) error {
	name := it.handler.Name
	version, err := m.installedVersion(name, "")
	if err != nil {
		return err
	}
	if version != "" {
		inv := m.invocationFor(it, version)
		if inv.manifest, err = m.loadManifest(inv.dir); err != nil {
			log.Warn("uninstalling without running the handler", "error", err)
		} else {
			if m.readState(inv.dir) == enabled {
				inv.op = extconfig.OpDisable
				if _, err := m.launch(ctx, inv); err != nil {
					log.Warn("disable before uninstall failed; going on", "error", err)
				}
			}
			inv.op = extconfig.OpUninstall
			if _, err := m.launch(ctx, inv); err != nil {
				log.Warn("uninstall failed; the handler is removed anyway", "error", err)
			}
		}
	}
	vs, err := m.versionsOnDisk(name)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := m.removeVersion(name, v.String()); err != nil {
			return err
		}
	}
	log.Info("handler uninstalled", "version", version)
	return m.forget(name)
}

// invocationFor is the item's command at version, its operation not yet
// set.
func (m *Manager) invocationFor(it item, version string) invocation {
	return invocation{
		name: it.handler.Name, version: version, dir: m.Layout.Dir(it.handler.Name, version),
		seq: it.seq(), ext: it.ext(),
	}
}

func errNoMultiConfig(name string) error {
	return &Error{Code: CodeUnknown, Message: fmt.Sprintf("Handler %s does not support MultiConfig but CRP expects it, failing due to inconsistent data", name)}
}

// loadManifest reads a handler directory's HandlerManifest.json.
func (m *Manager) loadManifest(dir string) (*extconfig.HandlerManifest, error) {
	b, err := m.Root.ReadFile(path.Join(dir, handlerManifestFile))
	if err != nil {
		return nil, &Error{Code: CodeManifestNotFound, Message: fmt.Sprintf("%s: %v", path.Join(dir, handlerManifestFile), err)}
	}
	hm, err := extconfig.ParseHandlerManifest(b)
	if err != nil {
		return nil, &Error{Code: CodeManifestInvalid, Message: fmt.Sprintf("%s: %v", path.Join(dir, handlerManifestFile), err)}
	}
	return hm, nil
}

// maxPackageFiles bounds the entries of one package.
const maxPackageFiles = 100_000

// unpack downloads the package, unless an earlier attempt left it on
// disk, and unpacks it as the handler's directory. The archive goes into
// a temporary directory first, so a refused or broken package leaves
// nothing behind.
func (m *Manager) unpack(ctx context.Context, name string, pkg extconfig.Package, manifestLocation string) error {
	version := pkg.Version
	if err := m.Root.MkdirAll(m.Layout.Lib, 0o755); err != nil {
		return err
	}
	zipName := m.Layout.Zip(name, version)
	f, err := m.Root.OpenFile(zipName, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		if err := m.Fetch.Package(ctx, pkg, manifestLocation, f); err != nil {
			m.Root.Remove(zipName)
			return &Error{Code: CodePackageDownload, Message: "Failed to download artifacts: " + err.Error()}
		}
		if st, err = f.Stat(); err != nil {
			return err
		}
	}
	if st.Size() > m.MaxPackageBytes {
		m.Root.Remove(zipName)
		return &Error{Code: CodePackageDownload, Message: fmt.Sprintf("package %s__%s: %d bytes, over the %d-byte limit", name, version, st.Size(), m.MaxPackageBytes)}
	}

	tmp := path.Join(m.Layout.Lib, ".azinit-unpack-"+name+"-"+randomHex(6))
	if err := m.Root.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer m.Root.RemoveAll(tmp)
	if err := m.extract(ctx, f, st.Size(), tmp); err != nil {
		// A broken download is fetched again next time.
		m.Root.Remove(zipName)
		return &Error{Code: CodePackageExtraction, Message: fmt.Sprintf("Failed to extract package %s__%s: %v", name, version, err)}
	}
	dir := m.Layout.Dir(name, version)
	if err := m.Root.RemoveAll(dir); err != nil {
		return err
	}
	if err := m.Root.Rename(tmp, dir); err != nil {
		return err
	}
	return m.Root.Remove(zipName)
}

// extract unpacks the archive f into dir and puts HandlerManifest.json at
// its top, wherever the package keeps it.
func (m *Manager) extract(ctx context.Context, f *os.File, size int64, dir string) error {
	dst, err := m.Root.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := unzip.Extract(ctx, f, size, dst, unzip.Limits{MaxBytes: m.MaxPackageBytes, MaxFiles: maxPackageFiles}); err != nil {
		return err
	}
	if _, err := dst.Stat(handlerManifestFile); err == nil {
		return nil
	}
	var found string
	errFound := errors.New("found")
	fs.WalkDir(dst.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() == handlerManifestFile {
			found = p
			return errFound
		}
		return nil
	})
	if found == "" {
		return fmt.Errorf("the package has no %s", handlerManifestFile)
	}
	b, err := dst.ReadFile(found)
	if err != nil {
		return err
	}
	return dst.WriteFile(handlerManifestFile, b, 0o644)
}

// initialize prepares an unpacked handler for its first command:
// directories, HandlerEnvironment.json, and the multi-config check.
func (m *Manager) initialize(it item, version string) (*extconfig.HandlerManifest, error) {
	name := it.handler.Name
	dir := m.Layout.Dir(name, version)
	hm, err := m.loadManifest(dir)
	if err != nil {
		return nil, err
	}
	if it.handler.MultiConfig && !hm.SupportsMultipleExtensions {
		return nil, errNoMultiConfig(name)
	}
	logFolder := m.Layout.LogFolder(name)
	for _, d := range []struct {
		name string
		perm fs.FileMode
	}{
		{path.Join(dir, configDir), 0o700},
		{path.Join(dir, statusDir), 0o700},
		{logFolder, 0o755},
		{path.Join(logFolder, "events"), 0o700},
	} {
		if err := m.Root.MkdirAll(d.name, d.perm); err != nil {
			return nil, err
		}
	}
	host := m.Root.HostPath
	var env handlerEnvironment
	env.Name, env.Version = name, json.RawMessage("1.0")
	env.Paths.LogFolder = host(logFolder)
	env.Paths.ConfigFolder = host(path.Join(dir, configDir))
	env.Paths.StatusFolder = host(path.Join(dir, statusDir))
	env.Paths.HeartbeatFile = host(path.Join(dir, heartbeatFile))
	env.Paths.EventsFolder = host(path.Join(logFolder, "events"))
	env.Paths.EventsFolderPreview = env.Paths.EventsFolder
	b, err := pythonJSON([]handlerEnvironment{env})
	if err != nil {
		return nil, err
	}
	if err := m.Root.WriteFileAtomic(path.Join(dir, handlerEnvFile), b, 0o644); err != nil {
		return nil, err
	}
	return hm, nil
}

// handlerEnvironment is HandlerEnvironment.json's element (§17.3), in the
// platform agent's key order. Paths are host paths: handlers read them.
type handlerEnvironment struct {
	Name    string          `json:"name"`
	Version json.RawMessage `json:"version"` // the number 1.0
	Paths   struct {
		LogFolder           string `json:"logFolder"`
		ConfigFolder        string `json:"configFolder"`
		StatusFolder        string `json:"statusFolder"`
		HeartbeatFile       string `json:"heartbeatFile"`
		EventsFolder        string `json:"eventsFolder"`
		EventsFolderPreview string `json:"eventsFolder_preview"`
	} `json:"handlerEnvironment"`
}

// writeSettings writes the item's settings file (§17.4), right before the
// command that reads it; a handler without settings gets an empty
// config/0.settings.
func (m *Manager) writeSettings(it item, dir string) error {
	file := path.Join(dir, configDir, settingsBase(it.ext() != "", it.ext(), it.seq())+".settings")
	if it.settings == nil {
		_, err := m.Root.UpdateFile(file, nil, 0o600, nil)
		return err
	}
	s := it.settings
	var public, protected, thumbprint any
	if s.PublicSettings != nil {
		public = s.PublicSettings
	}
	if s.ProtectedSettings.IsSet() {
		protected = s.ProtectedSettings.Reveal()
	}
	if s.ProtectedSettingsCertThumbprint != "" {
		thumbprint = s.ProtectedSettingsCertThumbprint
	}
	b, err := pythonJSON(map[string]any{"runtimeSettings": []any{map[string]any{"handlerSettings": orderedSettings{public, protected, thumbprint}}}})
	if err != nil {
		return fmt.Errorf("settings of %s: %w", it.key(), err)
	}
	return m.Root.WriteFileAtomic(file, b, 0o600)
}

// orderedSettings keeps the key order handlers are used to.
type orderedSettings struct {
	Public     any `json:"publicSettings"`
	Protected  any `json:"protectedSettings"`
	Thumbprint any `json:"protectedSettingsCertThumbprint"`
}

// removeExtensionFiles drops a turned-off multi-config extension's
// settings, status and state.
func (m *Manager) removeExtensionFiles(dir string, it item) error {
	for _, pattern := range []string{
		path.Join(dir, configDir, it.settings.Name+".*.settings"),
		path.Join(dir, statusDir, it.settings.Name+".*.status"),
		path.Join(dir, configDir, it.settings.Name+".HandlerState"),
	} {
		names, err := m.Root.Glob(pattern)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := m.Root.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// carryOver copies what an extension remembers (mrseq, status files) from
// the old version's directory to the new one's.
func (m *Manager) carryOver(oldDir, newDir string) error {
	files := []string{mrseqFile}
	entries, err := m.Root.ReadDir(path.Join(oldDir, statusDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, path.Join(statusDir, e.Name()))
		}
	}
	for _, f := range files {
		b, err := m.Root.ReadFile(path.Join(oldDir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := m.Root.WriteFileAtomic(path.Join(newDir, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// removeVersion deletes a handler version's directory and package.
func (m *Manager) removeVersion(name, version string) error {
	if err := m.Root.RemoveAll(m.Layout.Dir(name, version)); err != nil {
		return err
	}
	if err := m.Root.Remove(m.Layout.Zip(name, version)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeStale deletes the directories of handlers the goal state no
// longer names, as the platform's agent does (without running their
// uninstall). Only directories azinit manages (with a HandlerState) are
// touched: the platform agent's own directories look alike.
func (m *Manager) removeStale(gs *extconfig.ExtensionsGoalState) error {
	entries, err := m.Root.ReadDir(m.Layout.Lib)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, h := range gs.Handlers {
		wanted[h.Name] = true
	}
	for _, e := range entries {
		g := handlerDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || g == nil || wanted[g[1]] {
			continue
		}
		if _, err := m.Root.Stat(path.Join(m.Layout.Lib, e.Name(), handlerStateFile)); err != nil {
			continue
		}
		m.Log.Info("removing a handler no longer in the goal state", "handler", g[1], "version", g[2])
		if err := m.removeVersion(g[1], g[2]); err != nil {
			return err
		}
		if err := m.forget(g[1]); err != nil {
			return err
		}
	}
	return nil
}
