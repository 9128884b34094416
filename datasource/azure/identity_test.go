package azure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstanceID(t *testing.T) {
	const dmi = "9A0C7F3E-0000-4000-8000-0000000000E2\n"
	tests := []struct {
		name    string
		uuid    string // "" = no product_uuid file
		efi     bool
		want    string
		wantErr string
	}{
		{"gen2 (EFI) as is, lower-cased", dmi, true, "9a0c7f3e-0000-4000-8000-0000000000e2", ""},
		{"gen1 swaps the first three fields", dmi, false, "3e7f0c9a-0000-0040-8000-0000000000e2", ""},
		{"gen1 round trip", "01234567-89ab-cdef-0011-223344556677", false, "67452301-ab89-efcd-0011-223344556677", ""},
		{"missing", "", true, "", "reading the VM id"},
		{"not a uuid", "Not Settable", true, "", `"not settable" is not a UUID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sysfs := t.TempDir()
			if tt.uuid != "" {
				dir := filepath.Join(sysfs, "class/dmi/id")
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "product_uuid"), []byte(tt.uuid), 0o400)
			}
			if tt.efi {
				os.MkdirAll(filepath.Join(sysfs, "firmware/efi"), 0o755)
			}
			got, err := InstanceID(sysfs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("InstanceID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
