package config

import (
	"bufio"
	"bytes"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KnownWireserver is the fixed wireserver address used when DHCP discovery
// is turned off in waagent.conf.
const KnownWireserver = "http://168.63.129.16"

// ParseWaagent reads waagent.conf as WALinuxAgent does: every line not
// starting with '#' that holds '=' is key=value; the value is cut at the
// first '#' and stripped of spaces and quotes; "None" means unset; a later
// duplicate wins.
func ParseWaagent(b []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, "#")
		k, v = strings.TrimSpace(k), strings.Trim(v, `" `)
		if v == "None" {
			delete(kv, k)
			continue
		}
		kv[k] = v
	}
	return kv
}

// applyWaagent maps the waagent.conf options azinit honours onto cfg,
// reading them as WALinuxAgent does: a switch is y or n (anything else
// keeps the default), an unparsable number keeps the default.
func applyWaagent(cfg *Config, kv map[string]string) {
	// Any discovery mode other than dhcp means "use the known address".
	if v, ok := kv["Protocol.EndpointDiscovery"]; ok && !strings.EqualFold(v, "dhcp") {
		cfg.Datasource.Azure.Wireserver = KnownWireserver
	}
	if v, ok := kv["OS.HomeDir"]; ok && path.IsAbs(v) {
		cfg.Users.HomeDir = v
	}
	setInt(kv, "Provisioning.PasswordCryptSaltLength", &cfg.Users.PasswordSaltLength)
	setSwitch(kv, "Provisioning.AllowResetSysUser", &cfg.Users.AllowResetSystemUser)
	setInt(kv, "OS.SshClientAliveInterval", &cfg.SSHD.ClientAliveInterval)
	setSwitch(kv, "Provisioning.RegenerateSshHostKeyPair", &cfg.SSHHostKeys.Regenerate)
	switch t := strings.ToLower(kv["Provisioning.SshHostKeyPairType"]); t {
	case "rsa", "ecdsa", "ed25519":
		cfg.SSHHostKeys.Types = []string{t}
	case "auto": // ssh-keygen -A: every default type
		cfg.SSHHostKeys.Types = slices.Clone(hostKeyTypes)
	}
	setSwitch(kv, "Provisioning.DecodeCustomData", &cfg.CustomData.Decode)
	setSwitch(kv, "Provisioning.ExecuteCustomData", &cfg.CustomData.Execute)
	if cfg.CustomData.Execute { // executing implies decoding, as in WALinuxAgent
		cfg.CustomData.Decode = true
	}
	applyWaagentExtensions(&cfg.Extensions, kv)
}

func applyWaagentExtensions(e *Extensions, kv map[string]string) {
	setSwitch(kv, "Extensions.Enabled", &e.Enabled)
	if v, err := strconv.Atoi(kv["Extensions.GoalStatePeriod"]); err == nil && v > 0 {
		e.GoalStatePeriod = Duration(time.Duration(v) * time.Second)
		e.StatusPeriod = max(e.StatusPeriod, e.GoalStatePeriod)
	}
	setSwitch(kv, "Debug.EnableFastTrack", &e.FastTrack)
	setSwitch(kv, "EnableOverProvisioning", &e.HonorOnHold)
	setSwitch(kv, "CGroups.Enabled", &e.ResourceLimits)
	if v, ok := kv["Extension.LogDir"]; ok && path.IsAbs(v) {
		e.LogDir = v
	}
	if host := kv["HttpProxy.Host"]; host != "" {
		if port, err := strconv.Atoi(kv["HttpProxy.Port"]); err == nil {
			e.HTTPProxy = "http://" + net.JoinHostPort(host, strconv.Itoa(port))
		}
	}
}

func setSwitch(kv map[string]string, key string, dst *bool) {
	switch strings.ToLower(kv[key]) {
	case "y":
		*dst = true
	case "n":
		*dst = false
	}
}

func setInt(kv map[string]string, key string, dst *int) {
	if v, err := strconv.Atoi(kv[key]); err == nil {
		*dst = v
	}
}
