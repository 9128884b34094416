package udf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tool returns the path of a validation tool, or skips the test naming the package to install.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s): cannot validate the writer with it", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestWriteValidatedByTools checks every public option combination of the writer with
// independent implementations: udfinfo (udftools), blkid -p (util-linux, the probe udev runs) and
// 7-Zip's UDF reader, which walks the tree and extracts every file.
func TestWriteValidatedByTools(t *testing.T) {
	files := writeFiles(t)
	want := wantTree(files)
	var numFiles, numDirs int
	for _, c := range want {
		if c == isDir {
			numDirs++
		} else {
			numFiles++
		}
	}
	numDirs++ // the root
	for name, opts := range writeOptions {
		if opts.maxExtent != 0 || !opts.Time.IsZero() {
			continue // test hooks; 7-Zip does not follow allocation extent descriptors
		}
		rev := "1.02"
		if opts.ExtendedEntries {
			rev = "2.01"
		}
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "media.img")
			if err := os.WriteFile(img, write(t, "AZINIT_TOOLS", files, opts), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Run("udfinfo", func(t *testing.T) {
				out := run(t, tool(t, "udfinfo", "udftools"), img)
				for _, line := range []string{"label=AZINIT_TOOLS", "blocksize=2048", "udfrev=" + rev,
					"integrity=closed", "accesstype=readonly", "numdirs=" + strconv.Itoa(numDirs), "numfiles=" + strconv.Itoa(numFiles)} {
					if !strings.Contains(out, line+"\n") {
						t.Errorf("udfinfo output lacks %q:\n%s", line, out)
					}
				}
			})
			t.Run("blkid", func(t *testing.T) {
				out := run(t, tool(t, "blkid", "util-linux"), "-p", "-o", "export", img)
				for _, line := range []string{"TYPE=udf", "VERSION=" + rev, "LABEL=AZINIT_TOOLS", "BLOCK_SIZE=2048"} {
					if !strings.Contains(out, line+"\n") {
						t.Errorf("blkid output lacks %q:\n%s", line, out)
					}
				}
			})
			t.Run("7zip", func(t *testing.T) {
				dir := t.TempDir()
				run(t, tool(t, "7zz", "7zip"), "x", "-tudf", "-o"+dir, img)
				if diff := cmp.Diff(want, tree(t, os.DirFS(dir))); diff != "" {
					t.Errorf("extracted by 7-Zip (-want +got):\n%s", diff)
				}
			})
		})
	}
}
