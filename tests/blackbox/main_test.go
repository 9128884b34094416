// Package blackbox runs the real azinit binaries against azinit-fabric on
// loopback, with a t.TempDir() root, and checks what they print and leave
// behind and what the fabric recorded.
package blackbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/azinit/azinit/internal/testenv"
)

// bin is the directory holding the binaries under test.
var bin string

// TestMain builds every binary once, static as they ship, unless
// AZINIT_BIN names a directory that already holds them.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, cleanup, err := testenv.Binaries("github.com/azinit/azinit/cmd/...")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		return 1
	}
	defer cleanup()
	bin = dir
	return m.Run()
}

// binary is the path of one built binary.
func binary(name string) string { return filepath.Join(bin, name) }

// lookPath finds a tool on the PATH the stages will use.
func lookPath(name string) (string, error) { return exec.LookPath(name) }
