// Package e2e boots a Debian image with azinit installed under QEMU
// against azinit-fabric and checks what the guest did and what the fabric
// recorded (design.md §9, tier 4). `make e2e` builds the image and runs
// it; without AZINIT_E2E_IMAGE every test skips.
//
// The guest reaches the fabric only through QEMU's user-mode network with
// restrict=on: its forwarding rules (guestfwd) for the platform's
// addresses start one `azinit-fabric relay` per guest connection, which
// dials the fabric on the host's loopback. `make e2e` runs all of it in a
// network namespace that has only loopback.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azinit/azinit/datasource/azure"
	"github.com/azinit/azinit/fabric"
	"github.com/azinit/azinit/internal/testenv"
	"github.com/azinit/azinit/internal/udf"
)

// The images (hack/e2e/image.sh) and the binaries under test.
var (
	imageDir        = os.Getenv("AZINIT_E2E_IMAGE")
	waagentImageDir = os.Getenv("AZINIT_E2E_WAAGENT_IMAGE")
	// artifacts, when set, keeps every boot's share, serial log and
	// fabric record there for a look after the run.
	artifacts = os.Getenv("AZINIT_E2E_ARTIFACTS")
	bin       string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if imageDir == "" && waagentImageDir == "" {
		return m.Run() // every test skips, saying why
	}
	dir, cleanup, err := testenv.Binaries("github.com/azinit/azinit/cmd/azinit-fabric")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building azinit-fabric:", err)
		return 1
	}
	defer cleanup()
	bin = dir
	return m.Run()
}

// The platform's addresses as the guest dials them, and the user-mode
// network that holds them: guestfwd accepts only addresses inside it, and
// 168.0.0.0/7 is the smallest prefix holding both.
const (
	wireserverIP  = "168.63.129.16"
	imdsIP        = "169.254.169.254"
	guestNet      = "net=168.0.0.0/7,host=168.0.0.2,dns=168.0.0.3,dhcpstart=168.0.0.15"
	azureAssetTag = "7783-7084-3265-9085-8269-3286-77"
)

// advertised are the fabric's addresses in the documents it serves.
var advertised = fabric.Addrs{
	Wireserver:   "http://" + wireserverIP,
	HostGAPlugin: "http://" + wireserverIP + ":32526",
	IMDS:         "http://" + imdsIP,
}

// needImage skips the test unless the image it boots was built.
func needImage(t *testing.T, dir, how string) {
	t.Helper()
	if dir == "" {
		t.Skipf("no QEMU boot image: run %s (it builds the image and sets AZINIT_E2E_IMAGE)", how)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
}

// startFabric serves scenario on loopback, advertising the platform's
// addresses, for the test.
func startFabric(t *testing.T, scenario string) *fabric.Fabric {
	t.Helper()
	f, err := fabric.Start(t.Context(), fabric.Options{Scenario: scenario, Advertise: advertised})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// machine is one VM: its disk and media, booted one or more times.
type machine struct {
	t        *testing.T
	image    string // vmlinuz, the initramfs images, disk.img
	disk     string // a writable copy of disk.img kept across boots; "" boots a snapshot
	initrd   string // the initramfs file in image
	agent    string // what provisions: "azinit" or "waagent"
	scenario string
	// ovf, when set, goes on the provisioning DVD instead of the
	// scenario's ovf-env.xml: one the fabric would refuse to write.
	ovf     []byte
	fabric  *fabric.Fabric
	cmdline string // added to the kernel command line
	boots   int
}

// persistentDisk gives m a writable copy of the image's disk, so a second
// boot sees what the first left.
func (m *machine) persistentDisk() {
	m.t.Helper()
	m.disk = filepath.Join(m.t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(m.image, "disk.img"), m.disk).CombinedOutput(); err != nil {
		m.t.Fatalf("copying the disk: %v\n%s", err, out)
	}
}

// guest is what one boot left in the share.
type guest struct {
	t      *testing.T
	out    string            // the share's out/ directory
	files  map[string][]byte // the guest's files (files.tar), by absolute path
	serial string            // the serial console's log
	wall   time.Duration     // QEMU's run time
}

// boot boots m once. The guest collects its results when collect(record)
// says the fabric saw what the scenario waits for (or after 5 minutes),
// then powers off.
func (m *machine) boot(collect func([]fabric.Entry) bool) *guest {
	t := m.t
	t.Helper()
	m.boots++
	dir := m.bootDir()
	share := filepath.Join(dir, "share")
	if err := os.MkdirAll(filepath.Join(share, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("guest", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"run.sh": script, "agent": []byte(m.agent + "\n")} {
		if err := os.WriteFile(filepath.Join(share, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	media := filepath.Join(dir, "ovf.iso")
	if err := m.writeMedia(media); err != nil {
		t.Fatal(err)
	}
	resource := filepath.Join(dir, "resource.img")
	if err := os.WriteFile(resource, nil, 0o644); err != nil || os.Truncate(resource, 1<<30) != nil {
		t.Fatalf("resource disk: %v", err)
	}
	scn, err := fabric.LoadScenario(m.scenario)
	if err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	args := m.qemuArgs(scn.Settings.VMID, media, resource, share, serial)

	// The guest gives up waiting after 4 + 3 minutes and powers off.
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var qemuOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	collected := false
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case err = <-done:
			waiting = false
		case <-tick.C:
			if !collected && collect(m.fabric.Record()) {
				collected = true
				if err := os.WriteFile(filepath.Join(share, "collect"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	g := &guest{t: t, out: filepath.Join(share, "out"), wall: time.Since(start)}
	if b, rerr := os.ReadFile(serial); rerr == nil {
		g.serial = string(b)
	}
	m.saveRecord(dir)
	t.Logf("boot %d (%s, %s): QEMU ran %v", m.boots, m.agent, m.initrd, g.wall.Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nserial console (tail):\n%s", err, qemuOut.String(), tail(g.serial, 60))
	}
	if !collected {
		t.Errorf("the fabric never saw what the boot waits for; the guest collected after its own timeout")
	}
	g.readFiles()
	return g
}

// writeMedia writes the provisioning DVD to path: the scenario's, or one
// holding m.ovf as it is.
func (m *machine) writeMedia(path string) error {
	if m.ovf == nil {
		return fabric.WriteMediaFile(path, m.scenario, fabric.MediaUDF)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = udf.Write(f, "CDROM", []udf.File{{Name: "ovf-env.xml", Data: m.ovf}}, udf.WriteOptions{})
	return errors.Join(err, f.Close())
}

// bootDir is where one boot's files go: under AZINIT_E2E_ARTIFACTS when
// set, so they outlive the test.
func (m *machine) bootDir() string {
	m.t.Helper()
	if artifacts == "" {
		return m.t.TempDir()
	}
	dir := filepath.Join(artifacts, fmt.Sprintf("%s-%s-boot%d", strings.ReplaceAll(m.t.Name(), "/", "_"), m.agent, m.boots))
	if err := os.RemoveAll(dir); err != nil {
		m.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		m.t.Fatal(err)
	}
	return dir
}

// saveRecord writes the fabric's record so far to dir/record.jsonl, and
// logs how many requests of each kind it holds.
func (m *machine) saveRecord(dir string) {
	m.t.Helper()
	var b bytes.Buffer
	kinds := map[fabric.Kind]int{}
	for _, e := range m.fabric.Record() {
		line, err := json.Marshal(e)
		if err != nil {
			m.t.Fatal(err)
		}
		b.Write(append(line, '\n'))
		kinds[e.Kind]++
	}
	if err := os.WriteFile(filepath.Join(dir, "record.jsonl"), b.Bytes(), 0o600); err != nil {
		m.t.Fatal(err)
	}
	m.t.Logf("the fabric's record so far: %v", kinds)
}

func (m *machine) qemuArgs(vmID, media, resource, share, serial string) []string {
	relay := func(addr string) string {
		return "cmd:" + filepath.Join(bin, "azinit-fabric") + " relay " + strings.TrimPrefix(addr, "http://")
	}
	urls := m.fabric.URLs()
	netdev := strings.Join([]string{
		"user,id=n0,restrict=on", guestNet,
		"guestfwd=tcp:" + wireserverIP + ":80-" + relay(urls.Wireserver),
		"guestfwd=tcp:" + wireserverIP + ":32526-" + relay(urls.HostGAPlugin),
		"guestfwd=tcp:" + imdsIP + ":80-" + relay(urls.IMDS),
	}, ",")
	disk := "file=" + filepath.Join(m.image, "disk.img") + ",if=virtio,format=raw,snapshot=on"
	if m.disk != "" {
		disk = "file=" + m.disk + ",if=virtio,format=raw"
	}
	accel := "tcg"
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		accel = "kvm:tcg"
	}
	return []string{
		"-machine", "pc,accel=" + accel, "-cpu", "max", "-smp", "2", "-m", "1024",
		"-nographic", "-no-reboot", "-monitor", "none", "-serial", "file:" + serial,
		// SeaBIOS is Gen1 firmware: the guest reads the UUID's first three
		// fields swapped, as on Hyper-V, and azinit swaps them back.
		"-uuid", azure.SwapGen1UUID(vmID),
		"-smbios", "type=3,asset=" + azureAssetTag,
		"-kernel", filepath.Join(m.image, "vmlinuz"),
		"-initrd", filepath.Join(m.image, m.initrd),
		// No status spinner on the console: the journal has it all.
		"-append", strings.TrimSpace("root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=error " + m.cmdline),
		"-drive", disk,
		"-drive", "file=" + resource + ",if=virtio,format=raw,snapshot=on",
		"-cdrom", media,
		"-virtfs", "local,path=" + share + ",mount_tag=e2e,security_model=none",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
	}
}

// readFiles unpacks files.tar, the guest's files the checks read.
func (g *guest) readFiles() {
	g.files = map[string][]byte{}
	f, err := os.Open(filepath.Join(g.out, "files.tar"))
	if err != nil {
		g.t.Fatalf("the guest left no files (did run.sh run?): %v\nserial console (tail):\n%s", err, tail(g.serial, 80))
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			g.t.Fatalf("files.tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(r)
		if err != nil {
			g.t.Fatalf("files.tar: %s: %v", h.Name, err)
		}
		g.files["/"+strings.TrimPrefix(h.Name, "/")] = b
	}
}

// file is a guest file's content; the test fails when it is missing.
func (g *guest) file(path string) string {
	g.t.Helper()
	b, ok := g.files[path]
	if !ok {
		g.t.Errorf("the guest has no %s", path)
	}
	return string(b)
}

// has reports whether the guest has path.
func (g *guest) has(path string) bool {
	_, ok := g.files[path]
	return ok
}

// output is a result file run.sh wrote, trimmed.
func (g *guest) output(name string) string {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.out, name))
	if err != nil {
		g.t.Errorf("the guest left no %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// unit is one unit's `systemctl show` properties.
func (g *guest) unit(name string) map[string]string {
	g.t.Helper()
	props := map[string]string{}
	for _, line := range strings.Split(g.output("unit-"+name+".txt"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	return props
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
