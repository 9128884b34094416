package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/azinit/azinit/fabric"
)

const (
	testHandler = "Azinit.Test.Handler"
	adminUser   = "azureuser"
	// The scenario's OVF values the checks look for.
	scenarioHostname = "azinit-ext"
	scenarioKey      = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHy4K8R/05KZKkkGK/gIHLYLXkG2iTvC1hWabCUYg4eg"
	scenarioPassword = "Demo-Only-Passw0rd!"
)

// newScenario copies the extensions scenario (provisioning plus the test
// handler) into a directory of the test's, with the handler's manifest
// asking for resource limits, which the guest's systemd enforces.
func newScenario(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	scn := filepath.Join(dir, "scenario")
	if err := os.CopyFS(scn, os.DirFS(filepath.Join("..", "..", "testdata", "scenarios", "extensions"))); err != nil {
		t.Fatal(err)
	}
	handler := filepath.Join(dir, "handlers", testHandler+"-1.0.0")
	if err := os.CopyFS(handler, os.DirFS(filepath.Join("..", "..", "testdata", "handlers", testHandler+"-1.0.0"))); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(handler, "HandlerManifest.json")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	limited := strings.Replace(string(b), `"handlerManifest": {`,
		`"resourceLimits": {"cpuQuotaPercentage": 50, "memoryQuotaInMB": 256},
  "handlerManifest": {`, 1)
	if limited == string(b) {
		t.Fatal("the test handler's manifest changed shape: cannot add resourceLimits")
	}
	if err := os.WriteFile(manifest, []byte(limited), 0o644); err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(scn, fabric.ExtensionsFile)
	b, err = os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ext, []byte(strings.Replace(string(b), "packages: ../../handlers", "packages: ../handlers", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return scn
}

func countReady(rec []fabric.Entry) int {
	n := 0
	for _, h := range fabric.HealthReports(rec) {
		if h.State == fabric.StateReady {
			n++
		}
	}
	return n
}

// lastHandlerStatus is the test handler's entry in the last status the
// fabric took, nil when there is none.
func lastHandlerStatus(rec []fabric.Entry) *fabric.HandlerStatus {
	var found *fabric.HandlerStatus
	for _, e := range rec {
		hs, _ := e.Handlers()
		for i := range hs {
			if hs[i].HandlerName == testHandler {
				found = &hs[i]
			}
		}
	}
	return found
}

// enabled says the handler's enable succeeded, as the last status says.
func enabled(h *fabric.HandlerStatus) bool {
	return h != nil && h.Status == "Ready" && h.RuntimeSettingsStatus != nil &&
		h.RuntimeSettingsStatus.SettingsStatus.Status.Status == "success"
}

// readyAndEnabled is what a provisioning boot waits for: Ready reported and
// the handler's enable uploaded as a success.
func readyAndEnabled(rec []fabric.Entry) bool {
	return countReady(rec) > 0 && enabled(lastHandlerStatus(rec))
}

// checkProvisioned checks what a first boot must leave: the admin with
// password and key, sudo, the sshd drop-in, the host name, fresh host keys,
// a running sshd, and every stage done.
func (g *guest) checkProvisioned() {
	t := g.t
	t.Helper()
	if rc := g.output("status.rc"); rc != "0" {
		t.Errorf("azinit status --wait exited %s:\n%s\n%s", rc, g.output("status.json"), g.output("status.err"))
	}
	if h := g.output("hostname"); h != scenarioHostname {
		t.Errorf("host name %q, want %q", h, scenarioHostname)
	}
	if h := strings.TrimSpace(g.file("/etc/hostname")); h != scenarioHostname {
		t.Errorf("/etc/hostname %q, want %q", h, scenarioHostname)
	}
	if id := g.output("id"); !strings.HasPrefix(id, "uid=") || !strings.Contains(id, "("+adminUser+")") {
		t.Errorf("id %s: %s", adminUser, id)
	}
	if st := strings.Fields(g.output("passwd-status")); len(st) < 2 || st[1] != "P" {
		t.Errorf("passwd -S %s: %v, want a usable password (P)", adminUser, st)
	}
	if keys := g.file("/home/" + adminUser + "/.ssh/authorized_keys"); !strings.Contains(keys, scenarioKey) {
		t.Errorf("authorized_keys lacks the scenario's key:\n%s", keys)
	}
	sudoers := false
	for path := range g.files {
		if strings.HasPrefix(path, "/etc/sudoers.d/") && strings.Contains(string(g.files[path]), adminUser) {
			sudoers = true
		}
	}
	if !sudoers {
		t.Errorf("no sudoers drop-in names %s", adminUser)
	}
	sshd := false
	for path, b := range g.files {
		if strings.HasPrefix(path, "/etc/ssh/sshd_config.d/") && strings.Contains(string(b), "PasswordAuthentication") {
			sshd = true
		}
	}
	if !sshd {
		t.Errorf("no sshd drop-in sets PasswordAuthentication")
	}
	if !g.has("/etc/ssh/ssh_host_ed25519_key.pub") {
		t.Errorf("no SSH host keys")
	}
	if u := g.unit("ssh"); u["ActiveState"] != "active" {
		t.Errorf("sshd is %s (%s)", u["ActiveState"], u["Result"])
	}
	if strings.Contains(g.output("journal.txt"), scenarioPassword) {
		t.Errorf("the admin password is in the journal")
	}
	var gen struct {
		Enabled bool
		Reason  string
	}
	if err := json.Unmarshal([]byte(g.file("/run/azinit/generator.json")), &gen); err != nil || !gen.Enabled {
		t.Errorf("generator.json: %v, %+v", err, gen)
	}
	if failed := g.output("failed.txt"); failed != "" {
		t.Errorf("failed units:\n%s", failed)
	}
}

// checkExtension checks the handler ran in its systemd scope, under its
// slice, with the manifest's limits, and azinit-extensions is running.
func (g *guest) checkExtension(wantOps ...string) {
	t := g.t
	t.Helper()
	ops := strings.Split(strings.TrimSpace(g.file("/var/log/azure/"+testHandler+"/operations.log")), "\n")
	if strings.Join(ops, "\n") != strings.Join(wantOps, "\n") {
		t.Errorf("handler operations:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(wantOps, "\n"))
	}
	cg := g.file("/var/log/azure/" + testHandler + "/cgroup.log")
	scope := regexp.MustCompile(`cgroup=/azure\.slice/azure-vmextensions\.slice/azure-vmextensions-` +
		regexp.QuoteMeta(testHandler) + `\.slice/` + regexp.QuoteMeta(testHandler) + `_enable_[0-9a-f]+\.scope cpu\.max=50000 100000 memory\.max=268435456`)
	if !scope.MatchString(cg) {
		t.Errorf("the handler did not run in its scope with its limits:\n%s", cg)
	}
	if u := g.unit("azinit-extensions"); u["ActiveState"] != "active" || u["SubState"] != "running" || u["NRestarts"] != "0" {
		t.Errorf("azinit-extensions: %v", u)
	}
}

// TestBoot boots a fresh VM twice from the same disk: the first boot
// provisions and runs the extension; the second provisions nothing again,
// does not report Ready again for the same incarnation, and the extension
// stage resumes.
func TestBoot(t *testing.T) {
	needImage(t, imageDir, "make e2e")
	scenario := newScenario(t)
	m := &machine{t: t, image: imageDir, initrd: "initrd.img", agent: "azinit", scenario: scenario,
		fabric: startFabric(t, scenario)}
	m.persistentDisk()

	g := m.boot(readyAndEnabled)
	g.checkProvisioned()
	g.checkExtension(
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	if n := countReady(m.fabric.Record()); n != 1 {
		t.Errorf("boot 1 reported Ready %d times, want once", n)
	}
	g.logTiming("boot 1")
	hostKey := g.file("/etc/ssh/ssh_host_ed25519_key.pub")
	keys := g.file("/home/" + adminUser + "/.ssh/authorized_keys")

	// Boot 2: the same disk and incarnation. The extension is enabled
	// again (a new boot, as WALinuxAgent does), nothing is installed again.
	seen := len(m.fabric.Record())
	g2 := m.boot(func(rec []fabric.Entry) bool {
		return len(rec) > seen && enabled(lastHandlerStatus(rec[seen:])) &&
			strings.Contains(lastHandlerStatus(rec[seen:]).RuntimeSettingsStatus.SettingsStatus.Status.FormattedMessage.Message, "enable")
	})
	g2.checkProvisioned()
	g2.checkExtension(
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	if n := countReady(m.fabric.Record()[seen:]); n != 0 {
		t.Errorf("boot 2 reported Ready %d times for the same incarnation, want none", n)
	}
	if g2.file("/etc/ssh/ssh_host_ed25519_key.pub") != hostKey {
		t.Errorf("boot 2 changed the SSH host key")
	}
	if g2.file("/home/"+adminUser+"/.ssh/authorized_keys") != keys {
		t.Errorf("boot 2 changed authorized_keys")
	}
	journal := g2.output("journal.txt")
	for _, again := range []string{"useradd", "new instance"} {
		if strings.Contains(journal, again) {
			t.Errorf("boot 2's journal has %q: provisioned again?", again)
		}
	}
}

// TestBootMalformedOVF: the fabric hears ProvisioningFailed with the
// reason, and the boot completes; with the dracut initramfs too, where the
// local stage fails before switch-root and the real root's runs again.
func TestBootMalformedOVF(t *testing.T) {
	needImage(t, imageDir, "make e2e")
	for _, initrd := range []string{"initrd.img", "initrd-dracut.img"} {
		t.Run(initrd, func(t *testing.T) {
			scenario := newScenario(t)
			b, err := os.ReadFile(filepath.Join(scenario, "ovf-env.xml"))
			if err != nil {
				t.Fatal(err)
			}
			// Cut inside an element: not XML any more. The fabric serves
			// the scenario; only the DVD holds the broken copy.
			m := &machine{t: t, image: imageDir, initrd: initrd, agent: "azinit", scenario: scenario,
				ovf: b[:len(b)/2], fabric: startFabric(t, scenario)}
			failed := func(rec []fabric.Entry) bool {
				for _, h := range fabric.HealthReports(rec) {
					if h.State == fabric.StateNotReady && h.SubStatus == "ProvisioningFailed" {
						return true
					}
				}
				return false
			}
			g := m.boot(failed)
			got := fabric.HealthReports(m.fabric.Record())
			if len(got) == 0 || got[len(got)-1].SubStatus != "ProvisioningFailed" || !strings.Contains(got[len(got)-1].Description, "ovf-env.xml") {
				t.Fatalf("health reports %+v, want the last ProvisioningFailed naming ovf-env.xml", got)
			}
			t.Logf("reported: %+v", got[len(got)-1])
			if countReady(m.fabric.Record()) != 0 {
				t.Errorf("Ready reported for a VM that was not provisioned")
			}
			// The boot completed: the runner ran after multi-user, sshd is up.
			if u := g.unit("ssh"); u["ActiveState"] != "active" {
				t.Errorf("sshd is %s", u["ActiveState"])
			}
			if rc := g.output("status.rc"); rc != "1" {
				t.Errorf("azinit status --wait exited %s, want 1 (an error)", rc)
			}
			if initrd == "initrd-dracut.img" {
				if u := g.unit("azinit-local"); u["ConditionResult"] != "yes" || g.has("/run/azinit/initrd-local.done") {
					t.Errorf("after the initramfs's local stage failed, the real root's did not run: %v", u)
				}
			}
		})
	}
}

// TestBootInitramfs: with the dracut module, the local stage runs in the
// initramfs against /sysroot and the real root's stages continue from it.
func TestBootInitramfs(t *testing.T) {
	needImage(t, imageDir, "make e2e")
	if _, err := os.Stat(filepath.Join(imageDir, "initrd-dracut.img")); err != nil {
		t.Fatalf("the image has no dracut initramfs: %v", err)
	}
	scenario := newScenario(t)
	m := &machine{t: t, image: imageDir, initrd: "initrd-dracut.img", agent: "azinit", scenario: scenario,
		fabric: startFabric(t, scenario)}
	g := m.boot(readyAndEnabled)
	g.checkProvisioned()
	g.checkExtension(
		"install version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=",
		"enable version=1.0.0 seq=0 ext=- uninstall_exit=NOT_RUN from=")
	journal := g.output("journal.txt")
	if !regexp.MustCompile(`azinit-local\[\d+\]: .*stage=local`).MatchString(journal) || !strings.Contains(journal, "azinit-initrd.service") {
		t.Errorf("the journal shows no local stage in the initramfs")
	}
	if u := g.unit("azinit-local"); u["ConditionResult"] != "no" {
		t.Errorf("the real root's azinit-local ran again: %v", u)
	}
	if !g.has("/run/azinit/initrd-local.done") {
		t.Errorf("no /run/azinit/initrd-local.done")
	}
	g.logTiming("initramfs boot")
}

// TestCompareWAAgent boots the same scenario with Debian's WALinuxAgent
// provisioning and with azinit, and reports both times to Ready side by
// side (make e2e-compare).
func TestCompareWAAgent(t *testing.T) {
	needImage(t, waagentImageDir, "make e2e-compare")
	needImage(t, imageDir, "make e2e-compare")
	ready := func(rec []fabric.Entry) bool { return countReady(rec) > 0 }
	times := map[string]timeline{}
	for _, agent := range []struct{ name, image, initrd string }{
		{"waagent", waagentImageDir, "initrd.img"},
		{"azinit", imageDir, "initrd.img"},
	} {
		scenario := newScenario(t)
		m := &machine{t: t, image: agent.image, initrd: agent.initrd, agent: agent.name, scenario: scenario,
			fabric: startFabric(t, scenario)}
		g := m.boot(ready)
		if h := g.output("hostname"); h != scenarioHostname {
			t.Errorf("%s: host name %q, want %q", agent.name, h, scenarioHostname)
		}
		times[agent.name] = g.logTiming(agent.name)
	}
	var table strings.Builder
	for _, agent := range []string{"waagent", "azinit"} {
		tl := times[agent]
		fmt.Fprintf(&table, "\n  %-8s kernel start → Ready %6.2f s   DHCP lease → Ready %6.2f s   unit start → Ready %6.2f s",
			agent, tl.Ready, tl.FromLease(), tl.Ready-tl.Start)
	}
	t.Logf("time to Ready, same image, scenario and QEMU:%s", table.String())
}
