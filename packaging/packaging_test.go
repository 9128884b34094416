// Package packaging holds the nfpm configuration of the azinit .deb and
// .rpm, the default /etc/azinit/azinit.yaml and the maintainer scripts; its
// tests keep them in step with the code.
package packaging

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/azinit/azinit/internal/config"
	"github.com/azinit/azinit/internal/sys"
)

// repo is the repository root, from this package's directory.
const repo = ".."

// loadConfig loads yml as /etc/azinit/azinit.yaml under a fresh root.
func loadConfig(t *testing.T, yml []byte) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/azinit"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, config.DefaultPath), yml, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := sys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(root, "")
	if err != nil {
		t.Fatalf("loading azinit.yaml: %v", err)
	}
	return cfg
}

// keyLine is a commented-out key: "#", a space, the key's indentation, the
// key and its value if it has one.
var keyLine = regexp.MustCompile(`^# (\s*[a-z_]+:(\s.*)?)$`)

// uncomment turns every commented-out key of azinit.yaml into a key,
// leaving prose and the keys' own comments as comments. Line numbers stay.
func uncomment(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if m := keyLine.FindStringSubmatch(l); m != nil {
			lines[i] = m[1]
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// TestDefaultConfigIsAllComments: the shipped file changes nothing.
func TestDefaultConfigIsAllComments(t *testing.T) {
	b, err := os.ReadFile("azinit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(config.Default(), *loadConfig(t, b)); diff != "" {
		t.Errorf("azinit.yaml as shipped is not config.Default() (-want +got):\n%s", diff)
	}
}

// TestDefaultConfigShowsDefaults: with every key uncommented the file
// still loads as config.Default(), so each value shown is the default, and
// it shows every key of config.Config, each below a one-line comment.
func TestDefaultConfigShowsDefaults(t *testing.T) {
	b, err := os.ReadFile("azinit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	open := uncomment(b)
	// groups: [] loads as an empty list where the default is nil.
	if diff := cmp.Diff(config.Default(), *loadConfig(t, open), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("azinit.yaml uncommented is not config.Default() (-want +got):\n%s", diff)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(open, &doc); err != nil {
		t.Fatalf("azinit.yaml uncommented: %v", err)
	}
	leaves := map[string]int{} // dotted key: line
	if len(doc.Content) == 1 {
		collectKeys(doc.Content[0], "", leaves)
	}
	var want []string
	yamlKeys(reflect.TypeFor[config.Config](), "", &want)
	slices.Sort(want)
	got := slices.Sorted(maps.Keys(leaves))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("azinit.yaml does not show every key of config.Config (-in Config +in azinit.yaml):\n%s", diff)
	}

	lines := strings.Split(string(b), "\n")
	for key, line := range leaves {
		if line < 2 || !strings.HasPrefix(strings.TrimLeft(strings.TrimPrefix(lines[line-2], "#"), " "), "# ") {
			t.Errorf("azinit.yaml:%d: %s has no comment line above it", line, key)
		}
	}
}

// collectKeys records the dotted path and line of every leaf key of the
// mapping n.
func collectKeys(n *yaml.Node, prefix string, leaves map[string]int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style != yaml.FlowStyle {
			collectKeys(v, prefix+k.Value+".", leaves)
			continue
		}
		leaves[prefix+k.Value] = k.Line
	}
}

// yamlKeys appends the dotted YAML paths of t's leaf fields.
func yamlKeys(t reflect.Type, prefix string, keys *[]string) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			yamlKeys(f.Type, prefix+name+".", keys)
			continue
		}
		*keys = append(*keys, prefix+name)
	}
}

// nfpmConfig is the part of packaging/nfpm.yaml the tests read.
type nfpmConfig struct {
	Contents []struct {
		Src      string `yaml:"src"`
		Dst      string `yaml:"dst"`
		Type     string `yaml:"type"`
		FileInfo struct {
			Mode fs.FileMode `yaml:"mode"`
		} `yaml:"file_info"`
	} `yaml:"contents"`
	Scripts map[string]string `yaml:"scripts"`
}

func readNFPM(t *testing.T) *nfpmConfig {
	t.Helper()
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c nfpmConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("nfpm.yaml: %v", err)
	}
	return &c
}

// packaged is a file the package must ship.
type packaged struct {
	Src  string
	Mode fs.FileMode
}

// commands are the binaries under cmd/ that the package ships: every main
// package but azinit-fabric, the test fabric.
func commands(t *testing.T) []string {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join(repo, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "azinit-fabric" {
			continue
		}
		main, err := isMain(filepath.Join(repo, "cmd", d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if main {
			names = append(names, d.Name())
		}
	}
	return names
}

// isMain reports whether dir holds a main package.
func isMain(dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return false, err
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.PackageClauseOnly)
		if err != nil {
			return false, err
		}
		return f.Name.Name == "main", nil
	}
	return false, nil
}

// dirFiles maps each file of the repository directory dir (for which skip
// is false) to its destination under dst, with the mode git gives it: 0755
// when executable, else 0644 (whatever the checkout's umask).
func dirFiles(t *testing.T, dir, dst string, skip func(name string) bool, want map[string]packaged) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repo, dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || skip(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o644)
		if info.Mode()&0o100 != 0 {
			mode = 0o755
		}
		want[path.Join(dst, e.Name())] = packaged{path.Join(dir, e.Name()), mode}
	}
}

// TestEverythingPackaged: every binary, unit and dracut file is in
// nfpm.yaml, where it belongs and with its mode, and nothing stale is.
func TestEverythingPackaged(t *testing.T) {
	want := map[string]packaged{}
	for _, name := range commands(t) {
		dst := path.Join("/usr/bin", name)
		if name == "azinit-generator" {
			dst = path.Join("/usr/lib/systemd/system-generators", name)
		}
		want[dst] = packaged{"bin/linux-${ARCH}/" + name, 0o755}
	}
	dirFiles(t, "units", "/usr/lib/systemd/system", func(name string) bool {
		return strings.HasSuffix(name, ".go")
	}, want)
	if _, err := os.Stat(filepath.Join(repo, "dracut")); errors.Is(err, fs.ErrNotExist) {
		t.Log("dracut/ does not exist yet: its files are not checked")
	} else {
		dirFiles(t, "dracut", "/usr/lib/dracut/modules.d/90azinit", func(string) bool { return false }, want)
	}

	got := map[string]packaged{}
	for _, c := range readNFPM(t).Contents {
		if dir, _, _ := strings.Cut(c.Src, "/"); dir == "bin" || dir == "units" || dir == "dracut" {
			got[c.Dst] = packaged{c.Src, c.FileInfo.Mode}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nfpm.yaml's contents are not the binaries, units and dracut files (-want +got):\n%s", diff)
	}
}

// TestPackageFiles: every file nfpm.yaml names exists, the maintainer
// scripts are executable, and the directories have their modes.
func TestPackageFiles(t *testing.T) {
	c := readNFPM(t)
	dirs := map[string]fs.FileMode{}
	for _, e := range c.Contents {
		if e.Type == "dir" {
			dirs[e.Dst] = e.FileInfo.Mode
			continue
		}
		if strings.Contains(e.Src, "$") { // built by make cross
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, e.Src)); err != nil {
			t.Errorf("nfpm.yaml: %s for %s: %v", e.Src, e.Dst, err)
		}
	}
	wantDirs := map[string]fs.FileMode{
		"/etc/azinit":                        0o755,
		"/etc/azinit/azinit.yaml.d":          0o755,
		"/usr/lib/dracut/modules.d/90azinit": 0o755,
		"/usr/share/doc/azinit":              0o755,
		"/var/lib/azinit":                    0o700,
	}
	if diff := cmp.Diff(wantDirs, dirs); diff != "" {
		t.Errorf("nfpm.yaml's directories (-want +got):\n%s", diff)
	}
	for hook, script := range c.Scripts {
		info, err := os.Stat(filepath.Join(repo, script))
		if err != nil {
			t.Errorf("nfpm.yaml: %s script: %v", hook, err)
		} else if info.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("nfpm.yaml: %s script %s is %v, not executable", hook, script, info.Mode().Perm())
		}
	}
}

// pkgVersion runs scripts/pkg-version.
func pkgVersion(t *testing.T, describe string) (string, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh is not installed")
	}
	out, err := exec.Command(sh, "scripts/pkg-version", describe).Output()
	return strings.TrimSuffix(string(out), "\n"), err
}

// TestPkgVersion maps git describe output to package versions.
func TestPkgVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"v0.0.0-12-gabcdef0", "0.0.0+git12.abcdef0"},
		{"v1.2.3-rc.1-2-gdeadbee", "1.2.3~rc.1+git2.deadbee"},
		{"1.0.0-alpha-1", "1.0.0~alpha.1"},
		{"c2cf9e9", "0.0.0~git.c2cf9e9"},
		{"c2cf9e9-dirty", "0.0.0~git.c2cf9e9+dirty"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.abc1234.dirty"},
		{"dev", ""},         // the Makefile's VERSION without git
		{"v1.2.3 x", ""},    // not a version
		{"release-1", ""},   // must start with a digit
		{"v1.2.3_beta", ""}, // dpkg has no _
		{"", ""},            // usage
		{"abc", ""},         // too short for a hash
		{"v1.2.3:4", ""},    // no epochs
	} {
		got, err := pkgVersion(t, tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("pkg-version %q = %q, want an error", tc.in, got)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("pkg-version %q = %q, %v; want %q", tc.in, got, stderr(err), tc.want)
		}
	}
}

// TestPkgVersionOrder: dpkg and rpm order the versions as git history
// does, when they are installed.
func TestPkgVersionOrder(t *testing.T) {
	var versions []string
	for _, describe := range []string{
		"abc1234", "v0.0.0-1-gabc1234", "v1.2.3-rc1", "v1.2.3-rc1-2-gdeadbee", "v1.2.3",
		"v1.2.3-9-gabc1234", "v1.2.3-10-g0000000", "v1.2.4-rc1", "v1.2.4",
	} {
		v, err := pkgVersion(t, describe)
		if err != nil {
			t.Fatalf("pkg-version %q: %v", describe, stderr(err))
		}
		versions = append(versions, v)
	}
	for _, tool := range []struct {
		name string
		less func(a, b string) *exec.Cmd
	}{
		{"dpkg", func(a, b string) *exec.Cmd { return exec.Command("dpkg", "--compare-versions", a, "lt", b) }},
		// rpm's own comparison, through its Lua interpreter: fails unless a < b.
		{"rpm", func(a, b string) *exec.Cmd {
			return exec.Command("rpm", "--eval", fmt.Sprintf("%%{lua: if rpm.vercmp(%q, %q) >= 0 then error(\"not older\") end}", a, b))
		}},
	} {
		t.Run(tool.name, func(t *testing.T) {
			if _, err := exec.LookPath(tool.name); err != nil {
				t.Skipf("%s is not installed", tool.name)
			}
			for i := 1; i < len(versions); i++ {
				if out, err := tool.less(versions[i-1], versions[i]).CombinedOutput(); err != nil {
					t.Errorf("%s does not order %s before %s: %v %s", tool.name, versions[i-1], versions[i], err, out)
				}
			}
		})
	}
}

// stderr adds a failed command's standard error to err.
func stderr(err error) error {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return err
}

// TestCopyrightNamesModules: every module linked into a packaged binary
// is named, with its license, in packaging/copyright.
func TestCopyrightNamesModules(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	b, err := os.ReadFile("copyright")
	if err != nil {
		t.Fatal(err)
	}
	copyright := string(b)
	args := []string{"list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}",
		// The Makefile's build tags: they leave urfave/cli's man-page code out.
		"-tags=urfave_cli_no_docs,nethttpomithttp2"}
	for _, name := range commands(t) {
		args = append(args, "./cmd/"+name)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOPROXY=off") // never the network
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", stderr(err))
	}
	var missing []string
	for _, mod := range slices.Compact(slices.Sorted(slices.Values(strings.Fields(string(out))))) {
		// A Files: field names the module, on its first line or a continuation line.
		if !strings.Contains(copyright, "\nFiles: "+mod+"/") && !strings.Contains(copyright, "\n "+mod+"/") {
			missing = append(missing, mod)
		}
	}
	if len(missing) > 0 {
		t.Errorf("packaging/copyright does not name %s, linked into the packaged binaries", strings.Join(missing, ", "))
	}
}
