package media

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDriveStatusErrors checks the real ioctl path fails cleanly where there is no CD-ROM.
func TestDriveStatusErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "sr0")
	if _, err := driveStatus(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("driveStatus(missing): %v", err)
	}
	file := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(file, []byte("not a drive"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := driveStatus(file); !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "CDROM_DRIVE_STATUS") {
		t.Errorf("driveStatus(regular file): %v", err)
	}
}
