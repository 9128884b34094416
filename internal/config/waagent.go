package config

import (
	"bufio"
	"bytes"
	"strings"
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

// applyWaagent maps the waagent.conf options azinit honours onto cfg.
func applyWaagent(cfg *Config, kv map[string]string) {
	// Any discovery mode other than dhcp means "use the known address".
	if v, ok := kv["Protocol.EndpointDiscovery"]; ok && !strings.EqualFold(v, "dhcp") {
		cfg.Datasource.Azure.Wireserver = KnownWireserver
	}
}
