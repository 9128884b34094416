package fabric

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/azinit/azinit/internal/udf"
)

func TestWriteMediaUDF(t *testing.T) {
	dir := filepath.Join("..", "testdata", "scenarios", "demo")
	want, err := os.ReadFile(filepath.Join(dir, "ovf-env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if err := WriteMedia(&img, dir, MediaUDF); err != nil {
		t.Fatal(err)
	}
	fsys, err := udf.Open(bytes.NewReader(img.Bytes()), int64(img.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fsys.ReadFile("ovf-env.xml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ovf-env.xml read back from the UDF image differs:\n%s", got)
	}
	if fsys.Label() != mediaLabel {
		t.Errorf("label %q, want %q", fsys.Label(), mediaLabel)
	}
}

func TestWriteMediaISO9660(t *testing.T) {
	dir := filepath.Join("..", "testdata", "scenarios", "demo")
	want, err := os.ReadFile(filepath.Join(dir, "ovf-env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if err := WriteMedia(&img, dir, MediaISO9660); err != nil {
		t.Fatal(err)
	}
	image, err := iso9660.OpenImage(bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	root, err := image.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	children, err := root.GetChildren()
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 1 || children[0].Name() != "ovf-env.xml" {
		t.Fatalf("root holds %d files (first %q), want ovf-env.xml alone", len(children), children[0].Name())
	}
	got, err := io.ReadAll(children[0].Reader())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ovf-env.xml read back from the ISO9660 image differs:\n%s", got)
	}
}

func TestWriteMediaFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ovf.udf")
	if err := WriteMediaFile(out, filepath.Join("..", "testdata", "scenarios", "demo"), MediaUDF); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("media mode %v, want 0600: ovf-env.xml holds the password", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 {
		t.Errorf("the output directory holds %d entries (%v), want the image alone", len(entries), err)
	}
}

func TestWriteMediaErrors(t *testing.T) {
	var img bytes.Buffer
	if err := WriteMedia(&img, filepath.Join("..", "testdata", "scenarios", "demo"), "vfat"); err == nil {
		t.Error("format vfat accepted")
	}
	if err := WriteMedia(&img, t.TempDir(), MediaUDF); err == nil {
		t.Error("a scenario without ovf-env.xml made media")
	}
	out := filepath.Join(t.TempDir(), "ovf.iso")
	if err := WriteMediaFile(out, t.TempDir(), MediaISO9660); err == nil {
		t.Error("a scenario without ovf-env.xml made a media file")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed media write left %s behind", out)
	}
}
