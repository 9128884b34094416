package extconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// HandlerManifest is a handler's HandlerManifest.json (§17.2): the commands
// the agent runs and how.
type HandlerManifest struct {
	Name string // informational

	// The commands, relative to the handler's directory, as written; ""
	// when the manifest has none. Command gives them ready to run.
	InstallCommand   string
	UninstallCommand string
	UpdateCommand    string
	EnableCommand    string
	DisableCommand   string

	ReportHeartbeat            bool
	ContinueOnUpdateFailure    bool
	SupportsMultipleExtensions bool
	// UpdateWithInstall is whether install runs after update: true unless
	// updateMode is given and is not "UpdateWithInstall" (in any case).
	UpdateWithInstall bool
	UpdateMode        string // as written, "" when absent

	ResourceLimits *ResourceLimits // nil when absent
	SigningInfo    *SigningInfo    // nil when absent
}

// ResourceLimits are the handler's cgroup limits (§17.8); nil fields are
// not limited.
type ResourceLimits struct {
	CPUQuotaPercentage *int
	MemoryQuotaInMB    *int
	Services           []ServiceLimits
}

// ServiceLimits are the limits of a systemd service the handler runs.
type ServiceLimits struct {
	Name               string
	CPUQuotaPercentage *int
}

// SigningInfo names the package for signature validation (§11.3).
type SigningInfo struct {
	Type      string
	Publisher string
	Version   string
}

// Operation is a handler command.
type Operation string

// Operations.
const (
	OpInstall   Operation = "install"
	OpUninstall Operation = "uninstall"
	OpUpdate    Operation = "update"
	OpEnable    Operation = "enable"
	OpDisable   Operation = "disable"
)

// ErrNoCommand is returned by Command when the manifest lacks the command:
// that operation fails, the others still run.
var ErrNoCommand = errors.New("the handler manifest has no command for the operation")

// Command is the command for op, relative to the handler's directory,
// without leading slashes (which the platform's agent strips).
func (m *HandlerManifest) Command(op Operation) (string, error) {
	var cmd string
	switch op {
	case OpInstall:
		cmd = m.InstallCommand
	case OpUninstall:
		cmd = m.UninstallCommand
	case OpUpdate:
		cmd = m.UpdateCommand
	case OpEnable:
		cmd = m.EnableCommand
	case OpDisable:
		cmd = m.DisableCommand
	}
	cmd = strings.TrimLeft(cmd, "/")
	if cmd == "" {
		return "", fmt.Errorf("%s: %w", op, ErrNoCommand)
	}
	return cmd, nil
}

// ParseHandlerManifest parses HandlerManifest.json: an array whose first
// element is the manifest (the others are ignored). Keys are matched
// exactly. The booleans default to false and accept true, false or the
// string "true" in any case (other strings are false); a missing command
// is not an error here but when it is needed (Command).
func ParseHandlerManifest(b []byte) (*HandlerManifest, error) {
	m, err := parseHandlerManifest(b)
	if err != nil {
		return nil, fmt.Errorf("parsing HandlerManifest.json: %w", err)
	}
	return m, nil
}

func parseHandlerManifest(b []byte) (*HandlerManifest, error) {
	var list []json.RawMessage
	if jsonKind(b) != "array" {
		return nil, fmt.Errorf("got %s, want an array", got(b))
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, jsonError(err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("the array is empty")
	}
	top, err := asObject(list[0], "[0]")
	if err != nil {
		return nil, err
	}
	hm, err := asObject(top["handlerManifest"], "[0].handlerManifest")
	if err != nil {
		return nil, err
	}
	m := &HandlerManifest{Name: top.text("name"), UpdateWithInstall: true}
	for _, c := range []struct {
		key string
		dst *string
	}{
		{"installCommand", &m.InstallCommand},
		{"uninstallCommand", &m.UninstallCommand},
		{"updateCommand", &m.UpdateCommand},
		{"enableCommand", &m.EnableCommand},
		{"disableCommand", &m.DisableCommand},
		{"updateMode", &m.UpdateMode},
	} {
		if !hm.isNull(c.key) && jsonKind(hm[c.key]) != "string" {
			return nil, fmt.Errorf("[0].handlerManifest.%s: got %s, want a string", c.key, got(hm[c.key]))
		}
		*c.dst = hm.text(c.key)
	}
	if !hm.isNull("updateMode") {
		m.UpdateWithInstall = strings.EqualFold(m.UpdateMode, "UpdateWithInstall")
	}
	m.ReportHeartbeat = manifestBool(hm["reportHeartbeat"])
	m.ContinueOnUpdateFailure = manifestBool(hm["continueOnUpdateFailure"])
	m.SupportsMultipleExtensions = manifestBool(hm["supportsMultipleExtensions"])
	if !top.isNull("resourceLimits") {
		if m.ResourceLimits, err = resourceLimits(top["resourceLimits"]); err != nil {
			return nil, fmt.Errorf("[0].resourceLimits%w", err)
		}
	}
	if !top.isNull("signingInfo") {
		si, err := asObject(top["signingInfo"], "[0].signingInfo")
		if err != nil {
			return nil, err
		}
		m.SigningInfo = &SigningInfo{Type: si.text("type"), Publisher: si.text("publisher"), Version: si.text("version")}
	}
	return m, nil
}

// manifestBool reads a HandlerManifest boolean: true, or a string "true"
// in any case; anything else is false.
func manifestBool(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

// resourceLimits parses the resourceLimits object; errors start with the
// path below it (".services[1]: ...").
func resourceLimits(raw json.RawMessage) (*ResourceLimits, error) {
	o, err := asObject(raw, "")
	if err != nil {
		return nil, err
	}
	var rl ResourceLimits
	if rl.CPUQuotaPercentage, err = optionalInt(o, "cpuQuotaPercentage", ".cpuQuotaPercentage"); err != nil {
		return nil, err
	}
	if rl.MemoryQuotaInMB, err = optionalInt(o, "memoryQuotaInMB", ".memoryQuotaInMB"); err != nil {
		return nil, err
	}
	if o.isNull("services") {
		return &rl, nil
	}
	var services []json.RawMessage
	if jsonKind(o["services"]) != "array" || json.Unmarshal(o["services"], &services) != nil {
		return nil, fmt.Errorf(".services: got %s, want an array", got(o["services"]))
	}
	for i, raw := range services {
		path := fmt.Sprintf(".services[%d]", i)
		s, err := asObject(raw, path)
		if err != nil {
			return nil, err
		}
		limit := ServiceLimits{Name: s.text("name")}
		if limit.CPUQuotaPercentage, err = optionalInt(s, "cpuQuotaPercentage", path+".cpuQuotaPercentage"); err != nil {
			return nil, err
		}
		rl.Services = append(rl.Services, limit)
	}
	return &rl, nil
}

// optionalInt is key's integer value, nil when absent or null.
func optionalInt(o object, key, path string) (*int, error) {
	if o.isNull(key) {
		return nil, nil
	}
	n, err := o.integer(key, path, 0)
	if err != nil {
		return nil, err
	}
	return &n, nil
}
