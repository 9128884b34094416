package azure

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// InstanceID reads the VM's id from the host's sysfs: the SMBIOS system
// UUID, lower-cased. On Gen1 (BIOS) VMs Hyper-V stores its first three
// fields little-endian; they are swapped back so the id equals IMDS
// compute.vmId, which is also what WALinuxAgent and cloud-init use.
func InstanceID(sysfs string) (string, error) {
	p := filepath.Join(sysfs, "class/dmi/id/product_uuid")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("reading the VM id: %w", err)
	}
	id := strings.ToLower(strings.TrimSpace(string(b)))
	if !isUUID(id) {
		return "", fmt.Errorf("%s: %q is not a UUID", p, id)
	}
	_, err = os.Stat(filepath.Join(sysfs, "firmware/efi"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return SwapGen1UUID(id), nil
	case err != nil:
		return "", fmt.Errorf("telling Gen1 from Gen2: %w", err)
	}
	return id, nil
}

// SwapGen1UUID reverses the bytes of the first three fields of a UUID:
// it turns the SMBIOS UUID a Gen1 VM reads into its VM id, and back (QEMU
// tests set the UUID a VM id reads as).
func SwapGen1UUID(id string) string {
	f := strings.Split(id, "-")
	for i := range 3 {
		f[i] = reverseHexBytes(f[i])
	}
	return strings.Join(f, "-")
}

func reverseHexBytes(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-2; i < j; i, j = i+2, j-2 {
		b[i], b[i+1], b[j], b[j+1] = b[j], b[j+1], b[i], b[i+1]
	}
	return string(b)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
	}
	return true
}
