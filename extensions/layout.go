// Package extensions runs Azure VM extension handlers the way handlers
// written for WALinuxAgent expect (wire-protocol.md §17): packages unpacked
// into /var/lib/waagent/<Name>-<Version>/, HandlerEnvironment.json, settings
// files, the install/enable/disable/update/uninstall sequences, dependency
// ordering, and the status they report, gathered into the aggregate status
// the platform reads (§13.2).
//
// It does not know where a goal state came from: the caller hands it an
// extconfig.ExtensionsGoalState and a Fetcher for manifests and packages.
package extensions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/azinit/azinit/datasource/azure/extconfig"
)

// Layout is where handlers live, root-relative.
type Layout struct {
	Lib    string // /var/lib/waagent: handler directories, certificates
	LogDir string // /var/log/azure: one log folder per handler
}

// handlerName accepts the names the platform gives handlers
// (Publisher.Type, e.g. Microsoft.Azure.Extensions.CustomScript). A name
// becomes a directory name and part of the command line handed to the
// shell, so nothing else is accepted; "-" separates name and version in
// directory names.
var handlerName = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

// extensionName accepts multi-config extension names, which become parts
// of file names (config/<ext>.<seq>.settings).
var extensionName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// handlerVersion accepts versions as directory names use them.
var handlerVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// checkNames reports why h cannot be laid out on disk, if it cannot.
func checkNames(h *extconfig.Handler) error {
	if !handlerName.MatchString(h.Name) {
		return fmt.Errorf("handler name %q: want Publisher.Type of letters, digits and underscores", h.Name)
	}
	for _, s := range h.Settings {
		if h.MultiConfig && (!extensionName.MatchString(s.Name) || strings.Contains(s.Name, "..")) {
			return fmt.Errorf("extension name %q: want letters, digits, '_', '-' and '.'", s.Name)
		}
	}
	return nil
}

// Dir is a handler version's directory.
func (l Layout) Dir(name, version string) string {
	return path.Join(l.Lib, name+"-"+version)
}

// Zip is where a handler package is downloaded to before it is unpacked.
func (l Layout) Zip(name, version string) string {
	return path.Join(l.Lib, name+"__"+version+".zip")
}

// LogFolder is a handler's log folder, shared by its versions.
func (l Layout) LogFolder(name string) string { return path.Join(l.LogDir, name) }

// Files of a handler directory.
const (
	handlerManifestFile = "HandlerManifest.json"
	handlerEnvFile      = "HandlerEnvironment.json"
	heartbeatFile       = "heartbeat.log"
	mrseqFile           = "mrseq"
	configDir           = "config"
	statusDir           = "status"
	handlerStateFile    = "config/HandlerState"
	handlerStatusFile   = "config/HandlerStatus"
)

// settingsBase is the base name, without extension, of an extension's
// settings and status files: "<seq>" or, for multi-config, "<ext>.<seq>".
func settingsBase(multiConfig bool, ext string, seq int) string {
	if multiConfig {
		return fmt.Sprintf("%s.%d", ext, seq)
	}
	return fmt.Sprint(seq)
}

// pythonJSON encodes v the way Python's json.dumps does by default, with
// ", " and ": " between items: handlers' shell shims match
// HandlerEnvironment.json with patterns written for that spacing.
func pythonJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	compact := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ',' || c == ':'):
			out = append(out, ' ')
		}
	}
	return out, nil
}
